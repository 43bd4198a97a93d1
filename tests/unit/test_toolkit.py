"""Workflow commands, environment files and the step summary of the GitHub Action."""
from __future__ import annotations

import io
import json

import pytest

from builder.contract import BuildResult
from lambda3.action import summary, toolkit
from lambda3.action.run import (
    ActionSettings,
    SettingsError,
    outputs_from_result,
    parse_components,
)

RESULT = {
    "ok": True,
    "commit": "a" * 40,
    "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:hello",
    "version": "7",
    "alias": "live",
    "code_sha256": "abc=",
    "layers": [
        {"name": "hello-deps", "arn": "arn:aws:lambda:us-east-1:123456789012:layer:hello-deps:3",
         "version": 3, "changed": True, "size": 2048},
        {"name": "shared", "arn": "arn:aws:lambda:us-east-1:123456789012:layer:shared:1",
         "version": 1, "changed": False, "size": 10},
    ],
    "plan": [],
    "timings": {"fetch": 0.5, "spec": 0.01, "install": 3.25, "package": 0.4, "plan": 0.1,
                "apply": 1.0, "total": 5.3},
    "components": [
        {"name": "hello", "kind": "function", "code_sha256": "abc=", "size": 1500,
         "unzipped_size": 4000, "files": 3, "changed": True},
        {"name": "hello-deps", "kind": "layer", "code_sha256": "def=", "size": 2048,
         "unzipped_size": 9000, "files": 40, "changed": True},
        {"name": "shared", "kind": "layer", "code_sha256": "ghi=", "size": 10,
         "unzipped_size": 10, "files": 1, "changed": False},
    ],
}


def test_data_escaping_follows_the_runner():
    assert toolkit.escape_data("100% done\r\nnext") == "100%25 done%0D%0Anext"
    assert toolkit.escape_data("a:b,c") == "a:b,c"


def test_property_escaping_also_covers_colon_and_comma():
    assert toolkit.escape_property("C:\\x,y\n%") == "C%3A\\x%2Cy%0A%25"


def test_error_with_file_and_line_escapes_properties_and_message():
    out = io.StringIO()
    toolkit.error("bad key: x\nsecond line", file="dir,1/build.yaml", line=4,
                  title="lambda3: spec", stream=out)
    assert out.getvalue() == (
        "::error title=lambda3%3A spec,file=dir%2C1/build.yaml,line=4::bad key: x%0Asecond line\n"
    )


def test_error_without_file_has_no_properties_and_line_needs_file():
    out = io.StringIO()
    toolkit.error("plain", line=3, stream=out)
    assert out.getvalue() == "::error::plain\n"


def test_add_mask_masks_each_line_of_a_multiline_secret():
    out = io.StringIO()
    toolkit.add_mask("-----BEGIN-----\nabc%def\r\n\n-----END-----", stream=out)
    assert out.getvalue().splitlines() == [
        "::add-mask::-----BEGIN-----", "::add-mask::abc%25def", "::add-mask::-----END-----",
    ]


def test_add_mask_ignores_empty_values():
    out = io.StringIO()
    toolkit.add_mask("", stream=out)
    toolkit.add_mask(None, stream=out)
    assert out.getvalue() == ""


def test_group_closes_even_on_error():
    out = io.StringIO()
    with pytest.raises(RuntimeError), toolkit.group("builder log", stream=out):
        out.write("inside\n")
        raise RuntimeError("boom")
    assert out.getvalue() == "::group::builder log\ninside\n::endgroup::\n"


def test_stop_commands_wraps_untrusted_lines_with_a_fresh_token():
    out = io.StringIO()
    with toolkit.stop_commands(stream=out, new_token=lambda: "tok123"):
        out.write("::set-output name=x::evil\n")
    assert out.getvalue() == "::stop-commands::tok123\n::set-output name=x::evil\n::tok123::\n"


def test_set_output_uses_a_heredoc_with_a_random_delimiter(tmp_path):
    path = tmp_path / "output"
    toolkit.set_output("layer-arns", '["a",\n"b"]', path=path)
    toolkit.set_output("version", "3", path=path)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("layer-arns<<ghadelimiter_")
    delimiter = lines[0].split("<<", 1)[1]
    assert lines[1:4] == ['["a",', '"b"]', delimiter]
    assert lines[4].startswith("version<<ghadelimiter_") and lines[4].split("<<")[1] != delimiter
    assert lines[5] == "3"


