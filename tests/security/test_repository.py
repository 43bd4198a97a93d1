"""Which repositories the builder fetches, through the real fetch path: loopback servers
only (a resolver is injected where a name must seem to point elsewhere)."""
from __future__ import annotations

import base64
import logging
import socket

import pytest

from builder.errors import SourceError
from builder.source import fetch_source, remove_checkout
from lambda3.embedded.gitserver import GitServer
from tests.fixtures_git import ScriptedHttpServer

INFO_REFS = "/owner/app.git/info/refs?service=git-upload-pack"


def loopback_resolver(mapping: dict[str, str], calls: list | None = None):
    """getaddrinfo answering `mapping[name]` (a loopback or refused literal) and nothing
    else, so that no name is ever looked up for real."""
    def resolve(host, port, family=0, type=0, proto=0, flags=0):
        if calls is not None:
            calls.append(host)
        if host not in mapping:
            raise socket.gaierror(-2, "Name or service not known")
        address = mapping[host]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]
    return resolve


def texts_of(error: BaseException) -> str:
    return " ".join([str(error), repr(error), str(getattr(error, "to_dict", dict)())])


@pytest.fixture
def two_repos(make_repo, token_git_server):
    """owner/a with token A and owner/b with token B on one server."""
    a = make_repo({"a.py": "A = 1\n"}, name="a")
    b = make_repo({"b.py": "SECRET_B = 1\n"}, name="b")
    tokens = {"a": "canary-token-a-0001", "b": "canary-token-b-0002"}
    urls = {"a": token_git_server.add_repo("owner/a", a.path, tokens["a"]),
            "b": token_git_server.add_repo("owner/b", b.path, tokens["b"])}
    return {"a": a, "b": b}, tokens, urls


# -- every request proves access ------------------------------------------------------------


def test_a_cached_commit_needs_the_repositorys_own_token(two_repos, token_git_server,
                                                         tmp_path):
    repos, tokens, urls = two_repos
    workdir = tmp_path / "w"
    sha_b = repos["b"].commits[0]
    first = fetch_source(urls["b"], "main", workdir, token=tokens["b"])
    assert (first.root / "b.py").exists()

    for token, ending in ((tokens["a"], "check the token"), (None, "none was given")):
        before = len(token_git_server.requests)
        with pytest.raises(SourceError) as caught:
            fetch_source(urls["b"], sha_b, workdir, token=token)
        assert str(caught.value) == f"authentication failed for {urls['b']}: " + (
            ending if token else "the repository needs a token and none was given")
        assert token_git_server.requests[before:] == [
            ("GET", "/owner/b.git/info/refs", 401)]

    again = fetch_source(urls["b"], sha_b, workdir, token=tokens["b"])
    assert again.commit == sha_b and not again.fetched and again.root != first.root
    assert token_git_server.requests[-1] == ("GET", "/owner/b.git/info/refs", 200)


def test_another_repositorys_cached_commit_is_not_found_in_this_one(two_repos, tmp_path):
    repos, tokens, urls = two_repos
    workdir = tmp_path / "w"
    fetch_source(urls["b"], "main", workdir, token=tokens["b"])
    with pytest.raises(SourceError, match=r"^ref '[0-9a-f]{40}' not found in .*/owner/a\.git"):
        fetch_source(urls["a"], repos["b"].commits[0], workdir, token=tokens["a"])
    assert len(list((workdir / "git").iterdir())) == 2


def test_checkouts_are_per_request_and_removable(two_repos, tmp_path):
    _, tokens, urls = two_repos
    workdir = tmp_path / "w"
    one = fetch_source(urls["a"], "main", workdir, token=tokens["a"])
    two = fetch_source(urls["a"], "main", workdir, token=tokens["a"])
    assert one.root != two.root and one.commit == two.commit
    remove_checkout(one)
    assert not one.root.exists() and (two.root / "a.py").exists()


# -- where the fetch may connect ------------------------------------------------------------


def redirect_to(target_base: str):
    def answer(path, headers):
        return 302, {"Location": target_base + path}, b""
    return answer


