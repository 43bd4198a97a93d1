"""builder.source against a real dulwich smart-HTTP server on 127.0.0.1 (and local repos)."""
from __future__ import annotations

import base64
import logging
import os
import shutil
import socket
import stat
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from builder.errors import SourceError
from builder.source import Checkout, fetch_source, remove_checkout
from lambda3.embedded.gitserver import GitServer, commit_directory

APP_FILES = {
    "app.py": "def handler(event, context):\n    return 'v1'\n",
    "lib/util.py": "X = 1\n",
    "run.sh": "#!/bin/sh\necho hi\n",
    "data/big.txt": "line\n" * 2000,
}


@pytest.fixture
def remote(make_repo, git_server):
    """owner/app: c0 -> c1 (tag v1, annotated; tag light, lightweight) -> c2 on main;
    `feature` branches from c1 with feature.txt and without lib/."""
    repo = make_repo(APP_FILES, executables=["run.sh"], symlinks={"link.py": "app.py"})
    repo.commit("c1", tag="v1", files={"app.py": "V = 1\n"})
    repo.set_ref("refs/tags/light", repo.commits[1])
    repo.commit("c2", files={"app.py": "V = 2\n"})
    repo.write({"feature.txt": "feature\n"}, remove=["lib"])
    repo.commit("f1", branch="feature")
    repo.write({"lib/util.py": "X = 1\n"}, remove=["feature.txt"])
    repo.url = git_server.add_repo("owner/app", repo.path)
    return repo


def files_of(root: Path) -> dict[str, str]:
    """Every entry under root: file contents, "-> target" for symlinks."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                found[rel] = path.read_text()
    return found


def fetch(remote, ref, workdir, token) -> Checkout:
    return fetch_source(remote.url, ref, workdir, token=token)


# -- refs ---------------------------------------------------------------------------------


def test_branch_gives_exactly_the_commit_tree(remote, tmp_path, git_token):
    checkout = fetch(remote, "main", tmp_path / "w", git_token)

    assert checkout.commit == remote.commits[2]
    assert checkout.fetched and checkout.ref == "main" and checkout.source == remote.url
    assert files_of(checkout.root) == {**APP_FILES, "app.py": "V = 2\n", "link.py": "-> app.py"}
    assert (checkout.root / "link.py").is_symlink()
    assert os.stat(checkout.root / "run.sh").st_mode & 0o777 == 0o755
    assert os.stat(checkout.root / "app.py").st_mode & 0o777 == 0o644
    assert not (checkout.root / ".git").exists()


@pytest.mark.parametrize("ref, index", [
    ("v1", 1),                   # annotated tag, peeled to its commit
    ("light", 1),                # lightweight tag
    ("refs/tags/v1", 1),
    ("refs/heads/main", 2),
])
def test_tags_and_full_ref_names(remote, tmp_path, git_token, ref, index):
    checkout = fetch(remote, ref, tmp_path / "w", git_token)
    assert checkout.commit == remote.commits[index]
    assert (checkout.root / "app.py").read_text() == ("V = 1\n" if index == 1 else "V = 2\n")


def test_branch_with_a_slash_free_name_that_is_also_not_main(remote, tmp_path, git_token):
    checkout = fetch(remote, "feature", tmp_path / "w", git_token)
    assert checkout.commit == remote.commits[3]
    assert set(files_of(checkout.root)) >= {"feature.txt"}
    assert not (checkout.root / "lib").exists()


def test_no_ref_follows_the_remote_head(remote, tmp_path, git_token):
    remote.set_head("feature")
    checkout = fetch(remote, None, tmp_path / "w", git_token)
    assert checkout.commit == remote.commits[3]
    assert checkout.ref is None


def test_full_sha_of_a_tip(remote, tmp_path, git_token):
    checkout = fetch(remote, remote.commits[2].upper(), tmp_path / "w", git_token)
    assert checkout.commit == remote.commits[2]
    assert (checkout.root / "app.py").read_text() == "V = 2\n"


@pytest.mark.parametrize("cache_first", [False, True])
def test_full_sha_that_is_no_tip(remote, tmp_path, git_token, git_server, cache_first):
    # dulwich's server refuses a want that is no ref's tip: the fetch falls back to history,
    # also from a cache that is already shallow.
    if cache_first:
        fetch(remote, "main", tmp_path / "w", git_token)
    checkout = fetch(remote, remote.commits[0], tmp_path / "w", git_token)
    assert checkout.commit == remote.commits[0]
    assert files_of(checkout.root)["app.py"] == APP_FILES["app.py"]
    assert ("POST", "/owner/app.git/git-upload-pack", 500) in git_server.requests


# -- errors -------------------------------------------------------------------------------


def test_wrong_token(remote, tmp_path, git_server):
    with pytest.raises(SourceError) as caught:
        fetch(remote, "main", tmp_path / "w", "canary-wrong-token")
    message = str(caught.value)
    assert message == f"authentication failed for {remote.url}: check the token"
    assert caught.value.step == "fetch"
    assert "canary-wrong-token" not in repr(caught.value) + str(caught.value.to_dict())
    assert git_server.requests[-1][2] == 401


def test_no_token_against_a_protected_server(remote, tmp_path):
    with pytest.raises(SourceError, match=r"^authentication failed for .*no(ne was)? given"):
        fetch(remote, "main", tmp_path / "w", None)


def test_unknown_ref(remote, tmp_path, git_token):
    with pytest.raises(SourceError) as caught:
        fetch(remote, "nope", tmp_path / "w", git_token)
    assert str(caught.value) == f"ref 'nope' not found in {remote.url}"


def test_unknown_sha(remote, tmp_path, git_token):
    with pytest.raises(SourceError, match=r"^ref '1{40}' not found in http://"):
        fetch(remote, "1" * 40, tmp_path / "w", git_token)


def test_abbreviated_sha_gets_a_hint(remote, tmp_path, git_token):
    with pytest.raises(SourceError, match="full 40-character SHA"):
        fetch(remote, remote.commits[2][:10], tmp_path / "w", git_token)


def test_unreachable_host(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SourceError) as caught:
        fetch_source(f"http://127.0.0.1:{port}/owner/app.git", "main", tmp_path / "w",
                     token="canary-x")
    assert str(caught.value) == f"cannot reach 127.0.0.1:{port}: connection refused"


def test_missing_repository(remote, tmp_path, git_token, git_server):
    with pytest.raises(SourceError, match=r"^repository not found: http://127\.0\.0\.1:\d+/"
                                          r"owner/missing\.git"):
        fetch_source(git_server.url_for("owner/missing"), "main", tmp_path / "w",
                     token=git_token)


def test_unsupported_sources(tmp_path):
    for source in ("ssh://git@example.invalid/o/r.git", "git@example.invalid:o/r.git"):
        with pytest.raises(SourceError, match="unsupported source"):
            fetch_source(source, None, tmp_path)


# -- cache --------------------------------------------------------------------------------


def newest_pack_sizes(workdir: Path) -> list[int]:
    """Object counts of the cache repository's packs, oldest first."""
    from dulwich.repo import Repo

    (cache,) = (workdir / "git").iterdir()
    with Repo(str(cache)) as repo:
        packs = [(os.stat(cache / "objects" / "pack" / f"pack-{p.name().decode()}.pack")
                  .st_mtime_ns, len(p)) for p in repo.object_store.packs]
    return [count for _, count in sorted(packs)]


