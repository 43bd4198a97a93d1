"""Every installable project builds, or fails at once with the real reason: real installs
from PyPI (uv) for targets other than this machine, on projects written here in the shapes
of aws-lambda-builders' python_pip cases (a setup.py/setup.cfg project by bare path, a pip
option after a requirement, a pin whose wheels need a newer glibc, optional C speedups, a C
sdist for another Python, a build that is broken)."""
from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from builder.errors import InstallError, SpecError
from builder.install import install_requirements
from builder.pythons import find_python
from builder.runtimes import make_target
from builder.wheels import incompatible_distributions

pytestmark = pytest.mark.network

PY311 = make_target("python3.11", "x86_64")
PY312 = make_target("python3.12", "x86_64")
PY313_ARM = make_target("python3.13", "arm64")
SETUP_PY = ('from setuptools import setup\n'
            'setup(name="local-package", version="0.1", packages=["localpkg"])\n')
SETUP_CFG = "[metadata]\nname = cfg-package\nversion = 0.2\n[options]\npackages = cfgpkg\n"
C_SETUP = ('from setuptools import setup, Extension\n'
           'setup(name="cext", version="1.0", packages=["cext"],\n'
           '      ext_modules=[Extension("cext._fast", ["cext/_fast.c"])])\n')
C_SOURCE = ('#include <Python.h>\nstatic struct PyModuleDef m = {PyModuleDef_HEAD_INIT, "_fast"};\n'
            'PyMODINIT_FUNC PyInit__fast(void) { return PyModule_Create(&m); }\n')
RECORDS_PYTHON = ('import sys\nfrom setuptools import setup\n'
                  'open("versioned/built.py", "w").write(f"WITH = {sys.version_info[:2]!r}\\n")\n'
                  'setup(name="versioned", version="1.0", packages=["versioned"])\n')
BROKEN = ('from setuptools import setup\n'
          'raise RuntimeError("broken on purpose: LIBFOO_DIR is not set")\n')


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """install_requirements for a repository made of `files`, sharing one uv cache."""
    base = tmp_path_factory.mktemp("failures")
    count = iter(range(1000))

    def run(files: dict[str, str], target=PY312, **kwargs):
        root = base / f"case-{next(count)}"
        repo = root / "repo"
        write(repo, files)
        site = root / "site"
        result = install_requirements([repo / "requirements.txt"], site, target,
                                      cache_dir=base / "cache", repo_root=repo, native=False,
                                      installer="uv", **kwargs)
        return result, site
    return run


def has_python(version: str) -> bool:
    import uv

    return find_python(version, uv.find_uv_bin()) is not None


# -- 1. local projects by bare path --------------------------------------------------------


def test_setup_py_and_setup_cfg_projects_by_bare_path_build_for_the_target(build, tmp_path):
    result, site = build({
        "requirements.txt": "./local-package\n-e ./cfg\n",
        "local-package/setup.py": SETUP_PY, "local-package/localpkg/__init__.py": "X = 1\n",
        "cfg/setup.cfg": SETUP_CFG, "cfg/setup.py": "from setuptools import setup\nsetup()\n",
        "cfg/cfgpkg/__init__.py": "Y = 2\n",
    })
    assert dict(result.packages) == {"local-package": "0.1", "cfg-package": "0.2"}
    assert set(result.from_source) == {"local-package", "cfg-package"}
    assert (site / "localpkg" / "__init__.py").read_text() == "X = 1\n"
    assert (site / "cfgpkg" / "__init__.py").is_file()
    assert incompatible_distributions(site, PY312) == []


def test_an_absolute_path_inside_the_repository_builds_too(build, tmp_path_factory):
    base = tmp_path_factory.mktemp("absolute")
    repo = base / "repo"
    write(repo, {"pkg/setup.py": SETUP_PY, "pkg/localpkg/__init__.py": "X = 3\n"})
    (repo / "requirements.txt").write_text(f"{repo / 'pkg'}\n")
    result = install_requirements([repo / "requirements.txt"], base / "site", PY313_ARM,
                                  cache_dir=base / "cache", repo_root=repo, native=False,
                                  installer="uv")
    assert dict(result.packages) == {"local-package": "0.1"}


def test_a_project_whose_name_cannot_be_read_says_how_to_name_it(build):
    with pytest.raises(SpecError) as failure:
        build({"requirements.txt": "requests\n./dyn\n",
               "dyn/setup.py": "from setuptools import setup\nNAME = 'dyn'\nsetup(name=NAME)\n"})
    assert str(failure.value).startswith("requirements.txt:2: './dyn': cannot tell the name")
    assert failure.value.hint == "write it as `NAME @ ./dyn`"


# -- 2. options pip accepts after a requirement --------------------------------------------


def test_per_requirement_options_are_translated_for_uv(build, caplog):
    caplog.set_level(logging.INFO)
    result, site = build({"requirements.txt": (
        "inflate64==1.0.0 --no-binary=:inflate64:\n"
        "idna==3.10 \\\n    --no-binary=idna\n")},
        target=PY311)
    packages = dict(result.packages)
    assert packages["inflate64"] == "1.0.0" and packages["idna"] == "3.10"
    assert result.from_source == ("idna",)  # --no-binary=idna: its sdist, built
    assert "inflate64" not in result.from_source  # pip reads `:inflate64:` as no package
    assert "requirements.txt:1: --no-binary=:inflate64: names no package" in caplog.text
    assert incompatible_distributions(site, PY311) == []


def test_an_option_uv_has_no_equivalent_for_names_the_line(build):
    with pytest.raises(SpecError) as failure:
        build({"requirements.txt": "requests\nsix --global-option=--quiet\n"})
    assert str(failure.value).startswith("requirements.txt:2: --global-option is not supported")
    assert failure.value.hint == "use --config-settings KEY=VALUE"


