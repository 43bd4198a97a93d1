"""lambda3/action/install.py: the locked wheels, found by hash on a simple index, checked and
unpacked. The index here is a dict served through the injected `fetch`."""
from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from lambda3.action import install

ROOT = Path(__file__).resolve().parents[2]
INDEX = "https://index.test/simple"


def wheel(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


class Index:
    """A PEP 503 index: one page per project, files served by URL; records what was fetched."""

    def __init__(self, files: dict[str, bytes]):
        self.files = {f"https://files.test/{name}": data for name, data in files.items()}
        self.fetched: list[str] = []

    def page(self, project: str) -> bytes:
        links = [f'<a href="{url}#sha256={hashlib.sha256(data).hexdigest()}">x</a>'
                 for url, data in self.files.items()
                 if url.rsplit("/", 1)[1].startswith(project.replace("-", "_") + "-")]
        return ("<html><body>" + "\n".join(links) + "</body></html>").encode()

    def __call__(self, url: str, accept: str = "*/*") -> bytes:
        self.fetched.append(url)
        if url.startswith(INDEX):
            return self.page(url[len(INDEX) + 1:].strip("/"))
        return self.files[url]


def lock_for(files: dict[str, bytes]) -> str:
    lines = []
    for name, data in files.items():
        project, version = name.split("-")[:2]
        lines.append(f"{project.replace('_', '-')}=={version} \\\n"
                     f"    --hash=sha256:{hashlib.sha256(data).hexdigest()}\n"
                     "    # via -r requirements-action.txt")
    return "# generated\n" + "\n".join(lines) + "\n"


BOTOCORE = wheel({
    "botocore/__init__.py": "", "botocore/data/endpoints.json": "{}",
    "botocore/data/lambda/2015-03-31/service-2.json.gz": "l",
    "botocore/data/ec2/2016-11-15/service-2.json.gz": "e",
    "botocore-1.0.dist-info/RECORD": "",
})
SIX = wheel({"six.py": "X = 1\n", "six-1.0.dist-info/RECORD": "",
             "six-1.0.data/scripts/six-tool": "#!python\n"})
FILES = {"botocore-1.0-py3-none-any.whl": BOTOCORE, "six-1.0-py2.py3-none-any.whl": SIX}


def test_the_repository_lock_is_boto3_alone_and_fully_hashed():
    pins = install.read_lock((ROOT / "requirements-action.lock").read_text())
    assert set(pins) == {"boto3", "botocore", "jmespath", "python-dateutil", "s3transfer",
                         "six", "urllib3"}
    assert all(len(hashes) >= 1 for _, hashes in pins.values())


def test_install_unpacks_the_locked_wheels_and_a_second_call_fetches_nothing(tmp_path):
    index, lock = Index(FILES), lock_for(FILES)
    target = tmp_path / "deps"
    names = install.install(lock, target, index=INDEX, fetch=index)
    assert names == list(FILES)
    assert (target / "six.py").read_text() == "X = 1\n"
    assert (target / "botocore/data/lambda/2015-03-31/service-2.json.gz").is_file()
    assert (target / "botocore/data/endpoints.json").is_file()
    assert not (target / "botocore/data/ec2").exists()  # a service the action never calls
    assert not (target / "six-1.0.data").exists()
    assert install.is_ready(target, lock)
    assert [p.name for p in tmp_path.iterdir()] == ["deps"]  # no staging folder left
    index.fetched.clear()
    lock_file = tmp_path / "lock.txt"
    lock_file.write_text(lock)
    environ = {"RUNNER_TOOL_CACHE": str(tmp_path / "tool"), "PIP_INDEX_URL": INDEX}
    said: list[str] = []
    made = install.ensure(lock_file, environ, say=said.append, fetch=index)
    assert made == tmp_path / "tool" / "lambda3-action" / install.cache_key(lock)
    assert len(said) == 1 and said[0].startswith("lambda3: unpacked 2 locked wheels in ")
    assert index.fetched[0].startswith(INDEX)  # PIP_INDEX_URL names the index


def test_ensure_reuses_a_folder_an_earlier_job_left(tmp_path):
    lock = lock_for(FILES)
    lock_file = tmp_path / "lock.txt"
    lock_file.write_text(lock)
    environ = {"RUNNER_TOOL_CACHE": str(tmp_path / "tool")}
    target = install.target_path(lock, environ)
    install.install(lock, target, index=INDEX, fetch=Index(FILES))
    said: list[str] = []
    untouched = Index({})
    assert install.ensure(lock_file, environ, say=said.append, fetch=untouched) == target
    assert said == [] and untouched.fetched == []


def test_bytes_that_do_not_match_the_lock_are_refused(tmp_path):
    index = Index(FILES)
    lock = lock_for({**FILES, "six-1.0-py2.py3-none-any.whl": b"other bytes"})
    with pytest.raises(install.InstallError, match="no pure-Python wheel of six==1.0"):
        install.install(lock, tmp_path / "deps", index=INDEX, fetch=index)
    tampered = Index(FILES)
    tampered.files["https://files.test/six-1.0-py2.py3-none-any.whl"] = b"swapped"
    tampered.page = Index(FILES).page  # the page still lists the locked hash
    with pytest.raises(install.InstallError, match="does not match the lock's sha256"):
        install.install(lock_for(FILES), tmp_path / "deps", index=INDEX, fetch=tampered)
    assert not (tmp_path / "deps").exists()


def test_only_pure_python_wheels_and_safe_paths_are_unpacked(tmp_path):
    binary = {"six-1.0-cp312-cp312-manylinux_2_17_x86_64.whl": SIX}
    with pytest.raises(install.InstallError, match="no pure-Python wheel"):
        install.install(lock_for(binary), tmp_path / "a", index=INDEX, fetch=Index(binary))
    escaping = {"six-1.0-py3-none-any.whl": wheel({"../outside.py": ""})}
    with pytest.raises(install.InstallError, match="outside.py"):
        install.install(lock_for(escaping), tmp_path / "b", index=INDEX, fetch=Index(escaping))
    assert not (tmp_path / "outside.py").exists()


def test_the_lock_format_is_read_strictly():
    with pytest.raises(install.InstallError, match="marker"):
        install.read_lock('six==1.0 ; python_version < "3.11" \\\n    --hash=sha256:' + "a" * 64)
    with pytest.raises(install.InstallError, match="no hashes for six"):
        install.read_lock("six==1.0\n")
    with pytest.raises(install.InstallError, match="does not read"):
        install.read_lock("six>=1.0\n")


def test_the_cache_key_names_lock_python_os_and_architecture():
    key = install.cache_key("six==1.0 --hash=sha256:" + "a" * 64)
    assert key.startswith("lambda3-action-") and "-py3." in key
    assert key != install.cache_key("six==1.1 --hash=sha256:" + "a" * 64)


def _module_path(module: str) -> Path | None:
    for path in (ROOT / f"{module.replace('.', '/')}.py",
                 ROOT / module.replace(".", "/") / "__init__.py"):
        if path.is_file():
            return path
    return None


def _our_modules_reachable_from(*start: str) -> set[Path]:
    """Every module of ours an import anywhere in `start` can reach (lazy imports too)."""
    import ast

    seen: set[str] = set()
    todo = list(start)
    while todo:
        module = todo.pop()
        path = _module_path(module)
        if module in seen or path is None:
            continue
        seen.add(module)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                todo += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names]
    return {_module_path(module) for module in seen}