def test_a_redirect_to_a_host_not_allowed_is_refused(make_repo, tmp_path):
    repo = make_repo({"app.py": "x"})
    with GitServer() as target, ScriptedHttpServer(redirect_to(target.base_url)) as front:
        target.add_repo("owner/app", repo.path)
        url = front.url("/owner/app.git")
        with pytest.raises(SourceError) as caught:
            fetch_source(url, "main", tmp_path / "w", token="canary-redirect-01",
                         allowed_hosts=(f"127.0.0.1:{front.port}",))
        assert str(caught.value).startswith(
            f"refusing to fetch from '{target.base_url}/owner/app.git/info/refs' (host "
            f"127.0.0.1:{target.port} is not an allowed host)")
        assert target.requests == []

        followed = fetch_source(url, "main", tmp_path / "w2", allowed_hosts=("127.0.0.1",))
        assert followed.commit == repo.commits[0]    # the same redirect, to an allowed host


def test_a_redirect_to_another_name_is_refused_before_it_is_looked_up(tmp_path):
    calls: list = []
    with ScriptedHttpServer(redirect_to("https://evil.example")) as front:
        with pytest.raises(SourceError, match=r"^refusing to fetch from 'https://evil\."
                                              r"example/owner/app\.git/info/refs"):
            fetch_source(front.url("/owner/app.git"), "main", tmp_path / "w",
                         allowed_hosts=("127.0.0.1",),
                         resolve=loopback_resolver({"127.0.0.1": "127.0.0.1"}, calls))
    assert calls == ["127.0.0.1"]


def test_a_redirect_to_a_metadata_address_is_refused_before_connecting(tmp_path):
    # No host list (a laptop): redirects may go anywhere public. `localhost` is made to
    # resolve to the metadata address; a fetch that ignored the check would connect to
    # the real localhost, where nothing listens on this port.
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    resolve = loopback_resolver({"127.0.0.1": "127.0.0.1", "localhost": "169.254.169.254"})
    with ScriptedHttpServer(redirect_to(f"http://localhost:{port}")) as front:
        with pytest.raises(SourceError) as caught:
            fetch_source(front.url("/owner/app.git"), "main", tmp_path / "w", resolve=resolve)
    assert str(caught.value) == (f"refusing to connect to localhost:{port}: it resolves to "
                                 "169.254.169.254 (instance metadata address; the builder "
                                 "connects to public addresses only)")


@pytest.mark.parametrize("address", ["10.0.0.1", "::ffff:169.254.169.254", "0.0.0.0"])
def test_a_name_resolving_to_a_refused_address_is_never_connected(remote_app, tmp_path,
                                                                  address):
    server, url = remote_app
    local_url = url.replace("127.0.0.1", "localhost")
    with pytest.raises(SourceError, match=r"^refusing to connect to localhost:\d+: it "
                                          r"resolves to "):
        fetch_source(local_url, "main", tmp_path / "w",
                     resolve=loopback_resolver({"localhost": address}))
    assert server.requests == []


def test_the_connection_goes_to_the_address_checked(make_repo, tmp_path):
    # The server listens on 127.0.0.2 only: the real `localhost` (127.0.0.1) would be
    # refused, so success means the connection used the checked answer.
    repo = make_repo({"app.py": "x"})
    with GitServer(host="127.0.0.2") as server:
        url = server.add_repo("owner/app", repo.path).replace("127.0.0.2", "localhost")
        checkout = fetch_source(url, "main", tmp_path / "w", allowed_hosts=("localhost",),
                                resolve=loopback_resolver({"localhost": "127.0.0.2"}))
    assert checkout.commit == repo.commits[0]


def test_a_service_fetches_only_from_its_allowed_hosts(remote_app, tmp_path, monkeypatch):
    server, url = remote_app
    with pytest.raises(SourceError, match=r"is not allowed \(host 127\.0\.0\.1:\d+ is not "
                                          r"an allowed host\)"):
        fetch_source(url, "main", tmp_path / "w", allowed_hosts=("github.com",))
    with pytest.raises(SourceError, match=r"is not allowed \(not an https:// URL\)"):
        fetch_source(str(tmp_path), None, tmp_path / "w", allowed_hosts=("github.com",))
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "lambda3-builder")
    monkeypatch.setenv("LAMBDA3_ALLOWED_HOSTS", "github.com")
    with pytest.raises(SourceError, match="not an allowed host"):
        fetch_source(url, "main", tmp_path / "w")    # a git requirement inside the service
    assert server.requests == []
    monkeypatch.setenv("LAMBDA3_ALLOWED_HOSTS", "github.com,127.0.0.1")
    assert fetch_source(url, "main", tmp_path / "w").fetched


