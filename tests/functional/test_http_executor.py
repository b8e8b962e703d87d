"""The http step against a real server on loopback, and the SSRF guard on the real request path.

Every test runs under ``network``: each TCP connect and each getaddrinfo call is recorded, and anything
that would leave the machine (a non-loopback connect, a DNS lookup of a name) fails the test *before*
it happens. The guard tests use that record to prove that no connection was even attempted.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from boternity.errors import StepFailed, StepRetryable
from boternity.executors.http import USER_AGENT, PinnedIPAdapter, run_http
from tests.support.http_target import HttpTarget, StaticResolver, unused_port

# --- fixtures ---------------------------------------------------------------------------------------


@dataclass
class NetworkRecord:
    connections: list[tuple[str, int]] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@pytest.fixture(autouse=True)
def network(monkeypatch: pytest.MonkeyPatch) -> NetworkRecord:
    """Record every connect and lookup; refuse, before any packet, anything but loopback."""
    record = NetworkRecord()
    real_connect, real_connect_ex, real_getaddrinfo = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.getaddrinfo,
    )

    def check(address: Any) -> None:
        host, port = address[0], address[1]
        record.connections.append((host, port))
        if not ipaddress.ip_address(host.split("%")[0]).is_loopback:
            raise AssertionError(f"test tried to connect to {host}:{port}")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        record.lookups.append(host)
        if not (isinstance(host, str) and _is_ip(host)):
            raise AssertionError(f"test tried a DNS lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return record


@pytest.fixture
def target() -> Iterator[HttpTarget]:
    with HttpTarget() as server:
        yield server


def call(target: HttpTarget, path: str, **config: Any) -> dict[str, Any]:
    """run_http against the local target, with the guard off (the target lives on 127.0.0.1)."""
    return run_http({"url": target.url + path, **config}, allow_private_network=True)


# --- requests go out as configured ------------------------------------------------------------------


def test_get_merges_the_query_into_the_urls_query(target: HttpTarget) -> None:
    out = call(target, "/echo?a=1&b=2", query={"b": "3", "c": "x y"})
    assert out["status"] == 200
    assert out["body"]["method"] == "GET"
    assert out["body"]["query"] == {"a": "1", "b": "3", "c": "x y"}


def test_query_parameters_are_appended_when_nothing_is_replaced(target: HttpTarget) -> None:
    out = call(target, "/echo?a=1", query={"c": "d"})
    assert out["url"] == target.url + "/echo?a=1&c=d"


def test_an_object_body_is_sent_as_json(target: HttpTarget) -> None:
    out = call(target, "/echo", method="POST", body={"name": "Zoë", "n": [1, 2]})
    assert out["body"]["method"] == "POST"
    assert out["body"]["headers"]["content-type"] == "application/json"
    assert out["body"]["json"] == {"name": "Zoë", "n": [1, 2]}


def test_a_list_body_is_sent_as_json_too(target: HttpTarget) -> None:
    out = call(target, "/echo", method="PUT", body=[1, "two"])
    assert out["body"]["json"] == [1, "two"]


def test_a_json_body_keeps_the_users_content_type(target: HttpTarget) -> None:
    out = call(
        target, "/echo", method="POST", body={"a": 1}, headers={"content-type": "application/vnd.api+json"}
    )
    assert out["body"]["headers"]["content-type"] == "application/vnd.api+json"
    assert out["body"]["json"] == {"a": 1}


def test_a_string_body_is_sent_as_is_in_utf8(target: HttpTarget) -> None:
    out = call(
        target, "/echo", method="POST", body="plain {not json} ✓", headers={"Content-Type": "text/plain"}
    )
    assert target.requests[-1].body == "plain {not json} ✓".encode()
    assert out["body"]["headers"]["content-type"] == "text/plain"


def test_configured_headers_arrive_and_the_default_user_agent_is_ours(target: HttpTarget) -> None:
    out = call(target, "/echo", headers={"X-Trace": "abc", "Authorization": "Bearer t0k3n"})
    headers = out["body"]["headers"]
    assert headers["x-trace"] == "abc"
    assert headers["authorization"] == "Bearer t0k3n"
    assert headers["user-agent"] == USER_AGENT == "boternity-workflows/0.1"


def test_a_user_agent_in_the_config_wins(target: HttpTarget) -> None:
    out = call(target, "/echo", headers={"user-agent": "my-bot/2"})
    assert out["body"]["headers"]["user-agent"] == "my-bot/2"


def test_head_returns_headers_and_an_empty_body(target: HttpTarget) -> None:
    out = call(target, "/text", method="HEAD")
    assert (out["status"], out["body"]) == (200, "")
    assert out["headers"]["content-type"].startswith("text/plain")


# --- the output -------------------------------------------------------------------------------------


def test_a_json_response_is_decoded_and_the_output_has_its_documented_shape(target: HttpTarget) -> None:
    out = call(target, "/status/201")
    assert set(out) == {"status", "headers", "body", "elapsed_ms", "url", "truncated"}
    assert out["status"] == 201
    assert out["body"] == {"status": 201, "reason": "Created"}
    assert out["headers"]["content-type"] == "application/json"
    assert all(name == name.lower() for name in out["headers"])
    assert isinstance(out["elapsed_ms"], int) and out["elapsed_ms"] >= 0
    assert out["url"] == target.url + "/status/201"
    assert out["truncated"] is False


def test_a_plus_json_media_type_is_json(target: HttpTarget) -> None:
    out = call(target, "/text", query={"type": "application/problem+json", "body": '{"title": "nope"}'})
    assert out["body"] == {"title": "nope"}


def test_a_text_response_is_kept_as_text(target: HttpTarget) -> None:
    assert call(target, "/text")["body"] == "hello, world"


def test_a_json_content_type_with_a_body_that_does_not_parse_stays_text(target: HttpTarget) -> None:
    out = call(target, "/text", query={"type": "application/json", "body": "{oops"})
    assert out["body"] == "{oops"


def test_text_is_decoded_with_the_declared_charset(target: HttpTarget) -> None:
    # The server sends UTF-8 bytes; a declared Latin-1 charset is believed.
    out = call(target, "/text", query={"type": "text/plain; charset=iso-8859-1", "body": "é"})
    assert out["body"] == "Ã©"


def test_a_body_over_the_cap_is_cut_at_the_cap_and_flagged(target: HttpTarget) -> None:
    out = run_http({"url": target.url + "/bytes/5000"}, allow_private_network=True, max_body_bytes=1000)
    assert out["body"] == "x" * 1000
    assert out["truncated"] is True


def test_a_body_exactly_at_the_cap_is_whole(target: HttpTarget) -> None:
    out = run_http({"url": target.url + "/bytes/1000"}, allow_private_network=True, max_body_bytes=1000)
    assert (len(out["body"]), out["truncated"]) == (1000, False)


def test_the_cap_applies_to_the_decompressed_body(target: HttpTarget) -> None:
    # 10 MB of "x" is about 10 KB gzipped: the cap must count what it expands to.
    out = run_http({"url": target.url + "/gzip/10000000"}, allow_private_network=True, max_body_bytes=1000)
    assert (out["body"], out["truncated"]) == ("x" * 1000, True)
    assert call(target, "/gzip/3000")["body"] == "x" * 3000


def test_a_truncated_json_body_stays_text(target: HttpTarget) -> None:
    out = run_http({"url": target.url + "/bytes/5000?json=1"}, allow_private_network=True, max_body_bytes=100)
    assert out["body"] == '"' + "x" * 99
    assert out["truncated"] is True


# --- statuses ---------------------------------------------------------------------------------------


def test_404_fails_permanently_with_status_and_body_excerpt(target: HttpTarget) -> None:
    with pytest.raises(StepFailed) as failed:
        call(target, "/status/404?token=hunter2", query={"body": "no such invoice"})
    error = failed.value
    assert error.code == "http.status"
    assert error.details["status"] == 404
    assert error.message == f"HTTP 404 from GET {target.url}/status/404: no such invoice"
    assert "hunter2" not in str(error)  # the query string may carry keys


def test_the_body_excerpt_is_the_first_500_characters(target: HttpTarget) -> None:
    with pytest.raises(StepFailed) as failed:
        call(target, "/status/400", query={"body": "e" * 2000})
    assert "e" * 500 + "…" in failed.value.message
    assert "e" * 501 not in failed.value.message


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_5xx_and_429_are_retryable(target: HttpTarget, status: int) -> None:
    with pytest.raises(StepRetryable) as retryable:
        call(target, f"/status/{status}")
    assert retryable.value.code == "http.status"
    assert retryable.value.details["status"] == status


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_4xx_are_permanent(target: HttpTarget, status: int) -> None:
    with pytest.raises(StepFailed):
        call(target, f"/status/{status}")


def test_expect_status_makes_exactly_those_statuses_succeed(target: HttpTarget) -> None:
    assert call(target, "/status/404", expect_status=[404])["status"] == 404
    with pytest.raises(StepFailed, match="HTTP 201"):
        call(target, "/status/201", expect_status=[200])


def test_header_values_never_appear_in_errors(target: HttpTarget) -> None:
    with pytest.raises(StepFailed) as failed:
        call(target, "/status/403", headers={"Authorization": "Bearer s3cr3t-t0k3n"})
    assert "s3cr3t" not in str(failed.value) and "s3cr3t" not in repr(failed.value.details)

    with pytest.raises(StepFailed) as invalid:
        call(target, "/echo", headers={"X-Api-Key": "s3cr3t\r\nX-Injected: 1"})
    assert invalid.value.code == "http.invalid_config"
    assert "X-Api-Key" in str(invalid.value) and "s3cr3t" not in str(invalid.value)
    assert len(target.requests) == 1  # only the first call went out


# --- redirects --------------------------------------------------------------------------------------


def test_a_redirect_is_followed_to_its_final_status_and_url(target: HttpTarget) -> None:
    out = call(target, "/redirect", query={"to": "/status/201"})
    assert out["status"] == 201
    assert out["url"] == target.url + "/status/201"
    assert [r.path for r in target.requests] == ["/redirect", "/status/201"]


def test_303_turns_a_post_into_a_get_without_the_body(target: HttpTarget) -> None:
    out = call(target, "/redirect?status=303&to=/echo", method="POST", body={"a": 1})
    assert out["body"]["method"] == "GET"
    assert out["body"]["body"] == ""
    assert "content-type" not in out["body"]["headers"]


def test_307_repeats_the_post_with_its_body(target: HttpTarget) -> None:
    out = call(target, "/redirect?status=307&to=/echo", method="POST", body={"a": 1})
    assert out["body"]["method"] == "POST"
    assert out["body"]["json"] == {"a": 1}


def test_a_redirect_status_listed_in_expect_status_is_returned_not_followed(target: HttpTarget) -> None:
    out = call(target, "/redirect?to=/echo", expect_status=[302])
    assert out["status"] == 302
    assert out["headers"]["location"] == "/echo"
    assert len(target.requests) == 1


def test_more_than_five_redirects_fail(target: HttpTarget) -> None:
    with pytest.raises(StepFailed) as failed:
        call(target, "/loop")
    assert failed.value.code == "http.too_many_redirects"
    assert len(target.requests) == 6  # the request and five redirects


def test_credentials_do_not_follow_a_redirect_to_another_origin(target: HttpTarget) -> None:
    with HttpTarget() as other:
        resolver = StaticResolver({"other.test": ["127.0.0.1"]})
        out = run_http(
            {
                "url": target.url + "/redirect",
                "query": {"to": f"http://other.test:{other.port}/echo"},
                "headers": {"Authorization": "Bearer t0k3n", "Cookie": "sid=1", "X-Trace": "abc"},
            },
            allow_private_network=True,
            resolver=resolver,
        )
    headers = out["body"]["headers"]
    assert "authorization" not in headers and "cookie" not in headers
    assert headers["x-trace"] == "abc"
    assert headers["host"] == f"other.test:{other.port}"


def test_credentials_follow_a_redirect_on_the_same_origin(target: HttpTarget) -> None:
    out = call(target, "/redirect?to=/echo", headers={"Authorization": "Bearer t0k3n"})
    assert out["body"]["headers"]["authorization"] == "Bearer t0k3n"


# --- transport failures -----------------------------------------------------------------------------


def test_a_slow_server_times_out_as_retryable(target: HttpTarget) -> None:
    with pytest.raises(StepRetryable) as retryable:
        call(target, "/slow?secs=5", timeout_secs=0.3)
    assert retryable.value.code == "http.timeout"
    assert "timed out after 0.3s" in retryable.value.message


def test_default_timeout_applies_when_the_step_sets_none(target: HttpTarget) -> None:
    with pytest.raises(StepRetryable, match="http.timeout"):
        run_http({"url": target.url + "/slow?secs=5"}, allow_private_network=True, default_timeout=0.3)


def test_a_refused_connection_is_retryable() -> None:
    with pytest.raises(StepRetryable) as retryable:
        run_http({"url": f"http://127.0.0.1:{unused_port()}/"}, allow_private_network=True)
    assert retryable.value.code == "http.connect"


def test_a_name_that_does_not_resolve_is_a_connect_error() -> None:
    with pytest.raises(StepRetryable) as retryable:
        run_http({"url": "http://nowhere.test/"}, resolver=StaticResolver({}))
    assert retryable.value.code == "http.connect"


def test_the_next_address_is_tried_when_the_first_refuses(target: HttpTarget, network: NetworkRecord) -> None:
    # Nothing listens on [::1]:port (the target is IPv4 only), so the connection there is refused.
    resolver = StaticResolver({"dual.test": ["::1", "127.0.0.1"]})
    out = run_http(
        {"url": f"http://dual.test:{target.port}/echo"}, allow_private_network=True, resolver=resolver
    )
    assert out["status"] == 200
    assert network.connections == [("::1", target.port), ("127.0.0.1", target.port)]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/",
        "http:///no-host",
        "example.com/x",
        "http://[::1/",
    ],
)
def test_urls_that_are_not_http_or_https_are_refused(url: str, network: NetworkRecord) -> None:
    with pytest.raises(StepFailed) as failed:
        run_http({"url": url}, allow_private_network=True)
    assert failed.value.code == "http.invalid_url"
    assert network.connections == [] and network.lookups == []


# --- pinning: the connection goes to the validated address, under the original name ------------------


def test_a_name_is_resolved_once_and_the_connection_pinned_to_that_address(
    target: HttpTarget, network: NetworkRecord
) -> None:
    resolver = StaticResolver({"api.example.test": ["127.0.0.1"]})
    out = run_http(
        {"url": f"http://api.example.test:{target.port}/echo"},
        resolver=resolver,
        allowed_hosts={("127.0.0.1", target.port)},
    )
    assert out["body"]["headers"]["host"] == f"api.example.test:{target.port}"
    assert out["url"] == f"http://api.example.test:{target.port}/echo"
    assert resolver.calls == [("api.example.test", target.port)]
    # urllib3 was handed the IP: no lookup of the name, which a rebinding DNS could answer differently.
    assert "api.example.test" not in network.lookups
    assert network.connections == [("127.0.0.1", target.port)]


def test_the_adapter_never_falls_back_to_dns_for_a_host_it_was_not_given(network: NetworkRecord) -> None:
    adapter = PinnedIPAdapter()
    adapter.pin("api.example.test", "127.0.0.1")
    prepared = requests.Request("GET", "http://other.example.test/").prepare()
    with pytest.raises(RuntimeError, match="no validated address"):
        adapter.send(prepared)
    assert network.lookups == [] and network.connections == []


def test_a_session_supplies_defaults_but_not_its_transport(target: HttpTarget) -> None:
    class Exploding(requests.adapters.BaseAdapter):
        def send(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the session's own adapter must not be used")

    session = requests.Session()
    session.headers["X-From-Session"] = "yes"
    session.mount("http://", Exploding())
    session.proxies = {"http": "http://127.0.0.1:9"}
    out = run_http({"url": target.url + "/echo"}, allow_private_network=True, session=session)
    assert out["body"]["headers"]["x-from-session"] == "yes"


def test_a_host_header_in_the_config_cannot_redirect_the_request(target: HttpTarget) -> None:
    out = call(target, "/echo", headers={"Host": "metadata.google.internal"})
    assert out["body"]["headers"]["host"] == f"127.0.0.1:{target.port}"


def test_ipv6_literals_work(network: NetworkRecord) -> None:
    try:
        server = HttpTarget("::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        out = run_http({"url": server.url + "/echo"}, allow_private_network=True)
    finally:
        server.stop()
    assert out["body"]["headers"]["host"] == f"[::1]:{server.port}"


@dataclass
class TlsServer:
    target: HttpTarget
    ca_file: str
    sni: list[str | None]


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TlsServer]:
    """An HTTPS target on 127.0.0.1 whose self-signed certificate names only ``secure.test``."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "secure.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("secure.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    sni: list[str | None] = []
    context.sni_callback = lambda sock, server_name, ctx: sni.append(server_name)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with HttpTarget(ssl_context=context) as server:
        yield TlsServer(server, str(cert_file), sni)


def test_https_to_a_pinned_address_keeps_sni_and_verifies_the_certificate_for_the_name(
    tls_server: TlsServer, network: NetworkRecord
) -> None:
    port = tls_server.target.port
    session = requests.Session()
    session.verify = tls_server.ca_file
    out = run_http(
        {"url": f"https://secure.test:{port}/echo"},
        allow_private_network=True,
        resolver=StaticResolver({"secure.test": ["127.0.0.1"]}),
        session=session,
    )
    assert out["status"] == 200
    assert out["body"]["headers"]["host"] == f"secure.test:{port}"
    assert tls_server.sni == ["secure.test"]
    assert network.connections == [("127.0.0.1", port)]
    assert "secure.test" not in network.lookups


def test_https_refuses_a_certificate_for_another_name(tls_server: TlsServer) -> None:
    session = requests.Session()
    session.verify = tls_server.ca_file
    with pytest.raises(StepFailed) as failed:
        run_http(
            {"url": f"https://impostor.test:{tls_server.target.port}/echo"},
            allow_private_network=True,
            resolver=StaticResolver({"impostor.test": ["127.0.0.1"]}),
            session=session,
        )
    assert failed.value.code == "http.tls"
    assert tls_server.sni == ["impostor.test"]


# --- the SSRF guard ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0177.0.0.1/",
        "https://[fe80::1]/",
        "https://[fd00::1]/",
        "http://255.255.255.255/",
        "http://[64:ff9b::a9fe:a9fe]/",
    ],
)
def test_blocked_destinations_are_refused_before_any_connection(url: str, network: NetworkRecord) -> None:
    with pytest.raises(StepFailed) as failed:
        run_http({"url": url}, resolver=StaticResolver({}))
    assert failed.value.code == "http.blocked_address"
    assert network.connections == []
    assert network.lookups == []


