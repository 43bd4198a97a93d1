"""Which repositories the builder may fetch, and which addresses it may connect to.

Pure functions: nothing here connects; the resolver is passed in.

`check_repository` decides on a request's repository. As a service (inside Lambda or the
local invoker) only `https://HOST/...` with HOST in the allowed hosts passes; plain
`http://` passes only for a loopback host the allowed hosts name (the embedded mode's git
server). Refused: local paths, `file://`, `ssh://`, `git://`, `ext::`, scp-like `git@h:x`,
user info in the URL, IPv6 literals not named, control characters, spaces, non-ASCII and
values over `MAX_URL_LENGTH`. Elsewhere (a laptop) local paths and http(s) stay allowed.

Allowed-host entries (`LAMBDA3_ALLOWED_HOSTS`), compared case-insensitively and exactly (no
wildcards, a subdomain is another host):
- `host` allows that host on the scheme's default port (443) only; for a loopback host
  (`localhost`, `127.x.x.x`, `[::1]`) it allows any port, since local servers take a free
  port each run.
- `host:port` allows that port only; `[v6]` and `[v6]:port` name an IPv6 literal.

`check_address` decides on what a host name resolves to, before any connection: every
address must be public. Refused whatever the allowed hosts say: link-local (169.254.0.0/16
with the instance and container metadata endpoints, fe80::/10), private (10/8, 172.16/12,
192.168/16, fc00::/7 with fd00:ec2::254), shared (100.64/10), unspecified (0.0.0.0, ::),
reserved, documentation, broadcast and multicast addresses, and IPv6 forms that embed one
of those (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo). Loopback is allowed only for
a host the allowed hosts name, or when there is no host list (`allowed_hosts=None`: a
laptop's own build, which may fetch from a local server).
"""
from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from builder.errors import RequestError, SourceError

MAX_URL_LENGTH = 2048
ALLOW_HOST_FIX = "to allow another host: lambda3 bootstrap --allow-host HOST"
_DEFAULT_PORTS = {"https": 443, "http": 80}
_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?")
_SERVICE_UNSAFE = re.compile(r"[^\x21-\x7e]|\\")   # controls, spaces, non-ASCII, backslash
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_METADATA = {ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2",
                                               "fd00:ec2::254")}

Resolver = Callable[..., Sequence[tuple[Any, ...]]]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


# -- repositories -------------------------------------------------------------------------


def check_repository(url: str, *, allowed_hosts: Sequence[str], service: bool) -> None:
    """Raise `RequestError` unless the builder may fetch `url` (see the module docstring)."""
    reason = repository_refusal(url, allowed_hosts=allowed_hosts, service=service)
    if reason:
        raise RequestError(reason, hint=ALLOW_HOST_FIX if service else None)


def repository_refusal(url: str, *, allowed_hosts: Sequence[str],
                       service: bool) -> str | None:
    """Why `url` is refused, as one line naming it (without credentials); None if it is not."""
    if not isinstance(url, str) or not url:
        return "the repository is empty: give an https:// URL"
    if len(url) > MAX_URL_LENGTH:
        return f"repository {shown_url(url)!r} is over {MAX_URL_LENGTH} characters"
    if _CONTROL.search(url):
        return f"repository {shown_url(url)!r} contains control characters"
    if not service:
        return None
    reason = _service_reason(url, allowed_hosts)
    if reason is None:
        return None
    listed = ", ".join(allowed_hosts) or "none"
    return (f"repository {shown_url(url)!r} is not allowed ({reason}): the builder fetches "
            f"https:// repositories on its allowed hosts only ({listed})")


def check_redirect(url: str, *, allowed_hosts: Sequence[str] | None) -> None:
    """Raise `SourceError` unless a request the fetch is sent to (a redirect's target
    included) may go to `url`: with a host list, the service rules; without, http(s)."""
    if allowed_hosts is None:
        if urlsplit(url).scheme.lower() not in _DEFAULT_PORTS:
            raise SourceError(f"refusing to fetch from {shown_url(url)!r}: not an http(s) "
                              "URL")
        return
    reason = _service_reason(url, allowed_hosts)
    if reason:
        raise SourceError(f"refusing to fetch from {shown_url(url)!r} ({reason}): the "
                          "builder fetches https:// on its allowed hosts only "
                          f"({', '.join(allowed_hosts) or 'none'})", hint=ALLOW_HOST_FIX)


def shown_url(url: str) -> str:
    """`url` as a message may show it: no user info, no query or fragment, at most 200
    characters."""
    if "://" in url:
        scheme, _, rest = url.partition("://")
        authority, slash, path = rest.partition("/")
        url = f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"
        url = url.split("?", 1)[0].split("#", 1)[0]
    return url if len(url) <= 200 else url[:200] + "..."


def _service_reason(url: str, allowed_hosts: Sequence[str]) -> str | None:
    """Why a service refuses `url` (a short phrase), or None."""
    if _SERVICE_UNSAFE.search(url):
        return "spaces, backslashes or non-ASCII characters"
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in _DEFAULT_PORTS:
        return "not an https:// URL"
    authority = url.partition("://")[2].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in authority:
        return "credentials in the URL: send the token as the request's token instead"
    parsed = parse_authority(authority, scheme)
    if parsed is None:
        return "no valid host and port"
    host, port = parsed
    if not host_allowed(host, port, scheme, allowed_hosts):
        return f"host {format_host(host, port, scheme)} is not an allowed host"
    if scheme == "http" and not is_loopback_host(host):
        return "plain http:// is allowed for a local (loopback) host only"
    return None


