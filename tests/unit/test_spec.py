"""builder.spec: the build file loaded into dataclasses, and everything a hostile one may try."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.errors import SpecError
from builder.paths import collect_files, iter_files, resolve_in_repo
from builder.spec import (
    BUILD_FILES,
    DependenciesSpec,
    FunctionSpec,
    FunctionUrlSpec,
    LayerSpec,
    Spec,
    load_spec,
)

SEED_YAML = """\
function:
  runtimes: [python3.12]
  files: [app.py, utils.py, data.yaml]
layers:
  dependencies: [requirements.txt]
  models:
    description: tokenizer data
    preinstall:
      - mkdir -p nltk_data
      - python -m nltk.downloader punkt -d nltk_data
    files: [nltk_data]
"""

SEED_FUNCTION = FunctionSpec(files=("app.py", "utils.py", "data.yaml"),
                             runtimes=("python3.12",), runtime="python3.12")
SEED_DEPENDENCIES = DependenciesSpec(requirements=("requirements.txt",))
SEED_MODELS = LayerSpec(
    key="models", files=("nltk_data",), description="tokenizer data",
    preinstall=("mkdir -p nltk_data", "python -m nltk.downloader punkt -d nltk_data"))


def make_repo(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout with the files the build files below mention."""
    return make_repo(tmp_path / "repo", {
        "app.py": "", "utils.py": "", "data.yaml": "", "requirements.txt": "requests\n",
        "src/handler.py": "", "src/lib/a.py": "", "src/lib/sub/b.py": "",
        "assets/x.bin": "", "req/extra.txt": "",
    })


def load_yaml(repo: Path, text: str, name: str = "build.yaml") -> Spec:
    (repo / name).write_text(text)
    return load_spec(repo)


def refused(repo: Path, text: str, name: str = "build.yaml", **kwargs) -> SpecError:
    (repo / name).write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(repo, **kwargs)
    return info.value


# -- the seed format ---------------------------------------------------------------------


def test_seed_yaml_loads_into_the_dataclasses(repo):
    spec = load_yaml(repo, SEED_YAML)
    assert spec == Spec("build.yaml", SEED_FUNCTION, SEED_DEPENDENCIES, (SEED_MODELS,))
    assert spec.component_names() == ["function", "dependencies", "models"]


def test_seed_json_loads_into_the_same_dataclasses(repo):
    document = {
        "function": {"runtimes": ["python3.12"], "files": ["app.py", "utils.py", "data.yaml"]},
        "layers": {
            "dependencies": ["requirements.txt"],
            "models": {"description": "tokenizer data", "files": ["nltk_data"],
                       "preinstall": ["mkdir -p nltk_data",
                                      "python -m nltk.downloader punkt -d nltk_data"]},
        },
    }
    (repo / "build.json").write_text(json.dumps(document, indent=2))
    spec = load_spec(repo)
    assert spec == Spec("build.json", SEED_FUNCTION, SEED_DEPENDENCIES, (SEED_MODELS,))


def test_seed_source_dir_dest_dir_and_license(repo):
    spec = load_yaml(repo, """\
function:
  runtimes: [python3.11, python3.12]
  source_dir: src/
  files: [handler.py, ./lib]
  license: MIT
layers:
  shared:
    runtimes: [python3.11]
    source_dir: src
    dest_dir: python
    files: [lib]
    license: Apache-2.0
""")
    assert spec.function == FunctionSpec(
        files=("handler.py", "lib"), source_dir="src", runtimes=("python3.11", "python3.12"),
        runtime="python3.11", license="MIT")
    assert spec.dependencies is None
    assert spec.layers == (LayerSpec(key="shared", files=("lib",), source_dir="src",
                                     dest_dir="python", runtimes=("python3.11",),
                                     license="Apache-2.0"),)
    assert spec.component_names() == ["function", "shared"]


def test_build_yml_is_found_too(repo):
    spec = load_yaml(repo, "function: {files: [app.py]}\n", name="build.yml")
    assert spec.file == "build.yml"
    assert spec.function == FunctionSpec(files=("app.py",))
    assert BUILD_FILES == ("build.yaml", "build.yml", "build.json")


# -- extensions --------------------------------------------------------------------------


def test_every_function_extension(repo):
    spec = load_yaml(repo, """\
version: 1
function:
  files: [app.py]
  runtimes: [python3.12, python3.13]
  runtime: python3.13
  architecture: arm64
  handler: app.handler
  role: arn:aws:iam::123456789012:role/fn
  memory: 1024
  timeout: 60
  environment: {STAGE: prod, API_URL: "https://example.test", DEBUG: "true"}
  description: does things
  exclude: ["*.pyc", tests/**]
""")
    assert spec.function == FunctionSpec(
        files=("app.py",), runtimes=("python3.12", "python3.13"), runtime="python3.13",
        architecture="arm64", handler="app.handler", role="arn:aws:iam::123456789012:role/fn",
        memory=1024, timeout=60,
        environment=(("API_URL", "https://example.test"), ("DEBUG", "true"), ("STAGE", "prod")),
        description="does things", exclude=("*.pyc", "tests/**"))


def test_runtime_defaults(repo):
    assert load_yaml(repo, "function: {files: [app.py]}").function.runtime is None
    spec = load_yaml(repo, "function: {files: [app.py], runtime: python3.13}")
    assert spec.function.runtime == "python3.13" and spec.function.runtimes == ()


def test_environment_not_mentioned_or_empty(repo):
    assert load_yaml(repo, "function: {files: [app.py]}").function.environment is None
    spec = load_yaml(repo, "function: {files: [app.py], environment: {}}")
    assert spec.function.environment == ()