def test_a_decimal_ip_is_refused_as_the_loopback_it_is() -> None:
    with pytest.raises(StepFailed) as failed:
        run_http({"url": "http://2130706433:8080/admin"})
    assert failed.value.details == {"host": "2130706433", "address": "127.0.0.1", "reason": "loopback"}
    assert failed.value.message.startswith("refusing to connect for GET http://2130706433:8080/admin")


def test_a_public_name_resolving_to_a_private_address_is_refused(network: NetworkRecord) -> None:
    resolver = StaticResolver({"internal.example.com": ["10.0.0.1"]})
    with pytest.raises(StepFailed) as failed:
        run_http({"url": "https://internal.example.com/api"}, resolver=resolver)
    assert failed.value.code == "http.blocked_address"
    assert failed.value.details["address"] == "10.0.0.1"
    assert resolver.calls == [("internal.example.com", 443)]
    assert network.connections == []


def test_a_name_with_one_private_address_among_public_ones_is_refused(network: NetworkRecord) -> None:
    resolver = StaticResolver({"mixed.example.com": ["93.184.215.14", "169.254.169.254"]})
    with pytest.raises(StepFailed, match="http.blocked_address"):
        run_http({"url": "http://mixed.example.com/"}, resolver=resolver)
    assert network.connections == []