def test_set_output_refuses_a_value_containing_its_delimiter(tmp_path):
    path = tmp_path / "output"
    with pytest.raises(toolkit.ToolkitError, match="delimiter"):
        toolkit.set_output("x", "a\nghadelimiter_fixed\nb", path=path,
                           new_delimiter=lambda: "ghadelimiter_fixed")
    assert not path.exists()


def test_append_summary_appends(tmp_path):
    path = tmp_path / "summary.md"
    toolkit.append_summary("# one", path=path)
    toolkit.append_summary("two\n", path=path)
    assert path.read_text() == "# one\ntwo\n"


def test_summary_of_a_deploy_lists_facts_components_and_timings():
    text = summary.render_summary(BuildResult.from_json(RESULT), function="hello")
    assert "### lambda3 deployed `hello`" in text
    assert f"- **Commit:** `{'a' * 40}`" in text
    assert "- **Version:** `7`" in text and "- **Alias:** `live`" in text
    assert "| hello | function | 1.5 KB | changed | `arn:aws:lambda:us-east-1:123456789012:" \
           "function:hello` |" in text
    assert "| hello-deps | layer | 2.0 KB | changed | `arn:aws:lambda:us-east-1:123456789012:" \
           "layer:hello-deps:3` |" in text
    assert "| shared | layer | 10 B | reused |" in text
    assert "| fetch | spec | install | package | plan | apply | total |" in text
    assert "| 0.5 | 0.0 | 3.2 | 0.4 | 0.1 | 1.0 | 5.3 |" in text


def test_summary_of_a_plan_lists_the_actions():
    plan = {**RESULT, "version": None, "plan": [
        {"action": "publish_layer_version", "layer": "hello-deps"},
        {"action": "update_function_code", "function": "hello"},
    ]}
    text = summary.render_summary(BuildResult.from_json(plan), function="hello", dry_run=True)
    assert "### lambda3 planned `hello`" in text
    assert "1. `publish_layer_version` (layer=hello-deps)" in text
    assert "Version" not in text


def test_summary_of_a_failure_shows_step_location_and_message():
    error = {"step": "spec", "type": "SpecError", "message": "build.yaml:3: unknown key `x`",
             "file": "build.yaml", "line": 3, "key": "x"}
    failed = BuildResult.from_json({"ok": False, "error": error})
    text = summary.render_summary(failed, function="hello")
    assert "### lambda3 failed for `hello` at step `spec`" in text
    assert "**Where:** `build.yaml:3`" in text
    assert "```text\nbuild.yaml:3: unknown key `x`\n```" in text


def test_summary_table_cells_cannot_break_the_table():
    result = {**RESULT, "components": [{"name": "a|b<script>", "kind": "layer", "size": 1,
                                        "changed": False}], "layers": []}
    text = summary.render_summary(BuildResult.from_json(result))
    assert "| a\\|b&lt;script&gt; | layer | 1 B | reused |  |" in text


def test_outputs_from_a_result():
    outputs = outputs_from_result(BuildResult.from_json(RESULT))
    assert outputs["version"] == "7" and outputs["alias"] == "live"
    assert json.loads(outputs["layer-arns"]) == [layer["arn"] for layer in RESULT["layers"]]
    assert json.loads(outputs["changed-layers"]) == ["hello-deps"]
    assert outputs_from_result(BuildResult.from_json({"ok": True}))["version"] == ""


def test_settings_defaults_come_from_the_github_context():
    settings = ActionSettings.from_environ({
        "LAMBDA3_AWS_REGION": "eu-west-1", "GITHUB_REPOSITORY": "octo-org/hello",
        "GITHUB_SERVER_URL": "https://github.com", "GITHUB_SHA": "b" * 40,
        "GITHUB_RUN_ID": "42", "LAMBDA3_GITHUB_TOKEN": "ghs_secret", "LAMBDA3_PUBLISH": "true",
        "LAMBDA3_DRY_RUN": "", "LAMBDA3_COMPONENTS": "api, worker\nshared",
    })
    assert settings.function_name == "hello"
    assert settings.repository == "https://github.com/octo-org/hello.git"
    assert settings.ref == "b" * 40
    assert settings.builder_function == "lambda3-builder"
    assert settings.audience == "sts.amazonaws.com"
    assert settings.role_session_name == "lambda3-42"
    assert settings.components == ("api", "worker", "shared")
    assert settings.publish is True and settings.dry_run is False
    assert "ghs_secret" not in repr(settings)
    request = settings.request()
    assert request.action == "build" and request.token == "ghs_secret"
    assert request.build_file is None and request.alias is None