# -- 3. a pin whose wheels all need a newer glibc -----------------------------------------


def test_a_pin_whose_wheels_need_a_newer_glibc_fails_at_once_saying_what_would_work(build):
    started = time.monotonic()
    with pytest.raises(InstallError) as failure:
        build({"requirements.txt": "requests\nnumpy==2.3.4\n"}, target=PY311)
    assert time.monotonic() - started < 10  # no compiling: numpy from source takes minutes
    first = str(failure.value).splitlines()[0]
    assert failure.value.file == "requirements.txt" and failure.value.line == 2
    assert "package numpy 2.3.4 needs compiling for the target: its wheels for Python 3.11 " \
           "x86_64 need glibc 2.27 (manylinux_2_27) and python3.11 has glibc 2.26" in first
    assert "the newest release with a wheel python3.11 loads is 2.2.6" in first
    assert "python3.12+ would take 2.3.4" in first
    assert failure.value.hint == "pin numpy==2.2.6 or use a python3.12+ runtime"


# -- 4. optional C speedups ----------------------------------------------------------------


def test_an_sdist_with_optional_speedups_builds_pure_python_and_says_so(build, caplog):
    caplog.set_level(logging.WARNING)
    result, site = build({"requirements.txt": "markupsafe==1.1.1\n"}, target=PY312)
    assert dict(result.packages) == {"markupsafe": "1.1.1"}
    assert result.without_extensions == ("markupsafe",)
    assert "markupsafe: built pure Python, without its optional C extension" in caplog.text
    wheel = next(site.glob("markupsafe-1.1.1.dist-info")) / "WHEEL"
    assert "Tag: py3-none-any" in wheel.read_text()
    assert not list(site.rglob("*.so"))
    python = find_python("3.12") or sys.executable
    done = subprocess.run([python, "-I", "-S", "-c", "import sys; sys.path.insert(0, sys.argv[1]);"
                           "import markupsafe; print(markupsafe.escape('<a>'))", str(site)],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "&lt;a&gt;", done.stderr


# -- 5. and 6. a C sdist for another Python, the target's Python, a broken build -----------


def test_a_c_sdist_for_another_python_needs_compiling_in_the_one_message_format(build):
    started = time.monotonic()
    with pytest.raises(InstallError) as failure:
        build({"requirements.txt": "requests\ncext @ ./cext\n", "cext/setup.py": C_SETUP,
               "cext/cext/__init__.py": "", "cext/cext/_fast.c": C_SOURCE}, target=PY312)
    assert time.monotonic() - started < 60
    text = str(failure.value)
    first = text.splitlines()[0]
    assert first == ("requirements.txt:2: package cext needs compiling for the target (no wheel "
                     "for manylinux_2_34_x86_64 / Python 3.12) (ship it as a wheel built for "
                     "manylinux_2_34_x86_64, or build inside Lambda)")
    assert "is not compatible with the target" not in text and "--python-platform" not in text
    assert "requirements-0.txt" not in text
    assert all(line.startswith("    ") for line in text.splitlines()[1:])


@pytest.mark.skipif(not has_python("3.12"), reason="no Python 3.12 on this machine")
def test_sdists_are_built_with_a_python_of_the_targets_version(build):
    result, site = build({"requirements.txt": "./versioned\n", "versioned/setup.py": RECORDS_PYTHON,
                          "versioned/versioned/__init__.py": ""}, target=PY312)
    assert dict(result.packages) == {"versioned": "1.0"}
    assert (site / "versioned" / "built.py").read_text() == "WITH = (3, 12)\n"


def test_a_genuine_build_error_is_a_build_failure_with_the_packages_own_words(build):
    with pytest.raises(InstallError) as failure:
        build({"requirements.txt": "# broken\nbroken @ ./broken\n", "broken/setup.py": BROKEN},
              target=PY313_ARM)
    text = str(failure.value)
    first = text.splitlines()[0]
    assert first.startswith("requirements.txt:2: package broken failed to build from source "
                            "with Python 3.13: RuntimeError: broken on purpose: LIBFOO_DIR is "
                            "not set (fix the package's build")
    assert "needs compiling" not in text
    assert "    RuntimeError: broken on purpose: LIBFOO_DIR is not set" in text.splitlines()


# -- 7. the user's file and line, never the copy -------------------------------------------


def test_an_installer_error_names_the_users_file_and_line(build):
    with pytest.raises(InstallError) as failure:
        build({"requirements.txt": "requests\n\n# a comment\nsix>=1,<\n"}, target=PY311)
    text = str(failure.value)
    assert "requirements-0.txt" not in text and "lambda3-requirements-" not in text
    assert (failure.value.file, failure.value.line) == ("requirements.txt", 4)
    assert text.startswith("requirements.txt:4: uv could not install the requirements: ")


def test_a_pure_python_sdist_builds_for_another_cpu_and_python(build):
    # A pure-Python sdist (docopt) built for arm64 Python 3.13 from this x86_64 machine.
    result, site = build({"requirements.txt": "docopt==0.6.2\n"}, target=PY313_ARM)
    assert result.from_source == ("docopt",) and result.without_extensions == ()
    assert incompatible_distributions(site, PY313_ARM) == []


def test_a_failed_build_is_recognised_when_uv_wraps_its_line():
    from builder.install import _FAILED_BUILD

    wrapped = ("error: Failed to build `broken @\n  file:///tmp/a/very/long/path/broken`\n"
               "  Caused by: The build backend returned an error\n")
    assert [a or b for a, b in _FAILED_BUILD.findall(wrapped)] == ["broken"]
    assert [a or b for a, b in _FAILED_BUILD.findall("Failed to build `x==1.0`")] == ["x"]