@pytest.mark.parametrize(
    ("location", "address"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://10.0.0.1/admin", "10.0.0.1"),
        ("http://metadata.test/computeMetadata/v1/", "169.254.169.254"),
        ("http://127.0.0.1/", "127.0.0.1"),  # loopback too, on a port the allowlist does not name
        ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1"),
    ],
)
def test_a_redirect_from_an_allowed_host_to_a_blocked_address_is_refused(
    target: HttpTarget, network: NetworkRecord, location: str, address: str
) -> None:
    # "public.example" plays a public site: it resolves to the local target, which allowed_hosts lets
    # through for this one (ip, port); the guard stays on for everything else.
    resolver = StaticResolver({"public.example": ["127.0.0.1"], "metadata.test": ["169.254.169.254"]})
    with pytest.raises(StepFailed) as failed:
        run_http(
            {"url": f"http://public.example:{target.port}/redirect", "query": {"to": location}},
            resolver=resolver,
            allowed_hosts={("127.0.0.1", target.port)},
        )
    assert failed.value.code == "http.blocked_address"
    assert failed.value.details["address"] == address
    assert [r.path for r in target.requests] == ["/redirect"]
    assert network.connections == [("127.0.0.1", target.port)]  # the first hop only


def test_allow_private_network_lets_the_redirect_through(target: HttpTarget) -> None:
    out = call(target, "/redirect", query={"to": f"http://127.0.0.1:{target.port}/echo"})
    assert out["status"] == 200


def test_the_error_for_a_blocked_destination_explains_itself() -> None:
    with pytest.raises(StepFailed) as failed:
        run_http({"url": "http://169.254.169.254/latest/meta-data/?secret=1"})
    assert str(failed.value) == (
        "[http.blocked_address] refusing to connect for GET http://169.254.169.254/latest/meta-data/: "
        "169.254.169.254, which is link-local (cloud instance metadata)"
    )


def test_the_output_is_json_serialisable(target: HttpTarget) -> None:
    json.dumps(call(target, "/echo"))
