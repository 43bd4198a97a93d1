"""builder.hosts: which repositories a service accepts, which addresses any fetch may reach."""
from __future__ import annotations

import socket

import pytest

from builder import hosts
from builder.errors import RequestError, SourceError

ALLOWED = ("github.com", "127.0.0.1", "git.example.com:8443", "[::1]:9000")


@pytest.mark.parametrize("url", [
    "https://github.com/o/r.git",
    "HTTPS://GitHub.COM/o/r",
    "https://github.com:443/o/r.git",
    "https://github.com./o/r.git",
    "https://git.example.com:8443/o/r.git",
    "http://127.0.0.1:8123/o/r.git",        # loopback named bare: any port, plain http too
    "https://127.0.0.1:9/o/r.git",
    "http://[::1]:9000/o/r.git",
    "https://github.com/o/r.git?x=1#frag",
])
def test_service_accepts_https_on_the_allowed_hosts(url):
    hosts.check_repository(url, allowed_hosts=ALLOWED, service=True)


@pytest.mark.parametrize("url, reason", [
    ("/var/task/repo", "not an https:// URL"),
    ("./repo", "not an https:// URL"),
    ("file:///etc/passwd", "not an https:// URL"),
    ("FILE:///etc/passwd", "not an https:// URL"),
    ("ssh://git@github.com/o/r.git", "not an https:// URL"),
    ("git://github.com/o/r.git", "not an https:// URL"),
    ("ext::sh -c touch% /tmp/pwned", "spaces"),
    ("ext::sh", "not an https:// URL"),
    ("git@github.com:o/r.git", "not an https:// URL"),
    ("github.com/o/r.git", "not an https:// URL"),
    ("http://github.com/o/r.git", "plain http:// is allowed for a local (loopback) host only"),
    ("https://user@github.com/o/r.git", "credentials in the URL"),
    ("https://github.com@evil.example/o/r.git", "credentials in the URL"),
    ("https://evil.example/o/r.git", "host evil.example is not an allowed host"),
    ("https://github.com.evil.example/o/r.git", "not an allowed host"),
    ("https://api.github.com/o/r.git", "not an allowed host"),
    ("https://github.com:8443/o/r.git", "host github.com:8443 is not an allowed host"),
    ("https://git.example.com/o/r.git", "host git.example.com is not an allowed host"),
    ("https://[::1]/o/r.git", "host [::1] is not an allowed host"),
    ("https://[2001:db8::1]/o/r.git", "not an allowed host"),
    ("https://[::ffff:127.0.0.1]/o/r.git", "not an allowed host"),
    ("https://169.254.169.254/latest/meta-data", "not an allowed host"),
    ("http://localhost:8123/o/r.git", "host localhost:8123 is not an allowed host"),
    ("https://2130706433/o/r.git", "not an allowed host"),          # 127.0.0.1 as a number
    ("https://github.com:99999/o/r.git", "no valid host and port"),
    ("https://github.com:/o/r.git", "no valid host and port"),
    ("https://github.com:443:80/o/r.git", "no valid host and port"),
    ("https://[::1/o/r.git", "no valid host and port"),
    ("https://[fe80::1%25eth0]/o/r.git", "no valid host and port"),
    ("https://git_hub.com/o/r.git", "no valid host and port"),
    ("https:///o/r.git", "no valid host and port"),
    ("https://github.com\\@evil.example/o/r.git", "backslashes"),
    ("https://github.com/o/r .git", "spaces"),
    ("https://gіthub.com/o/r.git", "non-ASCII"),                    # a Cyrillic i
])
def test_service_refuses(url, reason):
    with pytest.raises(RequestError) as caught:
        hosts.check_repository(url, allowed_hosts=ALLOWED, service=True)
    message = str(caught.value)
    assert reason in message
    assert "allowed hosts only (github.com, 127.0.0.1, git.example.com:8443, [::1]:9000)" \
        in message
    assert message.endswith("(to allow another host: lambda3 bootstrap --allow-host HOST)")
    assert "\n" not in message and caught.value.step == "request"