def test_second_fetch_transfers_only_what_is_new(remote, tmp_path, git_token, git_server):
    workdir = tmp_path / "w"
    first = fetch(remote, "main", workdir, git_token)
    new = remote.commit("c3", files={"lib/util.py": "X = 3\n"})

    second = fetch(remote, "main", workdir, git_token)

    assert second.commit == new and second.fetched
    first_pack, second_pack = newest_pack_sizes(workdir)
    assert first_pack >= 7                 # 3 commits' worth: 5 files, 3 trees, 1 commit
    assert second_pack == 4                # commit, root tree, lib/ tree, lib/util.py
    assert (second.root / "lib/util.py").read_text() == "X = 3\n"
    assert second.root != first.root and (first.root / "app.py").exists()

    posts = sum(1 for method, _, _ in git_server.requests if method == "POST")
    third = fetch(remote, "main", workdir, git_token)
    assert not third.fetched and third.commit == new
    assert sum(1 for method, _, _ in git_server.requests if method == "POST") == posts


def test_a_known_sha_is_served_only_after_the_server_accepted_the_token(
        remote, tmp_path, git_token, git_server):
    workdir = tmp_path / "w"
    fetch(remote, "main", workdir, git_token)
    count = len(git_server.requests)
    checkout = fetch(remote, remote.commits[2], workdir, git_token)
    assert not checkout.fetched and checkout.commit == remote.commits[2]
    assert git_server.requests[count:] == [
        ("GET", "/owner/app.git/info/refs?service=git-upload-pack", 200)]