def test_an_ipv6_literal_with_a_token_is_fetched_over_http(tmp_path):
    # dulwich's own URL parsing takes `http://[::1]:port/...` with credentials for SSH.
    token = "canary-v6-token-77"
    encoded = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    with ScriptedHttpServer(echoing_server_answer, host="::1") as server:
        url = server.url("/owner/app.git")
        with pytest.raises(SourceError, match="Invalid info/refs format") as caught:
            fetch_source(url, "main", tmp_path / "w", token=token, allowed_hosts=("[::1]",))
        assert token not in texts_of(caught.value)
    assert server.seen[-1] == (INFO_REFS, {**server.seen[-1][1],
                                           "authorization": f"Basic {encoded}"})
    with pytest.raises(SourceError, match=rf"^cannot reach \[::1\]:{server.port}: "):
        fetch_source(url, "main", tmp_path / "w", token=token)


def test_behind_a_proxy_the_target_is_checked_before_the_proxy_is_asked(tmp_path,
                                                                      monkeypatch):
    for name in ("https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with ScriptedHttpServer(lambda path, headers: (502, {}, b"")) as proxy:
        monkeypatch.setenv("http_proxy", proxy.url(""))
        with pytest.raises(SourceError, match=r"169\.254\.169\.254 \(instance metadata"):
            fetch_source("http://metadata.test/o/r.git", "main", tmp_path / "w",
                         resolve=loopback_resolver({"metadata.test": "169.254.169.254"}))
        assert proxy.seen == []
        with pytest.raises(SourceError, match="failed: GitProtocolError"):
            fetch_source("http://only-the-proxy-knows.test/o/r.git", "main", tmp_path / "w",
                         resolve=loopback_resolver({}))
    assert [path for path, _ in proxy.seen] == [
        "http://only-the-proxy-knows.test/o/r.git/info/refs?service=git-upload-pack"]


# -- what errors show ---------------------------------------------------------------------


def echoing_server_answer(path, headers):
    """Asks for Basic auth, then answers info/refs with lines that echo the header."""
    auth = headers.get("authorization")
    if not auth:
        return 401, {"WWW-Authenticate": 'Basic realm="x"'}, b""
    return 200, {"Content-Type": "text/plain"}, f"garbage {auth}\n{auth}\n".encode()


@pytest.mark.parametrize("username", ["x-access-token", "alice"])
def test_a_malformed_info_refs_never_shows_the_token(tmp_path, caplog, username):
    caplog.set_level(logging.DEBUG)
    token = "canary-" + "5f3a9c" * 4
    encoded = base64.b64encode(f"{username}:{token}".encode()).decode()
    with ScriptedHttpServer(echoing_server_answer) as server:
        with pytest.raises(SourceError) as caught:
            fetch_source(server.url("/owner/app.git"), "main", tmp_path / "w", token=token,
                         username=username)
    assert any(encoded in h.get("authorization", "") for _, h in server.seen)  # it was sent
    text = texts_of(caught.value) + caplog.text + " ".join(
        r.getMessage() for r in caplog.records)
    assert "Invalid info/refs format" in str(caught.value)
    for form in (token, encoded, encoded.rstrip("=")):
        assert form not in text
    assert "Basic ***" in str(caught.value)


def test_errors_show_work_dir_paths_relative_to_it(remote_app, tmp_path):
    _, url = remote_app
    for blocked in ("src", "git"):
        workdir = tmp_path / f"w-{blocked}"
        workdir.mkdir()
        (workdir / blocked).write_text("not a directory")
        with pytest.raises(SourceError) as caught:
            fetch_source(url, "main", workdir)
        message = str(caught.value)
        assert message.startswith(f"writing the checkout of {url} in the work dir failed: ")
        assert f"'<work dir>/{blocked}" in message
        assert str(tmp_path) not in message


@pytest.fixture
def remote_app(make_repo):
    repo = make_repo({"app.py": "x"})
    with GitServer() as server:
        yield server, server.add_repo("owner/app", repo.path)
