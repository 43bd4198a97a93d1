"""Pruning and preview sweeps on the emulator: what an alias, a rollout or another function
references stays; --dry-run deletes nothing."""
from __future__ import annotations

import time

import pytest

from builder import rollout as model
from builder.aws import Aws
from builder.clients import Clients
from lambda3.cli import main
from lambda3.commands.prune import prune_function
from lambda3.previews import choose, parse_age, sweep
from tests.fixtures_aws import make_zip

STAMP = "lambda3 0123456789ab 2026-12-01T00:00:00Z"


def wrapper(aws) -> Aws:
    return Aws(Clients(region=aws.region, endpoint_url=aws.endpoint_url),
               sleep=lambda s: None)


def layer(aws, name: str, content: str = "x") -> str:
    return aws.client("lambda").publish_layer_version(
        LayerName=name, Content={"ZipFile": make_zip({"python/data.txt": content})}
    )["LayerVersionArn"]


def version(aws, function: str, layers: list[str], text: str) -> str:
    lam = aws.client("lambda")
    lam.update_function_configuration(FunctionName=function, Layers=layers)
    code = make_zip({"app.py": f"def handler(e, c):\n    return {text!r}\n"})
    lam.update_function_code(FunctionName=function, ZipFile=code)
    return lam.publish_version(FunctionName=function, Description=STAMP)["Version"]


def versions(aws, function: str) -> list[str]:
    found = aws.client("lambda").list_versions_by_function(FunctionName=function)["Versions"]
    return [v["Version"] for v in found if v["Version"] != "$LATEST"]


def layer_versions(aws, name: str) -> list[int]:
    found = aws.client("lambda").list_layer_versions(LayerName=name)["LayerVersions"]
    return sorted(v["Version"] for v in found)


@pytest.fixture
def app(aws):
    """app: versions 1-6; layer app-deps 1-6, one per version; alias live on 2 with 3 weighted
    in; alias next with a rollout 4 -> 5 recorded; function other uses app-deps:1."""
    aws.create_function("app", {"app.py": "def handler(e, c):\n    return 0\n"})
    arns = [layer(aws, "app-deps", str(i)) for i in range(6)]
    for i, arn in enumerate(arns):
        version(aws, "app", [arn], f"v{i + 1}")
    lam = aws.client("lambda")
    lam.create_alias(FunctionName="app", Name="live", FunctionVersion="2",
                     RoutingConfig={"AdditionalVersionWeights": {"3": 0.2}})
    state = model.start_state(model.parse_strategy("canary 10 5"), "4", "5", time.time(),
                              checks=True)
    lam.create_alias(FunctionName="app", Name="next", FunctionVersion="4")
    lam.update_alias(**model.update_alias_args("app", "next", state, None))
    aws.create_function("other", {"app.py": "x = 1\n"}, Layers=[arns[0]])
    return arns


def test_prune_keeps_what_aliases_rollouts_and_the_newest_reference(aws, app):
    plan = prune_function(wrapper(aws), "app", keep=1)
    assert plan.versions == ("1",)
    assert dict(plan.kept) == {"2": "alias live", "3": "alias live", "4": "alias next",
                               "5": "alias next", "6": "one of the newest 1"}
    assert versions(aws, "app") == ["2", "3", "4", "5", "6"]
    # app-deps:1 was only version 1's, but function other uses it; 6 is $LATEST's
    assert layer_versions(aws, "app-deps") == [1, 2, 3, 4, 5, 6]


def test_a_layer_version_no_one_uses_goes_and_one_another_function_uses_stays(aws, app):
    lam = aws.client("lambda")
    lam.update_alias(FunctionName="app", Name="live", FunctionVersion="6",
                     RoutingConfig={"AdditionalVersionWeights": {}})
    lam.delete_alias(FunctionName="app", Name="next")
    plan = prune_function(wrapper(aws), "app", keep=2)
    assert plan.versions == ("1", "2", "3", "4")
    assert versions(aws, "app") == ["5", "6"]
    assert layer_versions(aws, "app-deps") == [1, 5, 6]  # 1: function other's


