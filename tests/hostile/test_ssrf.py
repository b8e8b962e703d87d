"""SSRF disguises: every spelling of a loopback, private or metadata address is refused before connecting.

A real server listens on 127.0.0.1 (and one on ::1) and records every request; each case points an http
step at it in a different disguise and asserts the exact refusal and that the server received nothing.
Redirects are checked hop by hop: a server treated as public (``allowed_hosts`` exempts exactly its
port, as tests/functional/test_netguard.py does) sends the step on to loopback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from boternity.errors import StepError, StepFailed
from boternity.executors.http import run_http
from tests.support.http_target import HttpTarget, StaticResolver


@pytest.fixture(scope="module")
def victim() -> Iterator[HttpTarget]:
    with HttpTarget() as target:
        yield target


@pytest.fixture(scope="module")
def victim6() -> Iterator[HttpTarget]:
    with HttpTarget("::1") as target:
        yield target


@pytest.fixture(scope="module")
def public() -> Iterator[HttpTarget]:
    with HttpTarget() as target:
        yield target


def _refusal(url: str, **kwargs: object) -> StepError:
    with pytest.raises(StepError) as caught:
        run_http({"url": url, "timeout_secs": 5}, **kwargs)
    return caught.value


LOOPBACK = "which is loopback"

# (id, URL with {p} for the victim's port, the refusal after "refusing to connect for GET ")
DISGUISES = [
    ("plain", "http://127.0.0.1:{p}/", "http://127.0.0.1:{p}/: 127.0.0.1, " + LOOPBACK),
    ("decimal", "http://2130706433:{p}/", "http://2130706433:{p}/: 2130706433 resolves to 127.0.0.1, " + LOOPBACK),
    ("hex-dotted", "http://0x7f.1:{p}/", "http://0x7f.1:{p}/: 0x7f.1 resolves to 127.0.0.1, " + LOOPBACK),
    ("hex-whole", "http://0x7f000001:{p}/", "http://0x7f000001:{p}/: 0x7f000001 resolves to 127.0.0.1, " + LOOPBACK),
    ("hex-each-octet", "http://0x7f.0x0.0x0.0x1:{p}/",
     "http://0x7f.0x0.0x0.0x1:{p}/: 0x7f.0x0.0x0.0x1 resolves to 127.0.0.1, " + LOOPBACK),
    ("octal", "http://0177.0.0.1:{p}/", "http://0177.0.0.1:{p}/: 0177.0.0.1 resolves to 127.0.0.1, " + LOOPBACK),
    ("octal-whole", "http://017700000001:{p}/",
     "http://017700000001:{p}/: 017700000001 resolves to 127.0.0.1, " + LOOPBACK),
    ("zero-padded", "http://127.000.000.001:{p}/",
     "http://127.000.000.001:{p}/: 127.000.000.001 resolves to 127.0.0.1, " + LOOPBACK),
    ("short-form", "http://127.1:{p}/", "http://127.1:{p}/: 127.1 resolves to 127.0.0.1, " + LOOPBACK),
    ("percent-encoded-host", "http://%31%32%37.0.0.1:{p}/", "http://127.0.0.1:{p}/: 127.0.0.1, " + LOOPBACK),
    ("upper-case-scheme", "HTTP://127.0.0.1:{p}/", "http://127.0.0.1:{p}/: 127.0.0.1, " + LOOPBACK),
    ("surrounding-spaces", "  http://127.0.0.1:{p}/ ", "http://127.0.0.1:{p}/: 127.0.0.1, " + LOOPBACK),
    ("ipv4-mapped-ipv6", "http://[::ffff:127.0.0.1]:{p}/",
     "http://[::ffff:127.0.0.1]:{p}/: ::ffff:127.0.0.1 resolves to ::ffff:7f00:1, which is IPv4-mapped loopback "
     "(127.0.0.1)"),
    ("ipv4-mapped-ipv6-hex", "http://[::ffff:7f00:1]:{p}/",
     "http://[::ffff:7f00:1]:{p}/: ::ffff:7f00:1, which is IPv4-mapped loopback (127.0.0.1)"),
    ("ipv4-mapped-ipv6-long", "http://[0:0:0:0:0:ffff:127.0.0.1]:{p}/",
     "http://[0:0:0:0:0:ffff:127.0.0.1]:{p}/: 0:0:0:0:0:ffff:127.0.0.1 resolves to ::ffff:7f00:1, which is "
     "IPv4-mapped loopback (127.0.0.1)"),
    ("ipv4-mapped-with-zone", "http://[::ffff:127.0.0.1%25eth0]:{p}/",
     "http://[::ffff:127.0.0.1%25eth0]:{p}/: ::ffff:127.0.0.1%25eth0 resolves to ::ffff:7f00:1%25eth0, which is "
     "IPv4-mapped loopback (127.0.0.1)"),
    ("ipv4-compatible-ipv6", "http://[::127.0.0.1]:{p}/",
     "http://[::127.0.0.1]:{p}/: ::127.0.0.1 resolves to ::7f00:1, which is an IPv4-compatible IPv6 address "
     "(deprecated)"),
    ("ipv4-translated-ipv6", "http://[::ffff:0:7f00:1]:{p}/", "http://[::ffff:0:7f00:1]:{p}/: ::ffff:0:7f00:1, which is reserved"),
    ("nat64", "http://[64:ff9b::127.0.0.1]:{p}/",
     "http://[64:ff9b::127.0.0.1]:{p}/: 64:ff9b::127.0.0.1 resolves to 64:ff9b::7f00:1, which is NAT64 loopback "
     "(127.0.0.1)"),
    ("6to4", "http://[2002:7f00:1::]:{p}/", "http://[2002:7f00:1::]:{p}/: 2002:7f00:1::, which is 6to4 loopback (127.0.0.1)"),
    ("unspecified", "http://0.0.0.0:{p}/", "http://0.0.0.0:{p}/: 0.0.0.0, which is unspecified ('this network')"),
    ("unspecified-short", "http://0:{p}/", "http://0:{p}/: 0 resolves to 0.0.0.0, which is unspecified ('this network')"),
    ("localhost-name", "http://localhost:{p}/", "http://localhost:{p}/: localhost resolves to 127.0.0.1, " + LOOPBACK),
    ("userinfo", "http://a@127.0.0.1:{p}/", "http://127.0.0.1:{p}/: 127.0.0.1, " + LOOPBACK),
    ("userinfo-looking-like-a-host", "http://example.com@127.0.0.1:{p}/", "http://127.0.0.1:{p}/: 127.0.0.1, " + LOOPBACK),
    ("userinfo-with-password", "http://user:pw@127.0.0.1:{p}/", "http://127.0.0.1:{p}/: 127.0.0.1, " + LOOPBACK),
    ("fragment-hiding-the-host", "http://127.0.0.1:{p}#@example.com/", "http://127.0.0.1:{p}/: 127.0.0.1, " + LOOPBACK),
    ("backslash-before-at", "http://127.0.0.1:{p}\\@example.com/",
     "http://127.0.0.1:{p}/%5C@example.com/: 127.0.0.1, " + LOOPBACK),
]


@pytest.mark.parametrize(("url", "refusal"), [pytest.param(u, r, id=i) for i, u, r in DISGUISES])
def test_a_disguised_loopback_address_is_refused_and_the_server_hears_nothing(
    victim: HttpTarget, url: str, refusal: str
) -> None:
    before = len(victim.requests)
    error = _refusal(url.format(p=victim.port))

    assert isinstance(error, StepFailed) and error.code == "http.blocked_address"
    assert error.message == "refusing to connect for GET " + refusal.format(p=victim.port)
    assert len(victim.requests) == before


def test_ipv6_loopback_is_refused_and_the_server_hears_nothing(victim6: HttpTarget) -> None:
    error = _refusal(f"http://[::1]:{victim6.port}/")

    assert isinstance(error, StepFailed) and error.code == "http.blocked_address"
    assert error.message == f"refusing to connect for GET http://[::1]:{victim6.port}/: ::1, {LOOPBACK}"
    assert victim6.requests == []


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        pytest.param("http://169.254.169.254/latest/meta-data/iam/security-credentials/",
                     "169.254.169.254, which is link-local (cloud instance metadata)", id="ec2-metadata"),
        pytest.param("http://[fd00:ec2::254]/latest/meta-data/", "fd00:ec2::254, which is private (unique local)",
                     id="ec2-metadata-ipv6"),
        pytest.param("http://169.254.170.2/v2/credentials", "169.254.170.2, which is link-local (cloud instance "
                     "metadata)", id="ecs-credentials"),
        pytest.param("http://[fe80::1%25lo]/", "fe80::1%25lo, which is link-local", id="ipv6-link-local-zone"),
        pytest.param("http://10.0.0.1/", "10.0.0.1, which is private", id="private-10"),
        pytest.param("http://100.100.100.200/", "100.100.100.200, which is carrier-grade NAT (shared address space)",
                     id="carrier-grade-nat"),
    ],
)
def test_metadata_and_private_addresses_are_refused(url: str, refusal: str) -> None:
    error = _refusal(url)

    assert isinstance(error, StepFailed) and error.code == "http.blocked_address"
    assert error.message.endswith(f": {refusal}")


@pytest.mark.parametrize(
    ("table", "refusal"),
    [
        pytest.param({"rebind.example.com": ["127.0.0.1"]}, "rebind.example.com resolves to 127.0.0.1, " + LOOPBACK,
                     id="name-resolving-to-loopback"),
        pytest.param({"rebind.example.com": ["93.184.215.14", "127.0.0.1"]},
                     "rebind.example.com resolves to 127.0.0.1, " + LOOPBACK, id="loopback-behind-a-public-address"),
        pytest.param({"rebind.example.com": ["::ffff:127.0.0.1"]},
                     "rebind.example.com resolves to ::ffff:7f00:1, which is IPv4-mapped loopback (127.0.0.1)",
                     id="name-resolving-to-mapped-loopback"),
    ],
)
def test_a_name_resolving_to_loopback_is_refused(victim: HttpTarget, table: dict, refusal: str) -> None:
    before = len(victim.requests)
    error = _refusal(f"http://rebind.example.com:{victim.port}/", resolver=StaticResolver(table))

    assert isinstance(error, StepFailed) and error.code == "http.blocked_address"
    assert error.message == f"refusing to connect for GET http://rebind.example.com:{victim.port}/: {refusal}"
    assert len(victim.requests) == before


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("file:///etc/passwd", id="file"),
        pytest.param("gopher://127.0.0.1:{p}/_GET%20/", id="gopher"),
        pytest.param("dict://127.0.0.1:{p}/info", id="dict"),
        pytest.param("ftp://127.0.0.1:{p}/", id="ftp"),
    ],
)
def test_other_schemes_are_refused_before_any_lookup(victim: HttpTarget, url: str) -> None:
    url = url.format(p=victim.port)
    before = len(victim.requests)
    error = _refusal(url)

    scheme = url.split(":", 1)[0]
    assert isinstance(error, StepFailed) and error.code == "http.invalid_url"
    assert error.message == f"URL scheme {scheme!r} is not allowed, only http and https: {url.split('?')[0]}"
    assert len(victim.requests) == before


@pytest.mark.parametrize(
    "host", [pytest.param("①②⑦.0.0.1", id="circled-digits"), pytest.param("１２７.０.０.１", id="fullwidth-digits")]
)
def test_unicode_digits_are_not_a_way_around_the_guard(victim: HttpTarget, host: str) -> None:
    url = f"http://{host}:{victim.port}/"
    before = len(victim.requests)
    error = _refusal(url)

    assert isinstance(error, StepFailed) and error.code == "http.invalid_url"
    assert error.message == f"invalid URL {url} (InvalidURL)"
    assert len(victim.requests) == before


# --- redirects ---------------------------------------------------------------------------------------

REDIRECTS = [
    ("plain", "http://127.0.0.1:{p}/stolen", "http://127.0.0.1:{p}/stolen: 127.0.0.1, " + LOOPBACK),
    ("decimal", "http://2130706433:{p}/stolen",
     "http://2130706433:{p}/stolen: 2130706433 resolves to 127.0.0.1, " + LOOPBACK),
    ("ipv4-mapped-ipv6", "http://[::ffff:127.0.0.1]:{p}/stolen",
     "http://[::ffff:127.0.0.1]:{p}/stolen: ::ffff:127.0.0.1 resolves to ::ffff:7f00:1, which is IPv4-mapped "
     "loopback (127.0.0.1)"),
    ("localhost-name", "http://localhost:{p}/stolen",
     "http://localhost:{p}/stolen: localhost resolves to 127.0.0.1, " + LOOPBACK),
    ("scheme-relative", "//127.0.0.1:{p}/stolen", "http://127.0.0.1:{p}/stolen: 127.0.0.1, " + LOOPBACK),
    ("userinfo", "http://public@127.0.0.1:{p}/stolen", "http://127.0.0.1:{p}/stolen: 127.0.0.1, " + LOOPBACK),
]


@pytest.mark.parametrize(("location", "refusal"), [pytest.param(u, r, id=i) for i, u, r in REDIRECTS])
@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_from_a_public_server_to_loopback_is_refused(
    public: HttpTarget, victim: HttpTarget, location: str, refusal: str, status: int
) -> None:
    location = location.format(p=victim.port)
    start = f"{public.url}/redirect?status={status}&to={quote(location, safe='')}"
    before = len(victim.requests)
    error = _refusal(start, allowed_hosts=[("127.0.0.1", public.port)])

    assert isinstance(error, StepFailed) and error.code == "http.blocked_address"
    assert error.message == "refusing to connect for GET " + refusal.format(p=victim.port)
    assert len(victim.requests) == before


def test_a_redirect_chain_is_checked_at_every_hop(public: HttpTarget, victim: HttpTarget) -> None:
    before = len(victim.requests)
    inner = f"{public.url}/redirect?to={quote(f'http://127.0.0.1:{victim.port}/deep', safe='')}"
    error = _refusal(f"{public.url}/redirect?to={quote(inner, safe='')}", allowed_hosts=[("127.0.0.1", public.port)])

    assert isinstance(error, StepFailed) and error.code == "http.blocked_address"
    assert error.message == f"refusing to connect for GET http://127.0.0.1:{victim.port}/deep: 127.0.0.1, {LOOPBACK}"
    assert len(victim.requests) == before


def test_a_redirect_to_another_scheme_is_refused(public: HttpTarget) -> None:
    error = _refusal(f"{public.url}/redirect?to=file%3A%2F%2F%2Fetc%2Fpasswd", allowed_hosts=[("127.0.0.1", public.port)])

    assert isinstance(error, StepFailed) and error.code == "http.invalid_url"
    assert error.message == "URL scheme 'file' is not allowed, only http and https: file:///etc/passwd"


# --- end to end --------------------------------------------------------------------------------------


def test_boternity_run_fails_the_step_with_the_refusal_and_the_server_hears_nothing(
    victim: HttpTarget, tmp_path: Path
) -> None:
    before = len(victim.requests)
    (tmp_path / "ssrf.yaml").write_text(
        "name: ssrf\nsteps:\n  - id: steal\n    type: http\n"
        f"    config: {{url: 'http://0x7f000001:{victim.port}/admin', timeout_secs: 5}}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "boternity.cli.main", "run", "ssrf.yaml", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=180,
    )

    record = json.loads(done.stdout)
    step = next(s for s in record["steps"] if s["step_id"] == "steal")
    assert (done.returncode, record["run"]["status"], step["status"]) == (1, "FAILED", "failed")
    assert (f"refusing to connect for GET http://0x7f000001:{victim.port}/admin: 0x7f000001 resolves to "
            f"127.0.0.1, {LOOPBACK}") in step["error"]
    assert len(victim.requests) == before
