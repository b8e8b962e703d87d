"""The SSRF guard's decisions: which addresses are refused, and how names and literals are resolved.

No test here touches the network: resolvers are injected, and literals never reach one.
"""

from __future__ import annotations

import socket

import pytest

from boternity.executors import netguard
from boternity.executors.netguard import BlockedAddress, block_reason, parse_ip_literal, resolve_checked
from tests.support.http_target import StaticResolver


def refuse_to_resolve(host: str, port: int) -> list[str]:
    raise AssertionError(f"the resolver must not be asked about {host!r}")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.255", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.1", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("fec0::1", "site-local"),
        ("2001:db8::1", "documentation"),
        ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
        ("::ffff:169.254.169.254", "IPv4-mapped link-local"),
        ("::ffff:10.0.0.1", "IPv4-mapped private"),
        ("64:ff9b::7f00:1", "NAT64 loopback"),
        ("64:ff9b::a9fe:a9fe", "NAT64 link-local"),
        ("64:ff9b:1::a00:1", "local-use NAT64"),
        ("2002:7f00:1::1", "6to4 loopback"),
        ("2002:a00:1::1", "6to4 private"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
        ("::127.0.0.1", "IPv4-compatible"),
    ],
)
def test_non_public_addresses_are_refused_with_the_reason(address: str, reason: str) -> None:
    found = block_reason(address)
    assert found is not None and reason in found
    assert not netguard.is_public_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.215.14",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ],
)
def test_public_addresses_pass_including_translations_of_public_ipv4(address: str) -> None:
    assert block_reason(address) is None
    assert netguard.is_public_address(address)


def test_block_reason_rejects_strings_that_are_not_addresses() -> None:
    with pytest.raises(ValueError):
        block_reason("example.com")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
        ("[0:0:0:0:0:ffff:7f00:1]", "::ffff:7f00:1"),
    ],
)
def test_every_spelling_of_an_ip_literal_is_normalised(host: str, expected: str) -> None:
    assert str(parse_ip_literal(host)) == expected


@pytest.mark.parametrize("host", ["example.com", "cafe.be", "dead.beef", "1.2.3.4.5", "localhost", ""])
def test_names_are_not_literals(host: str) -> None:
    assert parse_ip_literal(host) is None


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "0x7f.1", "[::1]", "169.254.169.254", "0"])
def test_literals_are_judged_without_asking_the_resolver(host: str) -> None:
    with pytest.raises(BlockedAddress) as blocked:
        resolve_checked(host, 80, resolver=refuse_to_resolve)
    assert blocked.value.host == host


def test_a_literal_is_reported_as_the_address_it_really_is() -> None:
    with pytest.raises(BlockedAddress) as blocked:
        resolve_checked("2130706433", 80, resolver=refuse_to_resolve)
    assert (blocked.value.address, blocked.value.reason) == ("127.0.0.1", "loopback")
    assert "2130706433 resolves to 127.0.0.1, which is loopback" in str(blocked.value)


def test_a_public_name_resolving_to_a_private_address_is_refused() -> None:
    resolver = StaticResolver({"internal.example.com": ["10.0.0.1"]})
    with pytest.raises(BlockedAddress) as blocked:
        resolve_checked("internal.example.com", 443, resolver=resolver)
    assert blocked.value.address == "10.0.0.1"
    assert resolver.calls == [("internal.example.com", 443)]


def test_every_address_of_a_name_must_be_public_not_just_the_first() -> None:
    resolver = StaticResolver({"mixed.example.com": ["93.184.215.14", "2606:4700::1", "169.254.169.254"]})
    with pytest.raises(BlockedAddress) as blocked:
        resolve_checked("mixed.example.com", 80, resolver=resolver)
    assert blocked.value.address == "169.254.169.254"


def test_a_public_name_returns_its_addresses_normalised_and_deduplicated() -> None:
    resolver = StaticResolver({"api.example.com": ["93.184.215.14", "2606:4700:0::1", "93.184.215.14"]})
    assert resolve_checked("api.example.com", 443, resolver=resolver) == ["93.184.215.14", "2606:4700::1"]


def test_resolver_output_that_is_not_an_address_fails_closed() -> None:
    resolver = StaticResolver({"odd.example.com": ["93.184.215.14", "not-an-ip"]})
    with pytest.raises(BlockedAddress, match="not an IP address"):
        resolve_checked("odd.example.com", 80, resolver=resolver)


def test_a_name_that_does_not_resolve_raises_the_resolvers_oserror() -> None:
    with pytest.raises(socket.gaierror):
        resolve_checked("nowhere.example.com", 80, resolver=StaticResolver({}))


def test_a_resolver_returning_nothing_counts_as_not_resolving() -> None:
    with pytest.raises(socket.gaierror):
        resolve_checked("empty.example.com", 80, resolver=StaticResolver({"empty.example.com": []}))


def test_allow_private_network_lets_everything_through() -> None:
    resolver = StaticResolver({"db.internal": ["10.0.0.7", "127.0.0.1"]})
    assert resolve_checked("db.internal", 5432, allow_private_network=True, resolver=resolver) == [
        "10.0.0.7",
        "127.0.0.1",
    ]
    assert resolve_checked("0x7f.1", 80, allow_private_network=True) == ["127.0.0.1"]


def test_allowed_hosts_exempts_exactly_that_address_and_port() -> None:
    allowed = {("127.0.0.1", 8080)}
    assert resolve_checked("127.0.0.1", 8080, allowed_hosts=allowed) == ["127.0.0.1"]
    # The same address spelled differently is the same address.
    assert resolve_checked("2130706433", 8080, allowed_hosts=allowed) == ["127.0.0.1"]
    with pytest.raises(BlockedAddress):
        resolve_checked("127.0.0.1", 8081, allowed_hosts=allowed)
    with pytest.raises(BlockedAddress):
        resolve_checked("127.0.0.2", 8080, allowed_hosts=allowed)


def test_the_default_resolver_uses_getaddrinfo(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, ...]] = []

    def fake_getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        calls.append((host, port))
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fd00::1", port, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    assert netguard.system_resolver("intranet.example.com", 443) == ["10.0.0.1", "fd00::1"]
    with pytest.raises(BlockedAddress):
        resolve_checked("intranet.example.com", 443)
    assert calls == [("intranet.example.com", 443), ("intranet.example.com", 443)]


def test_the_default_resolver_answers_numeric_hosts_itself() -> None:
    # Numeric hosts are answered by libc without any lookup.
    assert netguard.system_resolver("127.0.0.1", 80) == ["127.0.0.1"]