def test_dependencies_as_a_mapping(repo):
    spec = load_yaml(repo, """\
function: {files: [app.py]}
layers:
  dependencies:
    requirements: [requirements.txt, req/extra.txt]
    name: my-deps
    runtime_packages: include
    strip: false
    bytecode: true
    keep: [pkg/data/**]
    exclude: ["**/tests/**"]
    description: third-party packages
    license: various
    runtimes: [python3.12]
""")
    assert spec.dependencies == DependenciesSpec(
        requirements=("requirements.txt", "req/extra.txt"), name="my-deps",
        runtime_packages="include", strip=False, bytecode=True, keep=("pkg/data/**",),
        exclude=("**/tests/**",), description="third-party packages", license="various",
        runtimes=("python3.12",))


def test_dependencies_mapping_defaults(repo):
    spec = load_yaml(repo, "function: {files: [app.py]}\n"
                           "layers: {dependencies: {requirements: [requirements.txt]}}\n")
    assert spec.dependencies == DependenciesSpec(requirements=("requirements.txt",))
    assert spec.dependencies.runtime_packages == "exclude" and spec.dependencies.strip is True
    assert spec.dependencies.bytecode is False


def test_custom_layer_name_and_exclude(repo):
    spec = load_yaml(repo, """\
function: {files: [app.py]}
layers:
  assets: {files: [assets], name: shared-assets, exclude: ["*.tmp"]}
""")
    assert spec.layers == (LayerSpec(key="assets", files=("assets",), name="shared-assets",
                                     exclude=("*.tmp",)),)
    assert spec.layer("assets") is spec.layers[0]


def test_empty_layers_section(repo):
    spec = load_yaml(repo, "function: {files: [app.py]}\nlayers:\n")
    assert spec.dependencies is None and spec.layers == ()


def test_five_layers_are_allowed(repo):
    layers = "".join(f"  l{i}: {{files: [assets]}}\n" for i in range(4))
    spec = load_yaml(repo, "function: {files: [app.py]}\nlayers:\n"
                           "  dependencies: [requirements.txt]\n" + layers)
    assert len(spec.component_names()) == 6


def test_line_of_falls_back_to_the_nearest_key(repo):
    spec = load_yaml(repo, SEED_YAML)
    assert spec.line_of("layers.models.files[0]") == 11
    assert spec.line_of("layers.models.dest_dir") == 6
    assert spec.line_of("function") == 1
    assert spec.line_of("nothing") is None


# -- hostile and broken build files: each names file, key and line -----------------------


def assert_error(error: SpecError, *, file: str, key: str | None, line: int | None,
                 says: str) -> None:
    assert (error.file, error.key, error.line) == (file, key, line), str(error)
    assert says in error.message, error.message
    if key:
        assert error.message.startswith(f"{key}: ")


def test_error_renders_file_line_and_key(repo):
    error = refused(repo, "function:\n  files: [/etc/passwd]\n")
    assert str(error) == ("build.yaml:2: function.files[0]: '/etc/passwd' is an absolute path; "
                          "paths are relative to the repository")


def test_absolute_path_is_refused(repo):
    error = refused(repo, "function:\n  files:\n    - app.py\n    - /etc/passwd\n")
    assert_error(error, file="build.yaml", key="function.files[1]", line=4, says="absolute")


def test_dot_dot_escape_is_refused(repo):
    error = refused(repo, "function:\n  files: [app.py, ../secret.txt]\n")
    assert_error(error, file="build.yaml", key="function.files[1]", line=2,
                 says="'../secret.txt' points outside the repository")


def test_escape_from_source_dir_is_refused(repo):
    error = refused(repo, "function:\n  source_dir: src\n  files:\n    - ../app.py\n")
    assert_error(error, file="build.yaml", key="function.files[0]", line=4,
                 says="points outside source_dir 'src'")


def test_source_dir_escape_is_refused(repo):
    error = refused(repo, "function:\n  source_dir: src/../..\n  files: [app.py]\n")
    assert_error(error, file="build.yaml", key="function.source_dir", line=2,
                 says="points outside the repository")


def test_symlinked_file_pointing_outside_is_refused(repo, tmp_path):
    (tmp_path / "secret").write_text("s")
    (repo / "link.txt").symlink_to(tmp_path / "secret")
    error = refused(repo, "function:\n  files: [app.py, link.txt]\n")
    assert_error(error, file="build.yaml", key="function.files[1]", line=2,
                 says="'link.txt' is a symlink to")
    assert "outside the repository" in error.message


@pytest.mark.parametrize("entry, says", [
    ("vendor", "'vendor' is a symlink to"),
    ("vendor/x.py", "'vendor' (in 'vendor/x.py') is a symlink to"),
])
def test_symlinked_folder_pointing_outside_is_refused(repo, tmp_path, entry, says):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.py").write_text("")
    (repo / "vendor").symlink_to(tmp_path / "outside", target_is_directory=True)
    error = refused(repo, f"function:\n  files:\n    - {entry}\n")
    assert_error(error, file="build.yaml", key="function.files[0]", line=3, says=says)


def test_relative_symlink_climbing_out_is_refused(repo):
    (repo / "src" / "up").symlink_to("../..", target_is_directory=True)
    error = refused(repo, "function:\n  source_dir: src/up\n  files: [x]\n")
    assert_error(error, file="build.yaml", key="function.source_dir", line=2,
                 says="'src/up' is a symlink to '../..', outside the repository")


def test_symlink_inside_a_listed_folder_pointing_outside_is_refused(repo, tmp_path):
    (tmp_path / "secret").write_text("s")
    (repo / "src" / "lib" / "sub" / "evil.py").symlink_to(tmp_path / "secret")
    error = refused(repo, "function:\n  source_dir: src\n  files:\n    - handler.py\n"
                          "    - lib\n")
    assert_error(error, file="build.yaml", key="function.files[1]", line=5,
                 says="'src/lib/sub/evil.py' is a symlink to")


def test_symlinked_folder_inside_a_listed_folder_pointing_outside_is_refused(repo):
    (repo / "assets" / "etc").symlink_to("/etc", target_is_directory=True)
    error = refused(repo, "function: {files: [app.py]}\nlayers:\n  a:\n    files: [assets]\n")
    assert_error(error, file="build.yaml", key="layers.a.files[0]", line=4,
                 says="'assets/etc' is a symlink to '/etc'")