# -- allowed hosts ------------------------------------------------------------------------


def parse_authority(authority: str, scheme: str) -> tuple[str, int] | None:
    """`Host:port`, `[v6]:port` -> (lowercase host without brackets, port); None if invalid.
    The port defaults to the scheme's."""
    authority = authority.lower()
    if authority.startswith("["):
        literal, bracket, rest = authority[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")) or "%" in literal:
            return None
        host, port_text = literal, rest[1:] if rest else ""
        try:
            host = str(ipaddress.IPv6Address(host))
        except ValueError:
            return None
    else:
        host, colon, port_text = authority.partition(":")
        if colon and not port_text:
            return None
        if not _NAME.fullmatch(host) or len(host) > 253:
            return None
        host = host.rstrip(".")
    if not port_text:
        return host, _DEFAULT_PORTS.get(scheme, 443)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return host, int(port_text)


def parse_entry(entry: str) -> tuple[str, int | None] | None:
    """An allowed-host entry -> (host, port or None for "see the rules"); None if invalid.
    A bare IPv6 literal (`::1`) is taken as `[::1]`."""
    entry = entry.strip().lower()
    if entry.count(":") >= 2 and not entry.startswith("["):
        entry = f"[{entry}]"
    parsed = parse_authority(entry, "")
    if parsed is None:
        return None
    has_port = entry.rpartition("]")[2].startswith(":") if entry.startswith("[") \
        else ":" in entry
    return parsed[0], parsed[1] if has_port else None


def host_allowed(host: str, port: int, scheme: str, allowed_hosts: Sequence[str]) -> bool:
    """Does an entry of `allowed_hosts` name `host` on `port`?"""
    default = _DEFAULT_PORTS.get(scheme)
    for entry in allowed_hosts:
        parsed = parse_entry(entry)
        if parsed is None or parsed[0] != host:
            continue
        named_port = parsed[1]
        if named_port == port or (named_port is None
                                  and (port == default or is_loopback_host(host))):
            return True
    return False


def host_named(host: str, allowed_hosts: Sequence[str] | None) -> bool:
    """Does any entry name `host` (on whatever port)? True when there is no host list."""
    if allowed_hosts is None:
        return True
    host = _normal_host(host)
    return any((parsed := parse_entry(entry)) is not None and parsed[0] == host
               for entry in allowed_hosts)


def is_loopback_host(host: str) -> bool:
    host = _normal_host(host)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def format_host(host: str, port: int, scheme: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port == _DEFAULT_PORTS.get(scheme) else f"{shown}:{port}"


def _normal_host(host: str) -> str:
    host = host.strip().lower().strip("[]").rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


# -- addresses ----------------------------------------------------------------------------


def check_address(host: str, port: int, *, allowed_hosts: Sequence[str] | None,
                  resolve: Resolver = socket.getaddrinfo) -> None:
    """Raise `SourceError` unless every address `host` resolves to may be connected to."""
    checked_addresses(host, port, allowed_hosts=allowed_hosts, resolve=resolve)


def checked_addresses(host: str, port: int, *, allowed_hosts: Sequence[str] | None,
                      resolve: Resolver = socket.getaddrinfo) -> list[tuple[Any, ...]]:
    """`resolve(host, port)`'s address records, each checked; connect to these and only
    these, so that a second lookup cannot answer differently."""
    shown = format_host(_normal_host(host), port, "")
    try:
        records = list(resolve(_normal_host(host), port, 0, socket.SOCK_STREAM))
    except (OSError, UnicodeError) as exc:
        raise SourceError(f"cannot reach {shown}: the host name does not resolve "
                          f"({type(exc).__name__})") from None
    if not records:
        raise SourceError(f"cannot reach {shown}: the host name resolves to no address")
    loopback_ok = host_named(host, allowed_hosts)
    for record in records:
        address = ipaddress.ip_address(str(record[4][0]).split("%", 1)[0])
        reason = address_refusal(address, loopback_ok=loopback_ok)
        if reason:
            fix = ("name the host in the allowed hosts to allow it" if reason == "loopback"
                   else "the builder connects to public addresses only")
            raise SourceError(f"refusing to connect to {shown}: it resolves to {address} "
                              f"({reason} address; {fix})")
    return records


def address_refusal(address: Address, *, loopback_ok: bool) -> str | None:
    """What kind of refused address `address` is ("link-local (metadata)", "private", ...),
    or None if it may be connected to."""
    if isinstance(address, ipaddress.IPv6Address) and (
            address.ipv4_mapped or (address in _IPV4_COMPATIBLE and int(address) > 1)):
        return address_refusal(_embedded_ipv4(address)[0], loopback_ok=loopback_ok)
    for embedded in _embedded_ipv4(address):
        reason = address_refusal(embedded, loopback_ok=False)
        if reason:
            return reason
    if address.is_loopback:
        return None if loopback_ok else "loopback"
    if address in _METADATA:
        return "instance metadata"
    if address.is_link_local:
        return "link-local (metadata)"
    if address.is_multicast:
        return "multicast"
    if address.is_unspecified:
        return "unspecified"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "non-public"
    return None


def _embedded_ipv4(address: Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, 6to4,
    Teredo): a connection may end up there."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [address.ipv4_mapped, address.sixtofour]
    if address.teredo:
        found.extend(address.teredo)
    if address in _IPV4_COMPATIBLE or address in _NAT64:
        low = int(address) & 0xFFFFFFFF
        if address in _NAT64 or int(address) > 1:   # :: and ::1 are not IPv4-compatible
            found.append(ipaddress.IPv4Address(low))
    return [a for a in found if a is not None]
