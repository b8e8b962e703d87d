"""SSRF guard: decide whether a step may open a connection to a host.

A workflow author controls the URL of an ``http`` step (and of an approval's ``notify`` webhook), and
the Lambda that runs it sits inside the AWS network: without a guard, ``http://169.254.169.254/`` would
hand out the function's credentials and ``http://10.0.0.5/`` would reach private services. So every
destination goes through :func:`resolve_checked` first, and is refused unless **every** address the
name resolves to is publicly routable.

Checking a name is not enough on its own: DNS can answer differently a moment later (rebinding). The
caller must therefore connect to one of the addresses returned here, never resolve the name again;
``boternity.executors.http`` does that with a pinned transport adapter.

Standard library and boternity.errors only, so any executor can import it for free.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Collection
from typing import TypeAlias

from boternity.errors import BlockedAddress

__all__ = [
    "Address",
    "AllowedHosts",
    "BlockedAddress",
    "Resolver",
    "block_reason",
    "is_public_address",
    "parse_ip_literal",
    "resolve_checked",
    "system_resolver",
]

Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``resolver(host, port) -> ["203.0.113.7", "2001:db8::7", ...]``; raises ``OSError`` when the name
#: does not resolve (``socket.gaierror`` is one).
Resolver: TypeAlias = Callable[[str, int], list[str]]
#: Exact ``(ip, port)`` pairs that skip the address check (tests point it at their 127.0.0.1 server).
AllowedHosts: TypeAlias = Collection[tuple[str, int]]


def _nets(*pairs: tuple[str, str]) -> tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...]:
    return tuple((ipaddress.ip_network(net), reason) for net, reason in pairs)


# Explicit tables rather than only the ``ipaddress`` properties: what ``is_private``/``is_global``
# cover has changed between Python releases (and multicast is "global" by their definition), and a
# named range makes the refusal message say why. Order matters: the first match names the reason.
_V4_BLOCKED = _nets(
    ("255.255.255.255/32", "broadcast"),
    ("0.0.0.0/8", "unspecified ('this network')"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT (shared address space)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud instance metadata)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved for IETF protocol assignments"),
    ("192.0.2.0/24", "reserved for documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved for benchmarking"),
    ("198.51.100.0/24", "reserved for documentation"),
    ("203.0.113.0/24", "reserved for documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
)
_V6_BLOCKED = _nets(
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "an IPv4-compatible IPv6 address (deprecated)"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/32", "Teredo (its IPv4 endpoint is hidden)"),
    ("2001:db8::/32", "reserved for documentation"),
    ("fc00::/7", "private (unique local)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
)
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address stands for, when it is a translation form that reaches it."""
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", address.ipv4_mapped
    if address in _NAT64_WELL_KNOWN:
        return "NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return "6to4", address.sixtofour
    return None


def _coerce(address: str | Address) -> Address:
    return (
        address
        if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address)
        else ipaddress.ip_address(address)
    )


def block_reason(address: str | Address) -> str | None:
    """Why a connection to ``address`` is refused, or ``None`` if it is a public unicast address.

    Raises ``ValueError`` for a string that is not an IP address.
    """
    ip = _coerce(address)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            form, v4 = embedded
            inner = block_reason(v4)
            return f"{form} {inner} ({v4})" if inner else None
        table: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = _V6_BLOCKED
    else:
        table = _V4_BLOCKED
    for network, reason in table:
        if ip in network:
            return reason
    # Belt and braces for ranges the tables miss: the stdlib's view of the registries.
    for flag, reason in (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        (not ip.is_global, "not globally routable"),
    ):
        if flag:
            return reason
    return None


def is_public_address(address: str | Address) -> bool:
    """True when the guard lets a connection to ``address`` through."""
    return block_reason(address) is None


# The characters of a legacy numeric IPv4 form: "2130706433", "0x7f.1", "0177.0.0.1", "127.1".
_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")


def parse_ip_literal(host: str) -> Address | None:
    """The address a host names literally, in any spelling the resolver would accept, else ``None``.

    Besides the standard forms this normalises what ``inet_aton`` (and so ``getaddrinfo``) accepts:
    ``2130706433``, ``0x7f.1``, ``0177.0.0.1`` and ``127.1`` are all 127.0.0.1. Handling them here means
    a literal is judged by the address it really is, whatever resolver was injected.
    """
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(candidate):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(candidate))
        except OSError:
            return None
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``getaddrinfo`` gives for a TCP connection to ``host:port``, in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def resolve_checked(
    host: str,
    port: int,
    *,
    allow_private_network: bool = False,
    resolver: Resolver | None = None,
    allowed_hosts: AllowedHosts = (),
) -> list[str]:
    """Resolve ``host`` and return its addresses (normalised strings) if the guard allows them all.

    - An IP literal (any spelling, see :func:`parse_ip_literal`) is checked as is; the resolver is not
      called for it.
    - Otherwise ``resolver`` (default: :func:`system_resolver`) supplies the addresses; a failure to
      resolve propagates as the resolver's ``OSError``.
    - Every address must pass, not just the first: the connection may go to any of them, and a name
      answering "public, private" is an attack, not a misconfiguration.
    - ``allow_private_network=True`` skips the check (local development and tests); ``allowed_hosts``
      lets exact ``(ip, port)`` pairs through and nothing else.

    Raises :class:`BlockedAddress`. Connect only to the returned addresses.
    """
    literal = parse_ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        addresses = []
        for item in (resolver or system_resolver)(host, port):
            try:
                addresses.append(ipaddress.ip_address(item))
            except ValueError:
                # Fail closed: whatever this is, nobody validated where it would connect.
                raise BlockedAddress(host, str(item), "not an IP address (resolver output)") from None
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} resolved to no address")

    if not allow_private_network:
        exempt = {(_coerce(ip), int(p)) for ip, p in allowed_hosts}
        for ip in addresses:
            if (ip, port) in exempt:
                continue
            reason = block_reason(ip)
            if reason is not None:
                raise BlockedAddress(host, str(ip), reason)
    return list(dict.fromkeys(str(ip) for ip in addresses))