def test_an_unreadable_cache_is_rebuilt(remote, tmp_path, git_token):
    workdir = tmp_path / "w"
    fetch(remote, "main", workdir, git_token)
    (cache,) = (workdir / "git").iterdir()
    shutil.rmtree(cache)
    cache.mkdir()
    (cache / "junk").write_text("not a repository")

    checkout = fetch(remote, "main", workdir, git_token)

    assert checkout.fetched and checkout.commit == remote.commits[2]


def test_a_cache_missing_objects_is_fetched_afresh(remote, tmp_path, git_token):
    from dulwich.repo import Repo

    workdir = tmp_path / "w"
    fetch(remote, "main", workdir, git_token)
    (cache,) = (workdir / "git").iterdir()
    with Repo(str(cache)) as repo:  # keep the commit, lose its tree and blobs
        commit = repo[remote.commits[2].encode()]
    shutil.rmtree(cache / "objects" / "pack")
    (cache / "objects" / "pack").mkdir()
    with Repo(str(cache)) as repo:
        repo.object_store.add_object(commit)

    checkout = fetch(remote, remote.commits[2], workdir, git_token)

    assert checkout.fetched and (checkout.root / "app.py").read_text() == "V = 2\n"


def test_each_fetch_is_a_fresh_checkout_that_remove_checkout_deletes(remote, tmp_path,
                                                                    git_token):
    workdir = tmp_path / "w"
    feature = fetch(remote, "feature", workdir, git_token)
    assert (feature.root / "feature.txt").exists()
    (feature.root / "build-output.txt").write_text("left by a build")

    main = fetch(remote, "main", workdir, git_token)

    assert main.root != feature.root and main.owned
    assert main.root.parent == workdir / "src" and main.root.name.startswith("checkout-")
    assert stat.S_IMODE(os.stat(main.root).st_mode) == 0o700
    assert set(files_of(main.root)) == {"app.py", "lib/util.py", "run.sh", "data/big.txt",
                                        "link.py"}
    remove_checkout(feature)
    remove_checkout(main)
    assert list((workdir / "src").iterdir()) == []


def test_remove_checkout_leaves_a_local_directory_alone(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "app.py").write_text("x")
    checkout = fetch_source(str(tmp_path / "proj"), None, tmp_path / "w")
    remove_checkout(checkout)
    assert not checkout.owned and (tmp_path / "proj" / "app.py").read_text() == "x"


def test_checkouts_left_by_crashed_builds_are_pruned(remote, tmp_path, git_token):
    workdir = tmp_path / "w"
    old = fetch(remote, "main", workdir, git_token)
    recent = fetch(remote, "main", workdir, git_token)
    os.utime(old.root, (1_600_000_000, 1_600_000_000))

    newest = fetch(remote, "main", workdir, git_token)

    assert not old.root.exists()
    assert recent.root.exists() and newest.root.exists()


# -- local sources ------------------------------------------------------------------------


def test_plain_directory_is_used_as_is(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "app.py").write_text("x")
    checkout = fetch_source(str(tmp_path / "proj"), None, tmp_path / "w")
    assert checkout == Checkout(root=(tmp_path / "proj").resolve(), commit=None, ref=None,
                                source=str((tmp_path / "proj").resolve()), fetched=False)
    with pytest.raises(SourceError, match="is not a git repository"):
        fetch_source(str(tmp_path / "proj"), "main", tmp_path / "w")


def test_local_repository_without_ref_is_its_working_tree(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "app.py").write_text("x")
    head = commit_directory(project, project, "snapshot in place")
    (project / "uncommitted.txt").write_text("work in progress")

    checkout = fetch_source(str(project), None, tmp_path / "w")

    assert checkout == Checkout(root=project.resolve(), commit=head, ref=None,
                                source=str(project.resolve()), fetched=False)
    assert not (tmp_path / "w").exists()


def test_local_repository_with_ref_is_fetched(remote, tmp_path):
    checkout = fetch_source(str(remote.path), "v1", tmp_path / "w")
    assert checkout.commit == remote.commits[1] and checkout.fetched
    assert checkout.root.is_relative_to(tmp_path / "w")
    assert (checkout.root / "app.py").read_text() == "V = 1\n"
    old = fetch_source(str(remote.path), remote.commits[0], tmp_path / "w")  # no tip
    assert files_of(old.root)["app.py"] == APP_FILES["app.py"]


def test_invalid_local_paths(tmp_path):
    with pytest.raises(SourceError, match="^invalid local path .*does not exist"):
        fetch_source(str(tmp_path / "nowhere"), None, tmp_path / "w")
    (tmp_path / "file").write_text("x")
    with pytest.raises(SourceError, match="^invalid local path .*not a directory"):
        fetch_source(str(tmp_path / "file"), None, tmp_path / "w")