def test_symlink_inside_a_preinstall_layer_is_refused_when_collected(repo, tmp_path):
    spec = load_yaml(repo, "function: {files: [app.py]}\n"
                           "layers:\n  m:\n    preinstall: [make]\n    files: [out]\n")
    (repo / "out").mkdir()
    (repo / "out" / "leak").symlink_to(tmp_path)
    with pytest.raises(SpecError) as info:
        collect_files(repo, spec, "m")
    assert_error(info.value, file="build.yaml", key="layers.m.files[0]", line=5,
                 says="'out/leak' is a symlink to")


def test_existing_escaping_symlink_in_a_preinstall_layer_is_refused_at_load(repo):
    (repo / "out").symlink_to("/tmp", target_is_directory=True)
    error = refused(repo, "function: {files: [app.py]}\n"
                          "layers:\n  m:\n    preinstall: [make]\n    files: [out/x]\n")
    assert_error(error, file="build.yaml", key="layers.m.files[0]", line=5,
                 says="'out' (in 'out/x') is a symlink to '/tmp'")


def test_symlink_loop_is_refused(repo):
    (repo / "loop").symlink_to("loop")
    error = refused(repo, "function:\n  files: [loop]\n")
    assert_error(error, file="build.yaml", key="function.files[0]", line=2,
                 says="symlink loop")


def test_symlink_loop_inside_a_listed_folder_is_refused(repo):
    (repo / "src" / "lib" / "again").symlink_to(".", target_is_directory=True)
    error = refused(repo, "function:\n  files: [src/lib]\n")
    assert_error(error, file="build.yaml", key="function.files[0]", line=2,
                 says="'src/lib/again' is a symlink loop")


def test_unknown_key_points_at_its_line(repo):
    error = refused(repo, "function:\n  files: [app.py]\n  runtimez: [python3.12]\n")
    assert_error(error, file="build.yaml", key="function", line=3,
                 says="unknown key 'runtimez' (allowed: files, source_dir, runtimes,")


def test_unknown_top_level_key(repo):
    error = refused(repo, "function: {files: [app.py]}\nlayer: {}\n")
    assert_error(error, file="build.yaml", key=None, line=2,
                 says="top level: unknown key 'layer' (allowed: version, function, functions, "
                      "layers, ")


def test_function_name_is_refused_with_the_reason(repo):
    error = refused(repo, "function:\n  name: my-fn\n  files: [app.py]\n")
    assert_error(error, file="build.yaml", key="function", line=2, says="unknown key 'name'")
    assert "command line" in error.hint


def test_wrong_types(repo):
    error = refused(repo, "function:\n  files: app.py\n")
    assert_error(error, file="build.yaml", key="function.files", line=2,
                 says="expected a list, got 'app.py'")
    error = refused(repo, "function:\n  files: [app.py]\n  memory: lots\n")
    assert_error(error, file="build.yaml", key="function.memory", line=3,
                 says="expected an integer, got 'lots'")
    error = refused(repo, "function: {files: [app.py]}\nlayers:\n  m:\n    files:\n"
                          "      - assets\n      - 3\n")
    assert_error(error, file="build.yaml", key="layers.m.files[1]", line=6,
                 says="expected a string, got 3")


def test_unquoted_environment_value_is_refused(repo):
    error = refused(repo, "function:\n  files: [app.py]\n  environment:\n    DEBUG: true\n")
    assert_error(error, file="build.yaml", key="function.environment.DEBUG", line=4,
                 says="expected a string, got true")


def test_bad_runtime(repo):
    error = refused(repo, "function:\n  files: [app.py]\n  runtimes: [python3.12, python2.7]\n")
    assert_error(error, file="build.yaml", key="function.runtimes[1]", line=3,
                 says="'python2.7' is not one of python3.10, python3.11")


def test_runtime_outside_runtimes(repo):
    error = refused(repo, "function:\n  files: [app.py]\n  runtimes: [python3.12]\n"
                          "  runtime: python3.13\n")
    assert_error(error, file="build.yaml", key="function.runtime", line=4,
                 says="'python3.13' is not one of function.runtimes (python3.12)")


def test_bad_architecture(repo):
    error = refused(repo, "function:\n  files: [app.py]\n  architecture: x86\n")
    assert_error(error, file="build.yaml", key="function.architecture", line=3,
                 says="'x86' is not one of x86_64, arm64")


@pytest.mark.parametrize("value", ["requirements.txt", "3", "null", "true"])
def test_dependencies_neither_list_nor_mapping(repo, value):
    error = refused(repo, f"function: {{files: [app.py]}}\nlayers:\n  dependencies: {value}\n")
    assert_error(error, file="build.yaml", key="layers.dependencies", line=3,
                 says="expected a list of requirements files or a mapping with 'requirements'")


def test_dependencies_mapping_without_requirements(repo):
    error = refused(repo, "function: {files: [app.py]}\nlayers:\n  dependencies:\n"
                          "    strip: false\n")
    assert_error(error, file="build.yaml", key="layers.dependencies", line=3,
                 says="missing required key 'requirements'")


def test_more_than_five_layers(repo):
    layers = "".join(f"  l{i}: {{files: [assets]}}\n" for i in range(5))
    error = refused(repo, "function: {files: [app.py]}\nlayers:\n"
                          "  dependencies: [requirements.txt]\n" + layers)
    assert_error(error, file="build.yaml", key="layers", line=2,
                 says="expected at most 5 layers, got 6")
    assert "Lambda" in error.hint


def test_layer_called_function(repo):
    error = refused(repo, "function: {files: [app.py]}\nlayers:\n  function:\n"
                          "    files: [assets]\n")
    assert_error(error, file="build.yaml", key="layers", line=3,
                 says="a layer cannot be called 'function'")