@pytest.mark.parametrize("url, problem", [
    ("https://github.com/o/r.git\n", "control characters"),
    ("https://github.com/o/\x00r.git", "control characters"),
    ("https://github.com/o/\x1b[31mr.git", "control characters"),
    ("https://github.com/" + "a" * hosts.MAX_URL_LENGTH, "is over 2048 characters"),
    ("", "the repository is empty"),
])
@pytest.mark.parametrize("service", [True, False])
def test_control_characters_and_long_values_are_refused_everywhere(url, problem, service):
    with pytest.raises(RequestError, match=problem) as caught:
        hosts.check_repository(url, allowed_hosts=ALLOWED, service=service)
    assert "\n" not in str(caught.value) and "\x00" not in str(caught.value)


@pytest.mark.parametrize("url", ["/home/me/project", "./project", "http://localhost:8000/o/r",
                                 "http://git.internal.example/o/r.git",
                                 "https://gitlab.example.com/o/r.git"])
def test_outside_a_service_paths_and_http_stay_allowed(url):
    hosts.check_repository(url, allowed_hosts=("github.com",), service=False)


def test_the_message_names_the_repository_without_credentials():
    url = "https://x-access-token:ghp_canary1234@evil.example/o/r.git?token=canary2#x"
    with pytest.raises(RequestError) as caught:
        hosts.check_repository(url, allowed_hosts=("github.com",), service=True)
    message = str(caught.value)
    assert "'https://evil.example/o/r.git'" in message
    assert "canary" not in message and "x-access-token" not in message


def test_no_allowed_hosts_refuses_every_url():
    with pytest.raises(RequestError, match=r"allowed hosts only \(none\)"):
        hosts.check_repository("https://github.com/o/r", allowed_hosts=(), service=True)


@pytest.mark.parametrize("entry, parsed", [
    ("github.com", ("github.com", None)),
    ("GitHub.COM", ("github.com", None)),
    ("127.0.0.1:8123", ("127.0.0.1", 8123)),
    ("[::1]", ("::1", None)),
    ("[::1]:9000", ("::1", 9000)),
    ("::1", ("::1", None)),
    ("[0:0::1]", ("::1", None)),
    ("github.com:0", None),
    ("*.github.com", None),
    ("user@github.com", None),
    ("", None),
])
def test_parse_entry(entry, parsed):
    assert hosts.parse_entry(entry) == parsed


def test_check_redirect_with_and_without_a_host_list():
    hosts.check_redirect("http://anything.example/o/r.git/info/refs", allowed_hosts=None)
    with pytest.raises(SourceError, match="not an http"):
        hosts.check_redirect("ftp://anything.example/o/r.git", allowed_hosts=None)
    hosts.check_redirect("https://github.com/o/r.git/info/refs", allowed_hosts=ALLOWED)
    for url in ("https://evil.example/o/r.git/info/refs", "http://github.com/o/r.git",
                "https://github.com:8443/o/r.git"):
        with pytest.raises(SourceError, match="refusing to fetch from") as caught:
            hosts.check_redirect(url, allowed_hosts=ALLOWED)
        assert caught.value.step == "fetch"


# -- addresses ----------------------------------------------------------------------------


def resolver(*addresses: str, calls: list | None = None):
    """A getaddrinfo that answers `addresses` for any name."""
    def resolve(host, port, family=0, type=0, proto=0, flags=0):
        if calls is not None:
            calls.append((host, port, family, type))
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port, 0, 0) if ":" in a else (a, port)) for a in addresses]
    return resolve