def test_botocore_models_are_kept_for_every_service_the_action_can_call():
    import re

    called: set[str] = set()
    for path in _our_modules_reachable_from("lambda3.action.run"):
        called |= set(re.findall(r'(?:client|clients|call)\(\s*"([a-z0-9-]+)"',
                                 path.read_text()))
    assert {"lambda", "logs", "sts", "cloudwatch"} <= called  # the scan finds the calls
    assert called <= install.BOTOCORE_SERVICES, called - install.BOTOCORE_SERVICES


def test_the_key_step_asks_for_a_restore_only_when_wanted_and_missing(tmp_path, capsys):
    lock = lock_for(FILES)
    lock_file = tmp_path / "lock.txt"
    lock_file.write_text(lock)
    environ = {"RUNNER_TOOL_CACHE": str(tmp_path / "tool")}

    def outputs(**extra) -> dict[str, str]:
        assert install.main(["key", str(lock_file)], {**environ, **extra}) == 0
        return dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())

    first = outputs()
    assert first == {"key": install.cache_key(lock), "restore": "true",
                     "path": str(install.target_path(lock, environ))}
    assert outputs(LAMBDA3_CACHE="false")["restore"] == "false"
    install.install(lock, Path(first["path"]), index=INDEX, fetch=Index(FILES))
    assert outputs()["restore"] == "false"  # a folder an earlier job left: nothing to restore
