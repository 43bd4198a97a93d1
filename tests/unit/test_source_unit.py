"""builder.source's pure parts: hosts, display URLs, ref resolution, error classification."""
from __future__ import annotations

import base64
from pathlib import Path

import pytest

from builder import source
from builder.errors import SourceError

MAIN = b"a" * 40
TAG = b"b" * 40
OLD = b"c" * 40
REFS = {b"HEAD": MAIN, b"refs/heads/main": MAIN, b"refs/tags/v1": TAG,
        b"refs/heads/both": MAIN, b"refs/tags/both": TAG}


@pytest.mark.parametrize("url, host", [
    ("https://github.com/o/r.git", "github.com"),
    ("https://x-access-token:secret@GitHub.com/o/r.git", "github.com"),
    ("http://127.0.0.1:8080/o/r.git", "127.0.0.1:8080"),
    ("http://[::1]:9000/o/r.git", "[::1]:9000"),
    ("/some/local/path", None),
    ("git@github.com:o/r.git", None),
])
def test_source_host(url, host):
    assert source.source_host(url) == host


def test_display_url_drops_credentials_query_and_fragment():
    url = "https://user:secret@example.com:8443/o/r.git?x=1#frag"
    assert source._display_url(url) == "https://example.com:8443/o/r.git"


def test_credentials_in_the_url_become_basic_auth_and_never_the_location():
    remote = source._remote_for_url("https://user:se%40cret@example.com/o/r.git", None, "x")
    assert (remote.username, remote.password) == ("user", "se@cret")
    assert "cret" not in remote.location + remote.display + repr(remote)
    with_token = source._remote_for_url("https://user:secret@example.com/o/r.git", "tok",
                                        "x-access-token")
    assert (with_token.username, with_token.password) == ("x-access-token", "tok")


@pytest.mark.parametrize("ref, expected", [
    (None, (b"HEAD", MAIN)),
    ("HEAD", (b"HEAD", MAIN)),
    ("main", (b"refs/heads/main", MAIN)),
    ("v1", (b"refs/tags/v1", TAG)),
    ("both", (b"refs/heads/both", MAIN)),          # a branch wins over a tag, as in clone
    ("refs/tags/both", (b"refs/tags/both", TAG)),
    (MAIN.decode().upper(), (b"HEAD", MAIN)),      # a SHA that is a tip names a ref
    (OLD.decode(), (None, OLD)),                   # a SHA that is no tip
])
def test_resolve(ref, expected):
    assert source._resolve(ref, REFS) == expected


@pytest.mark.parametrize("ref", ["nope", "refs/heads/nope", "heads/main"])
def test_resolve_unknown(ref):
    with pytest.raises(source._RefNotFound):
        source._resolve(ref, REFS)


def test_wants_ask_only_for_what_is_missing():
    wants = source._Wants("main", object_store={MAIN})
    assert wants(REFS) == [] and wants.target == MAIN
    wants = source._Wants("v1", object_store={MAIN})
    assert wants(REFS, depth=1) == [TAG] and wants.remote_name == b"refs/tags/v1"
    assert wants.ref_prefix() == [b"refs/heads/v1", b"refs/tags/v1"]
    wants.everything = True
    assert wants(REFS) == [MAIN, TAG] and wants.ref_prefix() is None


class NewConnectionError(Exception):
    pass


def _chained(outer: Exception, inner: Exception) -> Exception:
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize("exc, problem", [
    (_chained(Exception("boom"), ConnectionRefusedError("[Errno 111] Connection refused")),
     "connection refused"),
    (Exception("Failed to resolve 'nowhere.invalid' ([Errno -2] Name or service not known)"),
     "the host name does not resolve"),
    (_chained(Exception("x"), TimeoutError()), "timed out"),
    (_chained(Exception("x"), NewConnectionError("no route")), "cannot connect"),
    (Exception("unexpected http resp 500 for http://h/o/r.git"), None),
])
def test_connection_problem(exc, problem):
    assert source._connection_problem(exc) == problem


@pytest.mark.parametrize("status, start", [
    ("401", "authentication failed for https://h/o/r.git: check the token"),
    ("403", "authentication failed for https://h/o/r.git: check the token"),
    ("404", "repository not found: https://h/o/r.git"),
    ("502", "fetching main from https://h/o/r.git failed: GitProtocolError"),
])
def test_protocol_errors_by_status(status, start):
    from dulwich.errors import GitProtocolError

    remote = source._Remote("https://h/o/r.git", "https://h/o/r.git", "x", "tok-secret")
    exc = GitProtocolError(f"unexpected http resp {status} for https://h/o/r.git/info/refs")
    error = source._protocol_error(exc, remote, "main")
    assert isinstance(error, SourceError) and str(error).startswith(start)
    assert "\n" not in str(error)


def test_safe_text_removes_the_password():
    remote = source._Remote("https://h/r.git", "https://h/r.git", "x", "tok-secret")
    text = source._safe_text(ValueError("bad tok-secret\nat https://u:p@h/r"), remote)
    assert text == "ValueError: bad *** at https://***@h/r"


def test_safe_text_removes_the_basic_auth_form_and_work_dir_paths(tmp_path):
    remote = source._Remote("https://h/r.git", "https://h/r.git", "bob", "tok-secret")
    encoded = base64.b64encode(b"bob:tok-secret").decode()
    exc = OSError(f"got 'Basic {encoded}' and {encoded.rstrip('=')} writing "
                  f"{tmp_path}/git/abc/objects and {tmp_path}")
    text = source._safe_text(exc, remote, tmp_path)
    assert text == ("OSError: got 'Basic ***' and *** writing <work dir>/git/abc/objects and "
                    "<work dir>")


def test_the_cache_is_per_repository_whatever_the_credentials():
    key = source._remote_for_url("https://github.com/o/r.git", "tok-1", "x").key
    assert source._remote_for_url("https://u:pw-2@GitHub.com/o/r.git/", None, "x").key == key
    assert source._remote_for_url("https://github.com/o/other.git", "tok-1", "x").key != key


def test_an_ipv6_literal_gets_an_http_client():
    from dulwich.client import Urllib3HttpGitClient

    guard = source._Guard(("[::1]",))
    remote = source._remote_for_url("http://[::1]:9000/o/r.git", "tok-v6", "x", guard)
    client, path = source._client_for(remote)
    assert isinstance(client, Urllib3HttpGitClient)
    assert (client._base_url, path) == ("http://[::1]:9000/", "/o/r.git")


def test_prune_checkouts_removes_only_old_entries(tmp_path):
    import os

    old, new = tmp_path / "checkout-old", tmp_path / "checkout-new"
    old.mkdir()
    new.mkdir()
    (old / "f").write_text("x")
    os.utime(old, (1_000, 1_000))
    source._prune_checkouts(tmp_path, now=1_000 + source._STALE_CHECKOUT_S + 1)
    assert not old.exists() and new.exists()


@pytest.mark.parametrize("name", [b"..", b".", b"", b"a/b", b".git", b".GIT", b"a\0b"])
def test_unsafe_tree_names(name):
    with pytest.raises(SourceError, match="unsafe path"):
        source._safe_name(name, "dir/")


def test_unsupported_source():
    with pytest.raises(SourceError, match="unsupported source 'ssh://h/o/r.git'"):
        source.fetch_source("ssh://user:pw@h/o/r.git", None, Path("unused"))