def test_bad_layer_key(repo):
    error = refused(repo, "function: {files: [app.py]}\nlayers:\n  my.layer: {files: [assets]}\n")
    assert_error(error, file="build.yaml", key="layers", line=3,
                 says="'my.layer' is not a valid layer key")


def test_two_layers_with_the_same_name(repo):
    error = refused(repo, "function: {files: [app.py]}\nlayers:\n"
                          "  a: {files: [assets], name: shared}\n"
                          "  b:\n    files: [assets]\n    name: shared\n")
    assert_error(error, file="build.yaml", key="layers.b.name", line=6,
                 says="'shared' is already used by layers.a.name")


def test_more_problems_are_counted(repo):
    error = refused(repo, "function:\n  files: [app.py]\n  memory: 1\n  timeout: 0\n")
    assert_error(error, file="build.yaml", key="function.memory", line=3,
                 says="expected at least 128, got 1 (and 1 more problem)")


def test_yaml_syntax_error_has_the_line(repo):
    error = refused(repo, "function:\n  files: [app.py\n  runtimes: [python3.12]\n\n")
    assert_error(error, file="build.yaml", key=None, line=3, says="invalid YAML")


def test_yaml_tab_indentation_error_has_the_line(repo):
    error = refused(repo, "function:\n  files: [app.py]\n\truntimes: []\n")
    assert error.file == "build.yaml" and error.line == 3 and "invalid YAML" in error.message


def test_yaml_python_tags_are_refused(repo):
    error = refused(repo, "function:\n  files: !!python/object/apply:os.getcwd []\n")
    assert_error(error, file="build.yaml", key=None, line=2, says="invalid YAML")


def test_yaml_duplicate_key(repo):
    error = refused(repo, "function:\n  files: [app.py]\n  files: [/etc/passwd]\n")
    assert_error(error, file="build.yaml", key="function", line=3,
                 says="duplicate key 'files' (first at line 2)")


def test_yaml_non_string_key(repo):
    error = refused(repo, "function:\n  files: [app.py]\nlayers:\n  yes: {files: [assets]}\n")
    assert_error(error, file="build.yaml", key="layers", line=4, says="key yes is not a string")
    assert "quote" in error.hint


def test_yaml_alias_bomb_is_refused(repo):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1},"
              f" *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 9)]
    error = refused(repo, "\n".join(lines) + "\n")
    assert error.file == "build.yaml" and "more than" in error.message


def test_yaml_merge_keys_work(repo):
    spec = load_yaml(repo, "function: &f {files: [app.py], runtimes: [python3.12]}\n"
                     "layers:\n  a:\n    <<: *f\n    files: [assets]\n")
    assert spec.layers[0].files == ("assets",)
    assert spec.layers[0].runtimes == ("python3.12",)


def test_json_syntax_error_has_the_line(repo):
    error = refused(repo, '{\n  "function": {\n    "files": ["app.py",]\n  }\n}\n',
                    name="build.json")
    assert_error(error, file="build.json", key=None, line=3, says="invalid JSON")


def test_json_schema_errors_have_lines(repo):
    text = json.dumps({"function": {"files": ["app.py"], "architecture": "x86"}}, indent=2)
    error = refused(repo, text, name="build.json")
    assert_error(error, file="build.json", key="function.architecture", line=6,
                 says="'x86' is not one of")
    error = refused(repo, '{"function": {\n\t"files": [\n\t\t"app.py",\n\t\t"/abs"]}}',
                    name="build.json")
    assert_error(error, file="build.json", key="function.files[1]", line=4, says="absolute")


def test_json_duplicate_key(repo):
    error = refused(repo, '{"function": {"files": ["app.py"]},\n "function": {"files": []}}',
                    name="build.json")
    assert_error(error, file="build.json", key=None, line=2, says="duplicate key 'function'")


def test_json_duplicate_key_where_yaml_cannot_say_the_line(repo):
    key = "k" * 1100  # longer than a YAML simple key may be
    error = refused(repo, f'{{"function": {{"files": ["app.py"]}}, "{key}": 1, "{key}": 2}}',
                    name="build.json")
    assert_error(error, file="build.json", key=None, line=None, says="duplicate key 'kkk")


def test_json_without_yaml_lines_still_names_the_key(repo):
    key = "k" * 1100
    error = refused(repo, f'{{"function": {{"files": ["app.py"], "memory": 1}}, "{key}": 1}}',
                    name="build.json")
    assert (error.key, error.line) == ("function.memory", None)


def test_empty_build_file(repo):
    error = refused(repo, "# nothing yet\n")
    assert_error(error, file="build.yaml", key=None, line=1, says="the build file is empty")


def test_not_a_mapping(repo):
    error = refused(repo, "- function\n")
    assert_error(error, file="build.yaml", key=None, line=1,
                 says="top level: expected a mapping, got a list")


def test_missing_build_file(repo):
    with pytest.raises(SpecError) as info:
        load_spec(repo)
    assert info.value.file is None
    assert "no build file: looked for build.yaml, build.yml, build.json" in str(info.value)
    assert "--build-file" in info.value.hint


def test_two_build_files_are_ambiguous(repo):
    (repo / "build.json").write_text("{}")
    error = refused(repo, SEED_YAML)
    assert "found both build.yaml and build.json" in error.message


def test_missing_listed_file(repo):
    error = refused(repo, "function:\n  source_dir: src\n  files:\n    - handler.py\n"
                          "    - missing.py\n")
    assert_error(error, file="build.yaml", key="function.files[1]", line=5,
                 says="'src/missing.py' not found")


def test_missing_file_that_looks_like_a_glob_gets_a_hint(repo):
    error = refused(repo, "function:\n  files: ['*.py']\n")
    assert "not glob patterns" in error.hint


