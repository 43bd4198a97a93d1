"""Requirement files cannot make the installer read anything outside the repository."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from builder.errors import SpecError
from builder.requirements import RequirementFiles, requirement_inputs


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "sub").mkdir(parents=True)
    (root / "localpkg").mkdir()
    (root / "wheels").mkdir()
    (root / "base.txt").write_text("attrs\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "pkg-1.0-py3-none-any.whl").write_text("")
    return root


def rewrite(repo: Path, tmp_path: Path, text: str, name: str = "requirements.txt") -> str:
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text(text)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    files = RequirementFiles(repo, work, token=None, source_host=None)
    return files.rewrite(repo / name).read_text()


def refused(repo: Path, tmp_path: Path, text: str, name: str = "requirements.txt"
            ) -> SpecError:
    with pytest.raises(SpecError) as failure:
        rewrite(repo, tmp_path, text, name)
    error = failure.value
    assert error.file == name  # as the repository has it, never a temporary copy
    assert str(tmp_path) not in str(error)  # no absolute work-dir path
    return error


@pytest.mark.parametrize("line", [
    "-r /etc/passwd", "-c /etc/passwd", "-r ../../../../etc/passwd", "-r=/etc/passwd",
    "-r/etc/passwd", "--requirement=/etc/passwd", "--constraint /etc/passwd",
])
def test_includes_outside_the_repository_are_refused(repo, tmp_path, line):
    error = refused(repo, tmp_path, f"attrs\n{line}\n")
    assert "outside the repository" in error.message and error.line == 2


@pytest.mark.parametrize("line", [
    "-r file:///proc/self/environ", "-r FILE:///etc/passwd", "-c https://example.com/c.txt",
    "-r file:/etc/passwd", "--requirement=File:///etc/passwd",
])
def test_url_includes_are_refused(repo, tmp_path, line):
    error = refused(repo, tmp_path, line + "\n")
    assert "not a URL" in error.message and error.line == 1


@pytest.mark.parametrize("line", [
    "--FIND-LINKS /etc", "--Find-Links=/etc", "-F /etc", "--INDEX-URL /etc",
    "--Extra-Index-Url file:///etc", "-R /etc/passwd", "--Requirement /etc/passwd", "-E /etc",
])
def test_options_in_another_case_are_refused(repo, tmp_path, line):
    error = refused(repo, tmp_path, line + "\n")
    assert "case-sensitive" in error.message and error.hint.startswith("write -")


@pytest.mark.parametrize("line", [
    "--find-links /etc", "-f file:///etc", "-f FILE:///etc", "--index-url /etc",
    "-i FILE:///etc", "--extra-index-url=file:///etc",
    "x @ file:///etc", "x @ FILE:///etc", "x @ File://localhost/etc", "x @ /etc",
    "x @ file:///tmp/../etc", f"x @ file://{'/repo/%2e%2e/%2e%2e/etc'}",
    "/etc/passwd", "../outside/pkg-1.0-py3-none-any.whl", "FILE:///etc/x.whl",
    "-e ../outside", "-e FILE:///etc",
])
def test_local_paths_outside_the_repository_are_refused(repo, tmp_path, line):
    error = refused(repo, tmp_path, line + "\n")
    assert "outside the repository" in error.message and error.line == 1


def test_the_error_names_the_included_file_and_its_line(repo, tmp_path):
    (repo / "sub" / "more.txt").write_text("attrs\n\n# pins\nx @ file:///etc\n")
    with pytest.raises(SpecError) as failure:
        rewrite(repo, tmp_path, "-r sub/more.txt\n")
    assert (failure.value.file, failure.value.line) == ("sub/more.txt", 4)
    assert str(tmp_path) not in str(failure.value)


def test_a_missing_include_is_a_spec_error(repo, tmp_path):
    error = refused(repo, tmp_path, "-r nothere.txt\n")
    assert "no such file" in error.message and error.line == 1


def test_environment_variables_are_not_expanded(repo, tmp_path):
    error = refused(repo, tmp_path, "https://example.com/${AWS_SECRET_ACCESS_KEY}.whl\n")
    assert "environment variables" in error.message


def test_a_symlink_loop_is_a_spec_error(repo, tmp_path):
    (repo / "loop").symlink_to(repo / "loop")
    assert "symlink loop" in refused(repo, tmp_path, "-r loop\n").message


@pytest.mark.parametrize("include", [
    "-r base.txt", "-r=base.txt", "-rbase.txt", "--requirement base.txt",
    "--requirement=base.txt", "-r \\\n    base.txt", "-r base.txt   # shared pins",
])
def test_every_spelling_of_an_include_is_followed(repo, tmp_path, include):
    text = rewrite(repo, tmp_path, f"{include}\n")
    assert text.startswith(("-r ", "--requirement ")) and "requirements-1.txt" in text
    assert requirement_inputs([repo / "requirements.txt"], repo) == [
        (repo / "requirements.txt").resolve(), (repo / "base.txt").resolve()]


def test_local_paths_inside_the_repository_keep_working(repo, tmp_path):
    (repo / "wheels" / "w-1.0-py3-none-any.whl").write_text("")
    text = rewrite(repo, tmp_path, "-r base.txt\n./localpkg\n-f ./wheels\n"
                   "w @ file:./wheels/w-1.0-py3-none-any.whl\nFILE:./localpkg\n"
                   "-i https://pypi.org/simple\nrequests\n")
    resolved = repo.resolve()
    assert f"\n{resolved / 'localpkg'}\n" in text and f"-f {resolved / 'wheels'}\n" in text
    assert f"w @ {(resolved / 'wheels' / 'w-1.0-py3-none-any.whl').as_uri()}\n" in text
    assert "-i https://pypi.org/simple\nrequests\n" in text


def test_a_repository_behind_a_symlink_works(repo, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(repo)
    (repo / "requirements.txt").write_text("-r base.txt\n./localpkg\n")
    inputs = requirement_inputs([link / "requirements.txt"], link)
    assert inputs == [(repo / name).resolve() for name in ("requirements.txt", "base.txt",
                                                            "localpkg")]


def test_long_lines_are_read_in_linear_time(repo, tmp_path):
    started = time.monotonic()
    rewrite(repo, tmp_path, " " * 200_000 + "x\n" + "./a" + "[" * 200_000 + "]\n")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("line", ["./localpkg", "-e ./localpkg", "x @ file:./localpkg",
                                  "--find-links ./localpkg"])
def test_a_local_folder_with_a_symlink_out_of_the_repository_is_refused(repo, tmp_path, line):
    (repo / "localpkg" / "data").mkdir()
    (repo / "localpkg" / "data" / "environ").symlink_to("/proc/self/environ")
    error = refused(repo, tmp_path, line + "\n")
    assert "data/environ is a symlink to outside the repository" in error.message


def test_a_local_folder_with_a_symlink_inside_the_repository_is_fine(repo, tmp_path):
    (repo / "localpkg" / "shared.txt").symlink_to(repo / "base.txt")
    assert str(repo.resolve() / "localpkg") in rewrite(repo, tmp_path, "./localpkg\n")