REFUSED = [
    ("169.254.169.254", "instance metadata"),
    ("169.254.170.2", "instance metadata"),
    ("fd00:ec2::254", "instance metadata"),
    ("169.254.0.1", "link-local"),
    ("169.254.255.254", "link-local"),
    ("fe80::1", "link-local"),
    ("febf:ffff::1", "link-local"),
    ("::ffff:169.254.169.254", "instance metadata"),   # IPv4-mapped
    ("::169.254.169.254", "instance metadata"),        # IPv4-compatible
    ("64:ff9b::169.254.169.254", "instance metadata"),  # NAT64
    ("2002:a9fe:a9fe::1", "instance metadata"),        # 6to4
    ("::ffff:10.0.0.1", "private"),
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("fc00::1", "private"),
    ("fdff:ffff::1", "private"),
    ("100.64.0.1", "non-public"),
    ("100.127.255.254", "non-public"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("255.255.255.255", "private"),
    ("192.0.2.1", "private"),                          # documentation
    ("127.0.0.1", "loopback"),
    ("127.8.8.8", "loopback"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),
]


@pytest.mark.parametrize("address, kind", REFUSED)
def test_refused_addresses(address, kind):
    with pytest.raises(SourceError) as caught:
        hosts.check_address("git.example.com", 443, allowed_hosts=("github.com",),
                            resolve=resolver(address))
    message = str(caught.value)
    assert message.startswith("refusing to connect to git.example.com:443: it resolves to ")
    assert f"({kind}" in message and " address; " in message
    assert caught.value.step == "fetch"


@pytest.mark.parametrize("address", ["140.82.112.3", "8.8.8.8", "172.32.0.1", "100.128.0.1",
                                     "169.255.0.1", "2606:50c0:8000::154"])
def test_public_addresses_pass(address):
    hosts.check_address("github.com", 443, allowed_hosts=("github.com",),
                        resolve=resolver(address))


@pytest.mark.parametrize("allowed", [None, ("127.0.0.1",), ("localhost:8123",), ("[::1]",)])
def test_loopback_passes_without_a_host_list_or_for_a_named_host(allowed):
    name = {None: "localhost", ("127.0.0.1",): "127.0.0.1", ("localhost:8123",): "localhost",
            ("[::1]",): "::1"}[allowed]
    hosts.check_address(name, 8123, allowed_hosts=allowed,
                        resolve=resolver("127.0.0.1", "::1"))


def test_loopback_is_refused_for_a_host_not_named():
    with pytest.raises(SourceError, match=r"\(loopback address; name the host in the allowed"):
        hosts.check_address("github.com", 443, allowed_hosts=("github.com.evil",),
                            resolve=resolver("127.0.0.1"))


@pytest.mark.parametrize("allowed", [None, ("127.0.0.1",), ("git.example.com",)])
def test_metadata_and_private_are_refused_whatever_the_host_list(allowed):
    for address in ("169.254.169.254", "10.0.0.1", "0.0.0.0"):
        with pytest.raises(SourceError, match="refusing to connect"):
            hosts.check_address("git.example.com", 80, allowed_hosts=allowed,
                                resolve=resolver(address))


def test_every_address_a_name_resolves_to_is_checked():
    with pytest.raises(SourceError, match="it resolves to 169.254.169.254"):
        hosts.check_address("github.com", 443, allowed_hosts=("github.com",),
                            resolve=resolver("140.82.112.3", "169.254.169.254"))


def test_checked_addresses_are_the_resolver_records_for_the_host_and_port():
    calls: list = []
    records = hosts.checked_addresses("GitHub.com", 443, allowed_hosts=("github.com",),
                                      resolve=resolver("140.82.112.3", calls=calls))
    assert calls == [("github.com", 443, 0, socket.SOCK_STREAM)]
    assert [r[4][0] for r in records] == ["140.82.112.3"]


def test_a_name_that_does_not_resolve():
    def fails(*args):
        raise socket.gaierror(-2, "Name or service not known")

    with pytest.raises(SourceError, match="^cannot reach nowhere.invalid:443: the host name "
                                          "does not resolve"):
        hosts.check_address("nowhere.invalid", 443, allowed_hosts=None, resolve=fails)
    with pytest.raises(SourceError, match="resolves to no address"):
        hosts.check_address("empty.invalid", 443, allowed_hosts=None, resolve=resolver())


def test_a_scoped_link_local_answer_is_refused():
    def scoped(host, port, *args):
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fe80::1%eth0", port, 0, 2))]

    with pytest.raises(SourceError, match=r"fe80::1 \(link-local"):
        hosts.check_address("git.example.com", 443, allowed_hosts=None, resolve=scoped)