def test_tree_entries_that_would_escape_are_refused(tmp_path):
    from dulwich.objects import Blob, Commit, Tree
    from dulwich.repo import Repo

    repo_path = tmp_path / "evil"
    repo_path.mkdir()
    with Repo.init(str(repo_path)) as repo:
        blob = Blob.from_string(b"pwned")
        tree = Tree()
        tree.add(b"..", stat.S_IFREG | 0o644, blob.id)
        commit = Commit()
        commit.tree, commit.message = tree.id, b"evil\n"
        commit.author = commit.committer = b"x <x@example.invalid>"
        commit.author_time = commit.commit_time = 1_700_000_000
        commit.author_timezone = commit.commit_timezone = 0
        for obj in (blob, tree, commit):
            repo.object_store.add_object(obj)
        repo.refs[b"refs/heads/main"] = commit.id
    with pytest.raises(SourceError, match="unsafe path"):
        fetch_source(str(repo_path), "main", tmp_path / "w")


# -- secrets ------------------------------------------------------------------------------


def test_token_never_leaks(remote, tmp_path, git_token, git_server, caplog):
    caplog.set_level(logging.DEBUG)
    workdir = tmp_path / "w"
    texts = [repr(fetch(remote, "main", workdir, git_token))]
    for ref in ("nope", "1" * 40):
        with pytest.raises(SourceError) as caught:
            fetch(remote, ref, workdir, git_token)
        texts += [str(caught.value), repr(caught.value), str(caught.value.to_dict())]
    with GitServer(password="another-password") as other:
        url = other.add_repo("owner/app", remote.path)
        with pytest.raises(SourceError) as caught:
            fetch_source(url, "main", workdir, token=git_token)
        texts += [str(caught.value), repr(caught.value)]
    host = remote.url.split("//")[1]
    in_url = f"http://x-access-token:{git_token}@{host}"
    texts.append(repr(fetch_source(in_url, "v1", workdir)))

    texts += [record.getMessage() for record in caplog.records]
    texts += [caplog.text]
    assert all(git_token not in text for text in texts)
    assert any("fetched" in r.getMessage() for r in caplog.records)
    for path in workdir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert git_token.encode() not in path.read_bytes(), path
    for config in workdir.glob("git/*/config"):
        assert b"canary" not in config.read_bytes()


# -- the server itself --------------------------------------------------------------------


def test_server_asks_for_basic_auth(remote, git_token):
    info_refs = remote.url + "/info/refs?service=git-upload-pack"
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(info_refs, timeout=5)
    assert caught.value.code == 401
    assert caught.value.headers["WWW-Authenticate"].startswith("Basic ")
    auth = base64.b64encode(f"anyone:{git_token}".encode()).decode()
    request = urllib.request.Request(info_refs, headers={"Authorization": f"Basic {auth}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
        assert b"refs/heads/main" in response.read()


def test_server_checks_the_username_when_given(make_repo, tmp_path):
    repo = make_repo({"a.txt": "a"})
    with GitServer(username="alice", password="pw-123") as server:
        url = server.add_repo("o/r", repo.path)
        with pytest.raises(SourceError, match="authentication failed"):
            fetch_source(url, "main", tmp_path / "w1", token="pw-123", username="bob")
        checkout = fetch_source(url, "main", tmp_path / "w2", token="pw-123",
                                username="alice")
        assert checkout.commit == repo.commits[0]


def test_commit_directory_snapshots_the_directory(tmp_path):
    src = tmp_path / "src"
    (src / "pkg" / "__pycache__").mkdir(parents=True)
    (src / "pkg" / "__pycache__" / "m.pyc").write_bytes(b"\0")
    (src / "pkg" / "m.py").write_text("m")
    (src / "empty").mkdir()
    (src / "tool").write_text("#!/bin/sh\n")
    os.chmod(src / "tool", 0o755)
    os.symlink("pkg/m.py", src / "alias")
    first = commit_directory(src, tmp_path / "a", "msg", tag="v1", timestamp=1_700_000_000)
    again = commit_directory(src, tmp_path / "b", "msg", tag="v1", timestamp=1_700_000_000)
    assert first == again  # reproducible with a fixed time

    checkout = fetch_source(str(tmp_path / "a"), "v1", tmp_path / "w")
    assert files_of(checkout.root) == {"pkg/m.py": "m", "tool": "#!/bin/sh\n",
                                       "alias": "-> pkg/m.py"}
    assert os.stat(checkout.root / "tool").st_mode & 0o111