def test_settings_refuse_bad_booleans_and_missing_region():
    with pytest.raises(SettingsError, match="aws-region"):
        ActionSettings.from_environ({"GITHUB_REPOSITORY": "o/r", "GITHUB_SHA": "c" * 40})
    with pytest.raises(SettingsError, match="dry-run"):
        ActionSettings.from_environ({"LAMBDA3_AWS_REGION": "us-east-1",
                                     "GITHUB_REPOSITORY": "o/r", "GITHUB_SHA": "c" * 40,
                                     "LAMBDA3_DRY_RUN": "maybe"})


def test_dry_run_sends_a_plan_request():
    settings = ActionSettings.from_environ({
        "LAMBDA3_AWS_REGION": "us-east-1", "LAMBDA3_FUNCTION_NAME": "f",
        "LAMBDA3_REPOSITORY": "https://example.com/r.git", "LAMBDA3_REF": "main",
        "LAMBDA3_DRY_RUN": "TRUE",
    })
    assert settings.request().action == "plan"


def test_components_split_on_spaces_commas_and_newlines():
    assert parse_components(" a,b  c\n\nd ,") == ("a", "b", "c", "d")
    assert parse_components("") == ()


def test_inert_lines_cannot_start_or_be_a_workflow_command():
    assert toolkit.inert("ref main\n::error::pwned\r\n") == "ref main%0A::error::pwned%0D%0A"
    assert toolkit.inert("::add-mask::x") == "%3A:add-mask::x"
    assert toolkit.inert("  ::set-output name=a::b") == "  %3A:set-output name=a::b"
    assert toolkit.inert("see ##[set-output name=a;]b") == "see ##%5Bset-output name=a;]b"
    assert toolkit.inert("100% plain: a::b") == "100% plain: a::b"


def test_settings_take_the_configure_aws_credentials_inputs():
    base = {"GITHUB_REPOSITORY": "o/r", "GITHUB_SHA": "c" * 40}
    settings = ActionSettings.from_environ({
        **base, "AWS_REGION": "eu-north-1", "LAMBDA3_ROLE_DURATION": "900",
        "LAMBDA3_ROLE_EXTERNAL_ID": "ext", "LAMBDA3_MASK_AWS_ACCOUNT_ID": "false",
        "LAMBDA3_ALLOWED_ACCOUNT_IDS": "111111111111, 222222222222"})
    assert settings.aws_region == "eu-north-1" and settings.role_duration == 900
    assert settings.role_external_id == "ext" and settings.mask_account_id is False
    assert settings.allowed_account_ids == ("111111111111", "222222222222")
    explicit = ActionSettings.from_environ({**base, "AWS_REGION": "eu-north-1",
                                            "LAMBDA3_AWS_REGION": "us-west-2"})
    assert explicit.aws_region == "us-west-2" and explicit.mask_account_id is True
    with pytest.raises(SettingsError, match="allowed-account-ids holds '1234'"):
        ActionSettings.from_environ({**base, "AWS_REGION": "x",
                                     "LAMBDA3_ALLOWED_ACCOUNT_IDS": "1234"})
    with pytest.raises(SettingsError, match="AWS_REGION"):
        ActionSettings.from_environ(base)


def test_allow_older_and_index_credentials_reach_the_request_and_are_masked():
    settings = ActionSettings.from_environ({
        "LAMBDA3_AWS_REGION": "us-east-1", "LAMBDA3_FUNCTION_NAME": "f",
        "LAMBDA3_REPOSITORY": "https://example.com/r.git", "LAMBDA3_REF": "main",
        "LAMBDA3_ALLOW_OLDER": "true",
        "LAMBDA3_INDEX_CREDENTIALS": '{"pypi.example.com": "ci:idx-canary-123"}',
    })
    request = settings.request()
    assert request.allow_older is True
    assert request.index_credentials == (("pypi.example.com", "ci:idx-canary-123"),)
    assert "idx-canary-123" not in repr(settings) + repr(request)
    with pytest.raises(SettingsError, match="index-credentials"):
        ActionSettings.from_environ({
            "LAMBDA3_AWS_REGION": "us-east-1", "LAMBDA3_FUNCTION_NAME": "f",
            "LAMBDA3_REPOSITORY": "https://example.com/r.git", "LAMBDA3_REF": "main",
            "LAMBDA3_INDEX_CREDENTIALS": "not json"})