def test_dry_run_lists_and_deletes_nothing(aws, app, capsys, monkeypatch):
    monkeypatch.setenv("LAMBDA3_ENDPOINT_URL", aws.endpoint_url)
    assert main(["prune", "app", "--keep", "1", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would delete version 1 of app" in out
    assert "keep version 3 (alias live)" in out and "keep version 5 (alias next)" in out
    assert versions(aws, "app") == ["1", "2", "3", "4", "5", "6"]


def preview(aws, name: str, layers: list[str], description: str = STAMP) -> None:
    aws.create_function(name, {"app.py": "x = 1\n"}, Layers=layers)
    aws.client("lambda").publish_version(FunctionName=name, Description=description)


def test_a_closed_pull_requests_previews_go_with_the_layers_only_they_use(aws, app):
    shared = layer(aws, "shared")
    preview(aws, "app-pr-7", [layer(aws, "app-pr-7-deps"), shared])
    preview(aws, "app-pr-8", [layer(aws, "app-pr-8-deps")])
    preview(aws, "legacy-pr-7", [], description="deployed by hand")  # not lambda3's
    lam = aws.client("lambda")
    pr_version = version(aws, "app", [app[5]], "pr 7")
    lam.create_alias(FunctionName="app", Name="pr-7", FunctionVersion=pr_version)

    lines = sweep(wrapper(aws), base="app", pr=7)
    assert "preview function app-pr-7 (pull request #7):" in lines
    assert "preview alias pr-7 of app (pull request #7):" in lines
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert "app-pr-7" not in names and {"app-pr-8", "legacy-pr-7", "app"} <= set(names)
    assert layer_versions(aws, "app-pr-7-deps") == [] and layer_versions(aws, "shared") == [1]
    assert "pr-7" not in [a["Name"] for a in lam.list_aliases(FunctionName="app")["Aliases"]]
    assert pr_version not in versions(aws, "app")
    assert {"2", "3", "4", "5"} <= set(versions(aws, "app"))  # live's and next's stay


def test_the_sweep_removes_previews_of_prs_not_open_or_not_deployed_lately(aws, app):
    preview(aws, "app-pr-7", [])
    preview(aws, "app-pr-8", [])
    preview(aws, "legacy-pr-9", [], description="deployed by hand")
    later = time.time() + 8 * 86400
    assert sweep(wrapper(aws), older_than=parse_age("7d"), dry_run=True, now=later)[0] == (
        "preview function app-pr-7 (pull request #7):")
    lines = sweep(wrapper(aws), open_prs={8}, older_than=parse_age("7d"), now=later)
    assert "preview function app-pr-7 (pull request #7):" in lines
    names = {f["FunctionName"] for f in aws.client("lambda").list_functions()["Functions"]}
    assert names >= {"app-pr-8", "legacy-pr-9"} and "app-pr-7" not in names
    assert sweep(wrapper(aws), older_than=parse_age("7d")) == ["no preview to remove"]


def test_choosing_needs_a_rule_and_ages_parse():
    assert parse_age("7d") == 7 * 86400 and parse_age("12h") == 43200
    with pytest.raises(Exception, match="not an age"):
        parse_age("a week")
    with pytest.raises(Exception, match="needs --pr N, --older-than AGE or --open-prs"):
        choose([], now=0)


def test_the_command_refuses_what_does_not_go_together(aws, capsys, monkeypatch):
    monkeypatch.setenv("LAMBDA3_ENDPOINT_URL", aws.endpoint_url)
    assert main(["prune", "app", "--pr", "3"]) == 1
    assert "go with --previews" in capsys.readouterr().err
    assert main(["prune"]) == 1
    assert "name the function to prune, or pass --previews" in capsys.readouterr().err
    assert main(["prune", "--previews"]) == 1
    assert "needs --pr N, --older-than AGE or --open-prs" in capsys.readouterr().err


def test_a_preview_alias_goes_with_its_function_url_and_provisioned_concurrency(aws, app):
    lam = aws.client("lambda")
    pr_version = version(aws, "app", [app[5]], "pr 9")
    lam.create_alias(FunctionName="app", Name="pr-9", FunctionVersion=pr_version)
    url = lam.create_function_url_config(FunctionName="app", Qualifier="pr-9",
                                         AuthType="NONE")["FunctionUrl"]
    lam.add_permission(FunctionName="app", Qualifier="pr-9", StatementId="lambda3-url-public",
                       Action="lambda:InvokeFunctionUrl", Principal="*",
                       FunctionUrlAuthType="NONE")
    lam.put_provisioned_concurrency_config(FunctionName="app", Qualifier="pr-9",
                                           ProvisionedConcurrentExecutions=1)
    made = wrapper(aws)
    deleted = []
    made.clients("lambda").meta.events.register(
        "before-parameter-build.lambda", lambda model, params, **kwargs: deleted.append(
            model.name) if model.name.startswith(("Delete", "Remove")) else None)
    listed = sweep(made, base="app", pr=9, dry_run=True)
    assert f"  delete function URL {url} of alias pr-9" in listed
    assert "  delete provisioned concurrency of alias pr-9" in listed and deleted == []
    lines = sweep(made, base="app", pr=9)
    assert lines[1:3] == listed[1:3] and lines.index(f"  delete function URL {url} of alias "
                                                     "pr-9") < lines.index(
        "  delete alias pr-9 of app")
    assert deleted[:4] == ["DeleteFunctionUrlConfig", "RemovePermission", "RemovePermission",
                           "DeleteProvisionedConcurrencyConfig"]
    assert deleted[4] == "DeleteAlias"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_url_config(FunctionName="app", Qualifier="pr-9")