def test_missing_requirements_file(repo):
    error = refused(repo, "function: {files: [app.py]}\nlayers:\n  dependencies:\n"
                          "    requirements:\n      - nope.txt\n")
    assert_error(error, file="build.yaml", key="layers.dependencies.requirements[0]", line=5,
                 says="'nope.txt' not found")
    error = refused(repo, "function: {files: [app.py]}\nlayers:\n  dependencies: [req]\n")
    assert_error(error, file="build.yaml", key="layers.dependencies[0]", line=3,
                 says="'req' is not a file")


def test_missing_source_dir(repo):
    error = refused(repo, "function:\n  source_dir: nowhere\n  files: [app.py]\n")
    assert_error(error, file="build.yaml", key="function.source_dir", line=2,
                 says="'nowhere' not found")
    error = refused(repo, "function:\n  source_dir: app.py\n  files: [x]\n")
    assert_error(error, file="build.yaml", key="function.source_dir", line=2,
                 says="'app.py' is not a folder")


def test_preinstall_layer_files_may_not_exist_yet(repo):
    spec = load_yaml(repo, SEED_YAML)
    assert not (repo / "nltk_data").exists()
    assert spec.layer("models").files == ("nltk_data",)
    with pytest.raises(SpecError, match="'nltk_data' not found"):
        collect_files(repo, spec, "models")


def test_layer_without_preinstall_must_exist(repo):
    error = refused(repo, "function: {files: [app.py]}\nlayers:\n  m:\n    files: [nltk_data]\n")
    assert_error(error, file="build.yaml", key="layers.m.files[0]", line=4, says="not found")


@pytest.mark.parametrize("value, says", [
    ("'src\\\\app.py'", "backslash"),
    (".git/config", "inside .git"),
    ("src/../.git", "inside .git"),
    ("''", "expected a non-empty string"),
])
def test_other_bad_paths(repo, value, says):
    error = refused(repo, f"function:\n  files:\n    - {value}\n")
    assert error.key == "function.files[0]" and error.line == 3
    assert says in error.message


def test_same_path_twice_after_normalising(repo):
    error = refused(repo, "function:\n  files: [app.py, ./app.py]\n")
    assert_error(error, file="build.yaml", key="function.files[1]", line=2,
                 says="'./app.py' is the same path as [0]")


@pytest.mark.parametrize("pattern, says", [
    ("/abs/*", "is anchored"), ("./tests", "is anchored; a pattern without / matches a name"),
    ("../x", "cannot reach outside"), ("a/../../b", "cannot reach outside"),
    ("a\\\\b", "backslash")])
def test_bad_globs(repo, pattern, says):
    error = refused(repo, f'function:\n  files: [app.py]\n  exclude: ["{pattern}"]\n')
    assert_error(error, file="build.yaml", key="function.exclude[0]", line=3, says=says)


def test_bad_dest_dir(repo):
    error = refused(repo, "function: {files: [app.py]}\nlayers:\n  m:\n    files: [assets]\n"
                          "    dest_dir: ../opt\n")
    assert_error(error, file="build.yaml", key="layers.m.dest_dir", line=5,
                 says="points outside the layer")


# -- --build-file ------------------------------------------------------------------------


def test_build_file_option(repo):
    (repo / "deploy").mkdir()
    (repo / "deploy" / "prod.yaml").write_text("function:\n  files: [app.py]\n  memory: 1\n")
    with pytest.raises(SpecError) as info:
        load_spec(repo, "deploy/prod.yaml")
    assert_error(info.value, file="deploy/prod.yaml", key="function.memory", line=3,
                 says="expected at least 128")
    (repo / "deploy" / "prod.json").write_text('{"function": {"files": ["app.py"]}}')
    assert load_spec(repo, "./deploy/prod.json").file == "deploy/prod.json"


@pytest.mark.parametrize("option, says", [
    ("../build.yaml", "points outside the repository"),
    ("/etc/passwd", "is an absolute path"),
    ("missing.yaml", "not found"),
    ("src", "is not a file"),
])
def test_build_file_option_outside_or_missing(repo, tmp_path, option, says):
    (tmp_path / "build.yaml").write_text(SEED_YAML)
    with pytest.raises(SpecError) as info:
        load_spec(repo, option)
    assert info.value.file == option
    assert f"--build-file: {option!r} {says}" in str(info.value)


def test_build_file_symlink_pointing_outside(repo, tmp_path):
    (tmp_path / "elsewhere.yaml").write_text(SEED_YAML)
    (repo / "build.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    with pytest.raises(SpecError) as info:
        load_spec(repo)
    assert info.value.file == "build.yaml"
    assert "'build.yaml' is a symlink to" in info.value.message


# -- resolve_in_repo, iter_files, collect_files, globs -----------------------------------


def test_resolve_in_repo_follows_symlinks_that_stay_inside(repo):
    (repo / "alias").symlink_to("src/lib", target_is_directory=True)
    path = resolve_in_repo(repo, "alias/a.py", file="build.yaml", key="k")
    assert path == (repo / "src" / "lib" / "a.py").resolve()
    missing = resolve_in_repo(repo, "new/dir", file="build.yaml", key="k", must_exist=False)
    assert missing == repo.resolve() / "new" / "dir"


def test_resolve_in_repo_errors_carry_what_they_were_given(repo):
    with pytest.raises(SpecError) as info:
        resolve_in_repo(repo, "../x", file="build.yaml", key="layers.m.files[2]", line=7)
    assert str(info.value) == ("build.yaml:7: layers.m.files[2]: '../x' points outside "
                               "the repository")


def test_iter_files_walks_in_name_order_and_skips_git(repo):
    (repo / "src" / "lib" / ".git").mkdir()
    (repo / "src" / "lib" / ".git" / "config").write_text("token")
    (repo / "src" / "lib" / "inside").symlink_to("../handler.py")
    base = resolve_in_repo(repo, "src/lib", file="f", key="k")
    found = list(iter_files(repo, base, file="f", key="k"))
    assert [rel for rel, _ in found] == ["a.py", "inside", "sub/b.py"]
    assert found[1][1] == (repo / "src" / "handler.py").resolve()
    single = resolve_in_repo(repo, "app.py", file="f", key="k")
    assert list(iter_files(repo, single, file="f", key="k")) == [("", single)]


def test_iter_files_refuses_broken_symlinks(repo):
    (repo / "assets" / "gone").symlink_to("nothing-here")
    with pytest.raises(SpecError, match="'assets/gone' is a broken symlink"):
        list(iter_files(repo, (repo / "assets").resolve(), file="f", key="k"))


def test_collect_files_applies_source_dir_dest_dir_and_exclude(repo):
    make_repo(repo, {"src/lib/__pycache__/a.pyc": "", "src/lib/tests/t.py": ""})
    spec = load_yaml(repo, """\
function:
  source_dir: src
  files: [handler.py, lib]
  exclude: ["**/__pycache__", lib/tests]
layers:
  shared:
    source_dir: src
    dest_dir: python
    files: [lib]
    exclude: ["**/*.pyc"]
""")
    root = repo.resolve()
    assert collect_files(repo, spec, "function") == [
        ("handler.py", root / "src/handler.py"),
        ("lib/a.py", root / "src/lib/a.py"),
        ("lib/sub/b.py", root / "src/lib/sub/b.py"),
    ]
    assert [name for name, _ in collect_files(repo, spec, "shared")] == [
        "python/lib/a.py", "python/lib/sub/b.py", "python/lib/tests/t.py"]


def test_collect_files_of_a_whole_source_dir(repo):
    spec = load_yaml(repo, "function:\n  source_dir: src\n  files: [.]\n")
    assert spec.function.files == (".",)
    assert [name for name, _ in collect_files(repo, spec, "function")] == [
        "handler.py", "lib/a.py", "lib/sub/b.py"]


@pytest.mark.parametrize("patterns, kept", [
    (["*.pyc"], ["a.py", "keep.txt", "pkg/b.py", "pkg/tests/t.py"]),
    (["**/*.pyc"], ["a.py", "keep.txt", "pkg/b.py", "pkg/tests/t.py"]),
    (["tests"], ["a.py", "a.pyc", "keep.txt", "pkg/b.py", "pkg/b.pyc"]),
    (["pkg/tests"], ["a.py", "a.pyc", "keep.txt", "pkg/b.py", "pkg/b.pyc"]),
    (["tests/**"], ["a.py", "a.pyc", "keep.txt", "pkg/b.py", "pkg/b.pyc", "pkg/tests/t.py"]),
    (["pkg/**"], ["a.py", "a.pyc", "keep.txt"]),
    (["?.py"], ["a.pyc", "keep.txt", "pkg/b.pyc"]),
    (["[!k]*.txt", "*.py?"], ["a.py", "keep.txt", "pkg/b.py", "pkg/tests/t.py"]),
])
def test_exclude_globs_as_documented(repo, patterns, kept):
    make_repo(repo, {f"g/{name}": "" for name in [
        "a.py", "a.pyc", "keep.txt", "pkg/b.py", "pkg/b.pyc", "pkg/tests/t.py"]})
    spec = load_yaml(repo, f"function:\n  source_dir: g\n  files: [.]\n  exclude: {patterns}\n")
    assert [name for name, _ in collect_files(repo, spec, "function")] == kept


def test_spec_is_hashable_and_lines_do_not_affect_equality(repo):
    spec = load_yaml(repo, SEED_YAML)
    same = Spec(spec.file, spec.function, spec.dependencies, spec.layers)
    assert spec == same and hash(spec) == hash(same)


def test_symlinked_repo_root_is_fine(repo, tmp_path):
    (tmp_path / "checkout").symlink_to(repo, target_is_directory=True)
    (repo / "build.yaml").write_text(SEED_YAML)
    assert load_spec(tmp_path / "checkout").function == SEED_FUNCTION


def test_iter_files_refuses_a_base_outside_the_repository(repo, tmp_path):
    with pytest.raises(SpecError, match="outside the repository"):
        list(iter_files(repo, tmp_path, file="f", key="k"))
    (repo / "out").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(SpecError, match="outside the repository"):
        list(iter_files(repo, repo / "out", file="f", key="k"))


# -- several functions (`functions:`) ----------------------------------------------------

MONOREPO_YAML = """\
functions:
  api:
    name: shop-api
    runtimes: [python3.13]
    handler: app.handler
    source_dir: src
    files: [handler.py]
    dependencies: [requirements.txt]
    layers: [shared]
  worker:
    runtimes: [python3.12]
    architecture: arm64
    files: [app.py]
    dependencies:
      requirements: [req/extra.txt]
      name: worker-deps
    layers: [shared, assets]
layers:
  shared:
    source_dir: src
    dest_dir: python
    files: [lib]
  assets:
    files: [assets]
"""


def test_functions_load_each_with_its_own_settings_dependencies_and_layers(repo):
    spec = load_yaml(repo, MONOREPO_YAML)
    assert spec.function is None and spec.dependencies is None
    assert spec.function_keys() == ("api", "worker")
    api, worker = spec.each_function()
    assert (api.key, api.name, api.function_at) == ("api", "shop-api", ("functions", "api"))
    assert api.function == FunctionSpec(files=("handler.py",), source_dir="src",
                                        runtimes=("python3.13",), runtime="python3.13",
                                        handler="app.handler")
    assert api.dependencies == DependenciesSpec(requirements=("requirements.txt",))
    assert [layer.key for layer in api.layers] == ["shared"]
    assert (worker.name, worker.function.architecture) == (None, "arm64")
    assert worker.dependencies.name == "worker-deps"
    assert [layer.key for layer in worker.layers] == ["shared", "assets"]
    assert api.layer("shared") is worker.layer("shared")  # one definition, listed twice
    assert worker.component_names() == ["function", "dependencies", "shared", "assets"]
    assert spec.component_names() == ["function", "dependencies", "shared", "assets"]


def test_the_single_function_form_is_its_own_one_function(repo):
    spec = load_yaml(repo, SEED_YAML)
    assert spec.function_keys() == ("function",)
    assert spec.for_function("function") is spec
    with pytest.raises(KeyError):
        spec.for_function("api")


def test_a_function_path_error_names_its_key_path_and_line(repo):
    error = refused(repo, MONOREPO_YAML.replace("files: [handler.py]", "files: [gone.py]"))
    assert_error(error, file="build.yaml", key="functions.api.files[0]", line=7,
                 says="functions.api.files[0]: 'src/gone.py' not found")
    error = refused(repo, MONOREPO_YAML.replace("[req/extra.txt]", "[req/none.txt]"))
    assert_error(error, file="build.yaml", key="functions.worker.dependencies.requirements[0]",
                 line=15, says="'req/none.txt'")


@pytest.mark.parametrize("change, key, says", [
    (("layers: [shared, assets]", "layers: [shared, nope]"), "functions.worker.layers[1]",
     "'nope' is not a custom layer of this build file (layers: assets, shared)"),
    (("  assets:\n    files: [assets]\n", "  assets:\n    files: [assets]\n  extra:\n"
      "    files: [assets]\n"), "layers.extra", "is listed by no function"),
    (("layers:\n  shared:", "layers:\n  dependencies: [requirements.txt]\n  shared:"),
     "layers.dependencies", "a top-level dependencies layer is for the `function:` form"),
    (("    files: [app.py]\n", "    name: shop-api\n    files: [app.py]\n"),
     "functions.worker.name", "function name 'shop-api' is already used by functions.api"),
    (("  api:\n    name: shop-api", "  bad key:\n    name: shop-api"), "functions",
     "invalid key"),
    (("    runtimes: [python3.13]", "    runtimes: [python3.13]\n    runtime: python3.12"),
     "functions.api.runtime", "'python3.12' is not one of functions.api.runtimes"),
    (("    handler: app.handler", "    handler: app.handler\n    bogus: 1"), "functions.api",
     "unknown key 'bogus'"),
])
def test_bad_functions_are_refused_with_the_key(repo, change, key, says):
    error = refused(repo, MONOREPO_YAML.replace(*change))
    assert error.key == key, str(error)
    assert says in error.message, error.message


def test_function_and_functions_together_are_refused(repo):
    error = refused(repo, "function: {files: [app.py]}\n" + MONOREPO_YAML)
    assert "has both `function` and `functions`" in error.message
    assert "not both" in error.hint


def test_an_empty_functions_map_is_refused(repo):
    assert "lists no function" in refused(repo, "functions: {}\n").message


def test_a_function_with_more_than_five_layers_is_refused(repo):
    layers = "".join(f"  l{i}:\n    files: [assets]\n" for i in range(5))
    error = refused(repo, "functions:\n  api:\n    files: [app.py]\n"
                    "    dependencies: [requirements.txt]\n"
                    "    layers: [l0, l1, l2, l3, l4]\nlayers:\n" + layers)
    assert error.key == "functions.api.layers"
    assert "6 layers with its dependencies" in error.message


# -- settings carried by CreateFunction / UpdateFunctionConfiguration -----------------------


def test_function_settings_of_2026(repo):
    spec = load_yaml(repo, """\
function:
  files: [app.py]
  runtime: python3.13
  ephemeral_storage: 512
  tracing: Active
  logging: {format: JSON, application_level: WARN, system_level: INFO, log_group: /acme/fn}
  kms_key: arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
  dead_letter: arn:aws:sqs:us-east-1:123456789012:failed-events
  vpc: {subnets: [subnet-0b, subnet-0a], security_groups: [sg-01]}
  snap_start: true
""")
    fn = spec.function
    assert (fn.ephemeral_storage, fn.tracing, fn.snap_start) == (512, "Active", True)
    assert fn.logging == (("LogFormat", "JSON"), ("ApplicationLogLevel", "WARN"),
                          ("SystemLogLevel", "INFO"), ("LogGroup", "/acme/fn"))
    assert fn.kms_key.endswith(":key/1234abcd-12ab-34cd-56ef-1234567890ab")
    assert fn.dead_letter == "arn:aws:sqs:us-east-1:123456789012:failed-events"
    assert fn.vpc == (("subnet-0b", "subnet-0a"), ("sg-01",))
    plain = load_yaml(repo, "function: {files: [app.py]}").function
    assert (plain.ephemeral_storage, plain.tracing, plain.logging, plain.kms_key,
            plain.dead_letter, plain.vpc, plain.snap_start) == (None,) * 7


def test_the_same_settings_in_functions(repo):
    spec = load_yaml(repo, """\
functions:
  api:
    files: [app.py]
    tracing: PassThrough
    ephemeral_storage: 2048
""")
    fn = spec.for_function("api").function
    assert (fn.tracing, fn.ephemeral_storage) == ("PassThrough", 2048)


@pytest.mark.parametrize("text, key, line, says", [
    ("function:\n  files: [app.py]\n  ephemeral_storage: 256\n",
     "function.ephemeral_storage", 3, "512"),
    ("function:\n  files: [app.py]\n  tracing: On\n", "function.tracing", 3, "Active"),
    ("function:\n  files: [app.py]\n  vpc: {subnets: [subnet-1]}\n", "function.vpc", 3,
     "security_groups"),
    ("function:\n  files: [app.py]\n  kms_key: alias/mine\n", "function.kms_key", 3, "kms"),
])
def test_settings_outside_lambdas_values_are_refused_by_the_schema(repo, text, key, line, says):
    assert_error(refused(repo, text), file="build.yaml", key=key, line=line, says=says)


def test_snap_start_with_more_than_512_mb_of_ephemeral_storage_is_refused(repo):
    error = refused(repo, "function:\n  files: [app.py]\n  runtime: python3.13\n"
                          "  snap_start: true\n  ephemeral_storage: 1024\n")
    assert_error(error, file="build.yaml", key="function.ephemeral_storage", line=5,
                 says="SnapStart doesn't support ephemeral storage greater than 512 MB")
    assert "512 or less" in error.hint
    load_yaml(repo, "function: {files: [app.py], snap_start: false, ephemeral_storage: 1024}")


def test_snap_start_needs_python_3_12_or_later(repo):
    error = refused(repo, "function:\n  files: [app.py]\n  runtimes: [python3.11]\n"
                          "  snap_start: true\n")
    assert_error(error, file="build.yaml", key="function.snap_start", line=4,
                 says="SnapStart is not available on python3.11")
    assert "python3.12 and later" in error.message
    assert load_yaml(repo, "function: {files: [app.py], runtime: python3.12, "
                           "snap_start: true}").function.snap_start is True


def test_log_levels_need_the_json_format(repo):
    error = refused(repo, "function:\n  files: [app.py]\n  logging:\n    format: Text\n"
                          "    application_level: DEBUG\n")
    assert_error(error, file="build.yaml", key="function.logging.application_level", line=5,
                 says="JSON")


@pytest.mark.parametrize("name", ["AWS_REGION", "AWS_LAMBDA_FUNCTION_NAME", "AWS_EXECUTION_ENV",
                                  "LAMBDA_TASK_ROOT", "AWS_SESSION_TOKEN"])
def test_a_reserved_environment_variable_is_refused_naming_it(repo, name):
    error = refused(repo, f"function:\n  files: [app.py]\n  environment:\n    STAGE: prod\n"
                          f"    {name}: x\n")
    assert_error(error, file="build.yaml", key=f"function.environment.{name}", line=5,
                 says=f"{name} is reserved")
    assert name in error.hint


def test_unreserved_runtime_variables_may_be_set(repo):
    spec = load_yaml(repo, "function:\n  files: [app.py]\n  environment:\n"
                           "    TZ: Europe/Paris\n    AWS_LAMBDA_EXEC_WRAPPER: /opt/wrap\n")
    assert dict(spec.function.environment)["TZ"] == "Europe/Paris"


def test_tags_and_reserved_concurrency(repo):
    spec = load_yaml(repo, "function:\n  files: [app.py]\n  tags: {team: shop, old: null}\n"
                           "  reserved_concurrency: 10\n")
    assert spec.function.tags == (("old", None), ("team", "shop"))
    assert spec.function.reserved_concurrency == 10
    error = refused(repo, "function:\n  files: [app.py]\n  tags: {'aws:x': y}\n")
    assert_error(error, file="build.yaml", key="function.tags", line=3, says="aws:")
    error = refused(repo, "function:\n  files: [app.py]\n  reserved_concurrency: -1\n")
    assert_error(error, file="build.yaml", key="function.reserved_concurrency", line=3,
                 says="0")


def test_provisioned_concurrency_function_url_recursion_and_outside_layers(repo):
    spec = load_yaml(repo, """
function:
  files: [app.py]
  provisioned_concurrency: 5
  reserved_concurrency: 10
  recursion: allow
  function_url:
    auth: NONE
    cors: {allow_origins: ["https://shop.example"], allow_methods: [GET], max_age: 300}
  layers: [arn:aws:lambda:us-east-1:580247275435:layer:LambdaInsightsExtension:38]
""")
    fn = spec.function
    assert (fn.provisioned_concurrency, fn.recursion) == (5, "Allow")
    assert fn.function_url == FunctionUrlSpec(auth="NONE", cors=(
        ("AllowOrigins", ("https://shop.example",)), ("AllowMethods", ("GET",)),
        ("MaxAge", 300)))
    assert fn.outside_layers == (
        "arn:aws:lambda:us-east-1:580247275435:layer:LambdaInsightsExtension:38",)
    plain = load_yaml(repo, "function:\n  files: [app.py]\n  function_url: false\n").function
    assert plain.function_url == FunctionUrlSpec(remove=True)
    assert (plain.outside_layers, plain.provisioned_concurrency, plain.recursion) == (
        None, None, None)
    assert load_yaml(repo, "function:\n  files: [app.py]\n  function_url: true\n"
                     ).function.function_url == FunctionUrlSpec()


@pytest.mark.parametrize(("text", "key", "words"), [
    ("  snap_start: true\n  runtime: python3.12\n  provisioned_concurrency: 2\n",
     "function.provisioned_concurrency", "SnapStart doesn't support provisioned concurrency"),
    ("  reserved_concurrency: 3\n  provisioned_concurrency: 4\n",
     "function.provisioned_concurrency", "more than the function's reserved_concurrency (3)"),
    ("  layers: [arn:aws:lambda:us-east-1:123456789012:layer:x]\n",
     "function.layers[0]", "layer version ARN"),
    ("  function_url: {auth: OPEN}\n", "function.function_url.auth", "AWS_IAM"),
    ("  recursion: sometimes\n", "function.recursion", "terminate"),
])
def test_bad_settings_of_the_alias_are_refused_naming_the_key(repo, text, key, words):
    error = refused(repo, "function:\n  files: [app.py]\n" + text)
    assert error.key == key and words in str(error), str(error)


def test_outside_layers_count_towards_five(repo):
    arns = "".join(f"    - arn:aws:lambda:us-east-1:123456789012:layer:l{i}:1\n"
                   for i in range(4))
    error = refused(repo, "function:\n  files: [app.py]\n  layers:\n" + arns
                    + "layers:\n  dependencies: [requirements.txt]\n  data: {files: [app.py]}\n")
    assert error.key == "function.layers" and "6 layers" in str(error)


def test_a_functions_entry_mixes_layer_keys_and_arns(repo):
    arn = "arn:aws:lambda:us-east-1:123456789012:layer:otel:4"
    spec = load_yaml(repo, f"""
functions:
  api:
    files: [app.py]
    layers: [shared, "{arn}"]
layers:
  shared: {{files: [app.py]}}
""")
    entry = spec.functions[0]
    assert entry.layers == ("shared",) and entry.function.outside_layers == (arn,)
