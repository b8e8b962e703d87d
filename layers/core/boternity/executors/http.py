"""The ``http`` step: one HTTP request, made safely from inside the AWS network.

:func:`run_http` takes an already-rendered step config and returns the step's output, or raises
``StepFailed`` / ``StepRetryable`` (see ``boternity.errors``) with a ``code`` from:

===========================  =========  ===========================================================
code                         class      when
===========================  =========  ===========================================================
``http.status``              either     status outside the expected set (429 and 5xx retryable)
``http.timeout``             retryable  connect, headers and body together took over ``timeout_secs``
``http.connect``             retryable  DNS failure, refused/reset connection, broken TLS handshake,
                                        a response http.client refuses (over 100 headers ...)
``http.tls``                 failed     the server's certificate does not verify
``http.invalid_url``         failed     unparsable URL, no host, scheme other than http/https
``http.invalid_config``      failed     bad method, header, query, timeout or expect_status
``http.invalid_body``        failed     a body that cannot be encoded as JSON
``http.blocked_address``     failed     the SSRF guard refused the destination (any redirect hop)
``http.too_many_redirects``  failed     more than ``MAX_REDIRECTS`` redirects
===========================  =========  ===========================================================

How the SSRF guard is enforced (``netguard`` decides, this module makes the decision stick):

- Redirects are followed here, not by requests, so every hop's host is resolved and checked.
- The connection goes to an address that was checked: :class:`PinnedIPAdapter` hands urllib3 the IP
  instead of the host name, so there is no second DNS lookup for an attacker to rebind. The Host header,
  TLS SNI and certificate verification still use the name from the URL.
- Proxies (``HTTP_PROXY`` ...) are never used: a proxy would resolve the name itself, after the check.

How ``timeout_secs`` holds: socket timeouts bound each ``recv`` only, and a target sending a byte
before each one runs out would hold the step for ever, so a :class:`sockwatch.Watchdog` shuts every
socket of the step down at the deadline; whatever error or end-of-file that causes becomes
``http.timeout``.

Header values are never logged nor put in messages: they carry API keys.

Imports: requests, and urllib3 (requests' own transport, already loaded by it) for the errors it raises
while a response body is streamed.
"""

from __future__ import annotations

import codecs
import http.client
import json
import os
import re
import ssl
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeoutError

from boternity.errors import StepFailed, StepRetryable
from boternity.executors import netguard, sockwatch
from boternity.parsing import json_or

if TYPE_CHECKING:
    from requests.models import PreparedRequest

__all__ = ["MAX_REDIRECTS", "MAX_TIMEOUT_SECS", "USER_AGENT", "PinnedIPAdapter", "run_http"]

USER_AGENT = "boternity-workflows/0.1"
MAX_REDIRECTS = 5
MAX_TIMEOUT_SECS = 900
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_EXCERPT_CHARS = 500
_READ_CHUNK = 64 * 1024
# RFC 9110 token: what a method or a header name may be.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Header values may not contain line breaks or NUL (header injection), nor start with whitespace.
_BAD_HEADER_VALUE = re.compile(r"[\r\n\x00]|^[ \t]")
# Credentials do not follow a redirect to another origin (same rule as requests and curl).
_CREDENTIAL_HEADERS = ("Authorization", "Proxy-Authorization", "Cookie")
# A redirect that turns the request into a GET drops what described the old body.
_BODY_HEADERS = ("Content-Type", "Content-Length", "Transfer-Encoding")


class _UnpinnedDestination(RuntimeError):
    """The adapter was asked to connect to a host nobody validated. A bug; fail closed."""


class PinnedIPAdapter(HTTPAdapter):
    """A transport adapter that connects to a validated IP address instead of resolving the URL's host.

    Call :meth:`pin` with the host and the address the guard approved before each ``send``; sending to a
    host without a pin raises instead of falling back to DNS. The connection pool is keyed by the IP
    *and* the TLS server name, so pools for different names on one IP never mix.
    """

    def __init__(self, watchdog: sockwatch.Watchdog | None = None) -> None:
        self._watchdog = watchdog  # read by init_poolmanager, which the base __init__ calls
        super().__init__()
        self._pins: dict[str, str] = {}

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        if self._watchdog is None:
            super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
            return
        self._pool_connections, self._pool_maxsize, self._pool_block = connections, maxsize, block
        self.poolmanager = sockwatch.WatchedPoolManager(
            self._watchdog, num_pools=connections, maxsize=maxsize, block=block, **pool_kwargs
        )

    def pin(self, host: str, address: str) -> None:
        """Send requests for ``host`` to ``address`` (replacing any previous pin)."""
        self._pins = {host.lower(): address}

    def build_connection_pool_key_attributes(
        self, request: PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        host = host_params.get("host") or ""
        address = self._pins.get(host.lower())
        if address is None:
            raise _UnpinnedDestination(f"no validated address for host {host!r}")
        host_params["host"] = address
        if host_params.get("scheme") == "https":
            # urllib3 sends this name as SNI and the ssl module verifies the certificate against it,
            # exactly as if it had connected by name.
            pool_kwargs["server_hostname"] = host
        return host_params, pool_kwargs

    def add_headers(self, request: PreparedRequest, **kwargs: Any) -> None:
        # http.client would derive Host from the connection, i.e. the IP; the server wants the name.
        request.headers["Host"] = _host_header(request.url or "")


def run_http(
    config: Mapping[str, Any],
    *,
    allow_private_network: bool = False,
    default_timeout: float = 30.0,
    max_body_bytes: int = 10 * 1024 * 1024,
    resolver: netguard.Resolver | None = None,
    session: requests.Session | None = None,
    allowed_hosts: netguard.AllowedHosts = (),
) -> dict[str, Any]:
    """Make the request an ``http`` step describes and return the step output.

    ``config``: ``method`` (default GET), ``url``, ``headers``, ``query`` (merged into the URL's query,
    replacing parameters of the same name), ``body`` (None; str or bytes sent as is; anything else
    sent as JSON with ``Content-Type: application/json`` unless one is given), ``timeout_secs``
    (overall budget: connect, headers, redirects and body; DNS lookups are not bounded by it), ``expect_status``.

    Output: ``{"status", "headers" (lower-cased names), "body" (parsed JSON when the response is JSON,
    else text), "elapsed_ms", "url" (final, after redirects), "truncated"}``. A body longer than
    ``max_body_bytes`` is cut there, flagged ``truncated`` and kept as text.

    Redirects (at most ``MAX_REDIRECTS``) are followed unless their status is listed in
    ``expect_status``, which lets a step assert the redirect itself.

    ``allow_private_network`` turns the SSRF guard off (local development); ``resolver`` replaces DNS
    (``netguard.Resolver``); ``allowed_hosts`` exempts exact ``(ip, port)`` pairs (tests). ``session``
    supplies defaults (headers, auth, cookies, ``verify``/``cert``), but never its transport adapters
    or proxies: requests always go through a :class:`PinnedIPAdapter`.
    """
    spec = _RequestSpec.from_config(config, default_timeout)
    started = time.monotonic()
    deadline = started + spec.timeout
    own_session = session is None
    active_session = requests.Session() if session is None else session
    watchdog = sockwatch.Watchdog(deadline)
    adapter = PinnedIPAdapter(watchdog)
    try:
        verify, cert = _tls_settings(active_session)
        hop = _Hop(spec.method, spec.url, spec.headers, spec.body)
        for redirects in range(MAX_REDIRECTS + 1):
            prepared = _prepare(active_session, hop)
            _scheme, host, port = _target(prepared.url or "")
            addresses = _check_destination(
                hop,
                prepared.url or hop.url,
                host,
                port,
                allow_private_network=allow_private_network,
                resolver=resolver,
                allowed_hosts=allowed_hosts,
            )
            response = _send(
                adapter, prepared, hop, host, addresses, deadline, watchdog, spec.timeout, verify, cert
            )
            location = active_session.get_redirect_target(response)
            keep = spec.expect_status is not None and response.status_code in spec.expect_status
            if location is None or keep:
                break
            response.close()
            if redirects == MAX_REDIRECTS:
                raise StepFailed(
                    f"more than {MAX_REDIRECTS} redirects from {spec.method} {_display_url(spec.url)}",
                    code="http.too_many_redirects",
                    details={"url": _display_url(spec.url)},
                )
            hop = hop.redirected(response.status_code, urljoin(prepared.url or "", location))

        status = response.status_code
        expected = status in spec.expect_status if spec.expect_status is not None else 200 <= status < 400
        # A failure only needs the excerpt: 4 bytes per character covers any UTF-8 text.
        cap = max_body_bytes if expected else min(max_body_bytes, 4 * _EXCERPT_CHARS)
        try:
            data, truncated = _read_capped(response, cap, deadline, watchdog, hop, spec.timeout)
        finally:
            response.close()
    finally:
        adapter.close()
        watchdog.close()
        if own_session:
            active_session.close()

    content_type = response.headers.get("Content-Type", "")
    text = data.decode(_charset(content_type), errors="replace")
    if not expected:
        _raise_for_status(status, hop, text, more=truncated)
    body: Any = text
    if not truncated and _is_json_type(content_type):
        body = _parse_json(text, default=text)

    return {
        "status": status,
        "headers": {name.lower(): value for name, value in response.headers.items()},
        "body": body,
        "elapsed_ms": int((time.monotonic() - started) * 1000),
        "url": _strip_userinfo(prepared.url or hop.url),
        "truncated": truncated,
    }


# --- the request ------------------------------------------------------------------------------------


class _RequestSpec:
    """The validated step config. Every problem is a StepFailed: retrying cannot fix a config."""

    def __init__(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        timeout: float,
        expect_status: frozenset[int] | None,
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.expect_status = expect_status

    @classmethod
    def from_config(cls, config: Mapping[str, Any], default_timeout: float) -> _RequestSpec:
        method = config.get("method") or "GET"
        if not isinstance(method, str) or not _TOKEN.fullmatch(method):
            raise _invalid_config(f"method {method!r} is not an HTTP method")
        method = method.upper()

        url = config.get("url")
        if not isinstance(url, str) or not url.strip():
            raise StepFailed("the http step has no url", code="http.invalid_url")
        url = url.strip()
        _target(url)  # scheme and host are checked before anything else happens
        url = _merge_query(url, _string_map(config.get("query"), "query"))

        headers = _string_map(config.get("headers"), "headers")
        for name, value in headers.items():
            if not _TOKEN.fullmatch(name):
                raise _invalid_config(f"header name {name!r} is not valid")
            if _BAD_HEADER_VALUE.search(value):
                # Name only: the value may be a secret.
                raise _invalid_config(
                    f"the value of header {name!r} contains a line break, NUL or leading space"
                )
        # The adapter sets Host from the URL, which is what the guard checked.
        headers = {name: value for name, value in headers.items() if name.lower() != "host"}
        lower_names = {name.lower() for name in headers}
        if "user-agent" not in lower_names:
            headers["User-Agent"] = USER_AGENT

        raw_body = config.get("body")
        body: bytes | None
        if raw_body is None:
            body = None
        elif isinstance(raw_body, bytes):
            body = raw_body
        elif isinstance(raw_body, str):
            # Encoded here: http.client would encode a str as Latin-1 and fail on anything else.
            body = raw_body.encode("utf-8")
        else:
            try:
                body = json.dumps(
                    raw_body, ensure_ascii=False, allow_nan=False, separators=(",", ":")
                ).encode()
            except (TypeError, ValueError) as exc:
                raise StepFailed(
                    f"the body cannot be sent as JSON: {exc}", code="http.invalid_body"
                ) from None
            if "content-type" not in lower_names:
                headers["Content-Type"] = "application/json"

        timeout = config.get("timeout_secs")
        if timeout is None:
            timeout = default_timeout
        # At most a Lambda's longest run (the workflow model's limit too): past time_t, the watchdog's
        # timer thread died of an OverflowError and left the exchange without a deadline.
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= MAX_TIMEOUT_SECS:
            raise _invalid_config(
                f"timeout_secs must be a positive number of seconds up to {MAX_TIMEOUT_SECS}, got {timeout!r}")

        expect = config.get("expect_status")
        expect_status: frozenset[int] | None = None
        if expect is not None:
            if isinstance(expect, str | bytes) or not all(
                isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in expect
            ):
                raise _invalid_config(f"expect_status must be a list of HTTP statuses, got {expect!r}")
            expect_status = frozenset(expect)

        return cls(method, url, headers, body, float(timeout), expect_status)


class _Hop:
    """One request in a redirect chain."""

    def __init__(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, cross_origin: bool = False
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        # Sticky: once credentials were dropped they do not come back on a later hop.
        self.cross_origin = cross_origin

    def redirected(self, status: int, location: str) -> _Hop:
        """The next request, following the rules browsers and requests use."""
        method, headers, body = self.method, dict(self.headers), self.body
        if (status in (302, 303) and method != "HEAD") or (status == 301 and method == "POST"):
            method, body = "GET", None
            headers = _without(headers, _BODY_HEADERS)
        cross_origin = self.cross_origin or _crosses_origin(self.url, location)
        if cross_origin:
            headers = _without(headers, _CREDENTIAL_HEADERS)
        return _Hop(method, location, headers, body, cross_origin)


def _prepare(session: requests.Session, hop: _Hop) -> PreparedRequest:
    request = requests.Request(hop.method, hop.url, headers=hop.headers, data=hop.body)
    try:
        prepared = session.prepare_request(request)
    except requests.exceptions.InvalidHeader:
        # requests' message quotes the value; ours must not.
        raise _invalid_config("a header has an invalid name or value") from None
    except (requests.exceptions.RequestException, ValueError) as exc:
        # requests' message quotes the whole URL, query string (and any key in it) included.
        raise StepFailed(
            f"invalid URL {_display_url(hop.url)} ({type(exc).__name__})", code="http.invalid_url"
        ) from None
    if hop.cross_origin:
        # Session-level auth, headers and cookies are merged in by prepare_request: drop them here too.
        for name in _CREDENTIAL_HEADERS:
            prepared.headers.pop(name, None)
    return prepared


def _check_destination(
    hop: _Hop,
    url: str,
    host: str,
    port: int,
    *,
    allow_private_network: bool,
    resolver: netguard.Resolver | None,
    allowed_hosts: netguard.AllowedHosts,
) -> list[str]:
    try:
        return netguard.resolve_checked(
            host,
            port,
            allow_private_network=allow_private_network,
            resolver=resolver,
            allowed_hosts=allowed_hosts,
        )
    except netguard.BlockedAddress as exc:
        # The URL as requests normalised it (percent-decoded host, backslash escaped): the one the
        # guard judged, so a disguised URL is shown as what it really targets.
        raise StepFailed(
            f"refusing to connect for {hop.method} {_display_url(url)}: {exc}",
            code="http.blocked_address",
            details={"host": exc.host, "address": exc.address, "reason": exc.reason},
        ) from None
    except OSError as exc:
        raise StepRetryable(
            f"cannot resolve {host} for {hop.method} {_display_url(hop.url)}: {exc}",
            code="http.connect",
            details={"host": host},
        ) from exc


def _send(
    adapter: PinnedIPAdapter,
    prepared: PreparedRequest,
    hop: _Hop,
    host: str,
    addresses: list[str],
    deadline: float,
    watchdog: sockwatch.Watchdog,
    timeout: float,
    verify: bool | str,
    cert: Any,
) -> requests.Response:
    """Send to the first validated address that accepts a connection.

    Moving on to the next address is only done when the connection was never established (refused,
    unreachable, connect timeout), so the request cannot have been sent twice.
    """
    last: requests.exceptions.RequestException | None = None
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        adapter.pin(host, address)
        try:
            # The per-recv timeout alone would let a server trickling its headers run on forever; the
            # watchdog ends the exchange at the deadline and whatever error that causes is a timeout.
            return adapter.send(
                prepared, stream=True, timeout=(remaining, remaining), verify=verify, cert=cert, proxies={}
            )
        except requests.exceptions.RequestException as exc:
            if watchdog.fired:
                _raise_timeout(hop, timeout, exc)
            last = _send_failure(hop, host, timeout, exc)
    if last is None or isinstance(last, requests.exceptions.Timeout):
        _raise_timeout(hop, timeout, last)
    _raise_connect(hop, last)


def _send_failure(
    hop: _Hop, host: str, timeout: float, exc: requests.exceptions.RequestException
) -> requests.exceptions.RequestException:
    """Raise the step error for a failed send, or return ``exc`` when the next address may be tried."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return exc
    if isinstance(exc, requests.exceptions.ReadTimeout):
        _raise_timeout(hop, timeout, exc)
    if isinstance(exc, requests.exceptions.SSLError):
        if any(isinstance(e, ssl.SSLCertVerificationError) for e in _causes(exc)):
            raise StepFailed(
                f"TLS certificate of {host} does not verify for {hop.method} {_display_url(hop.url)}",
                code="http.tls",
                details={"host": host},
            ) from exc
        _raise_connect(hop, exc)
    if isinstance(exc, requests.exceptions.ConnectionError) and any(
        isinstance(e, NewConnectionError) for e in _causes(exc)
    ):
        return exc  # never connected: the request cannot have been sent
    _raise_connect(hop, exc)


def _read_capped(
    response: requests.Response,
    cap: int,
    deadline: float,
    watchdog: sockwatch.Watchdog,
    hop: _Hop,
    timeout: float,
) -> tuple[bytes, bool]:
    """Read at most ``cap + 1`` decoded bytes: one more than the cap proves there was more."""
    chunks: list[bytes] = []
    total = 0
    try:
        while total <= cap:
            if time.monotonic() > deadline:
                _raise_timeout(hop, timeout, None)
            # urllib3 2.x returns at most ``amt`` *decompressed* bytes, so a gzip bomb stays capped too.
            chunk = response.raw.read(min(_READ_CHUNK, cap + 1 - total), decode_content=True)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except (Urllib3HTTPError, OSError) as exc:
        if watchdog.fired or isinstance(exc, Urllib3ReadTimeoutError):
            _raise_timeout(hop, timeout, exc)
        raise StepRetryable(
            f"connection failed while reading the response to {hop.method} {_display_url(hop.url)}: "
            f"{type(exc).__name__}",
            code="http.connect",
        ) from exc
    if watchdog.fired:
        # A body without a length ends at end-of-file, and the watchdog's shutdown looks exactly like
        # one: without this check a cut-off body would pass for the whole response.
        _raise_timeout(hop, timeout, None)
    data = b"".join(chunks)
    return data[:cap], total > cap


# --- errors -----------------------------------------------------------------------------------------


def _invalid_config(message: str) -> StepFailed:
    return StepFailed(message, code="http.invalid_config")


def _raise_for_status(status: int, hop: _Hop, text: str, *, more: bool) -> NoReturn:
    excerpt = text[:_EXCERPT_CHARS]
    message = f"HTTP {status} from {hop.method} {_display_url(hop.url)}"
    if excerpt.strip():
        message += f": {excerpt}" + ("…" if more or len(text) > _EXCERPT_CHARS else "")
    details = {"status": status, "url": _display_url(hop.url), "body_excerpt": excerpt}
    if status == 429 or status >= 500:
        raise StepRetryable(message, code="http.status", details=details)
    raise StepFailed(message, code="http.status", details=details)


def _raise_timeout(hop: _Hop, timeout: float, cause: BaseException | None) -> NoReturn:
    raise StepRetryable(
        f"{hop.method} {_display_url(hop.url)} timed out after {timeout:g}s",
        code="http.timeout",
        details={"timeout_secs": timeout},
    ) from cause


def _raise_connect(hop: _Hop, cause: BaseException) -> NoReturn:
    raise StepRetryable(
        f"connection failed for {hop.method} {_display_url(hop.url)}: {_root_cause(cause)}",
        code="http.connect",
    ) from cause


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps: requests nests urllib3 errors in args and ``reason``."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        stack.extend(e for e in nested if isinstance(e, BaseException))


def _root_cause(exc: BaseException) -> str:
    """A short, stable description: the innermost OS-level error when there is one."""
    for cause in _causes(exc):
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
    for cause in _causes(exc):
        # http.client's own refusals (over 100 header lines, a line over 64 KB, a garbled status line)
        # say what the server did wrong; the wrapping exceptions' names would not.
        if isinstance(cause, http.client.HTTPException) and str(cause):
            return f"invalid response ({_first_line(str(cause), 200)})"
    return type(exc).__name__


def _first_line(text: str, limit: int) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[:limit] + "…"


# --- URLs and headers -------------------------------------------------------------------------------


def _target(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an http(s) URL, or StepFailed ``http.invalid_url``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise StepFailed(f"invalid URL {_display_url(url)}: {exc}", code="http.invalid_url") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise StepFailed(
            f"URL scheme {scheme or '(none)'!r} is not allowed, only http and https: {_display_url(url)}",
            code="http.invalid_url",
        )
    if not parts.hostname:
        raise StepFailed(f"URL has no host: {_display_url(url)}", code="http.invalid_url")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def _host_header(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = 443 if parts.scheme == "https" else 80
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def _merge_query(url: str, query: dict[str, str]) -> str:
    if not query:
        return url
    parts = urlsplit(url)
    existing = parse_qsl(parts.query, keep_blank_values=True)
    if any(name in query for name, _ in existing):
        merged = urlencode([(n, v) for n, v in existing if n not in query] + list(query.items()))
    else:
        # Leave the original query untouched when nothing is replaced: re-encoding can alter it.
        merged = "&".join(filter(None, [parts.query, urlencode(list(query.items()))]))
    return urlunsplit(parts._replace(query=merged))


def _string_map(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _invalid_config(f"{field} must be a mapping of names to strings")
    result: dict[str, str] = {}
    for name, item in value.items():
        if not isinstance(name, str):
            raise _invalid_config(f"{field} names must be strings, got {name!r}")
        if isinstance(item, bool):
            item = "true" if item else "false"
        elif isinstance(item, int | float):
            item = str(item)
        elif not isinstance(item, str):
            raise _invalid_config(f"{field} {name!r} must be a string")
        result[name] = item
    return result


def _without(headers: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
    drop = {name.lower() for name in names}
    return {k: v for k, v in headers.items() if k.lower() not in drop}


def _crosses_origin(old_url: str, new_url: str) -> bool:
    old, new = urlsplit(old_url), urlsplit(new_url)
    if old.hostname != new.hostname:
        return True
    if (old.scheme, old.port, new.scheme, new.port) in (
        ("http", None, "https", None),
        ("http", 80, "https", 443),
    ):
        return False  # the upgrade to https on the same host keeps credentials, as in requests
    return (old.scheme, old.port) != (new.scheme, new.port)


def _strip_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _display_url(url: str) -> str:
    """The URL for messages: no query string, fragment or credentials (they may carry secrets)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("?", 1)[0].split("#", 1)[0]
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _tls_settings(session: requests.Session) -> tuple[bool | str, Any]:
    """``verify`` and ``cert`` as ``session.request`` would use them (honouring REQUESTS_CA_BUNDLE).

    Done by hand because ``merge_environment_settings`` also gathers proxies, which are not used.
    """
    verify: bool | str = session.verify if session.verify is not None else True
    if session.trust_env and verify is True:
        verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return verify, session.cert


# --- the response body ------------------------------------------------------------------------------


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _is_json_type(content_type: str) -> bool:
    media = _media_type(content_type)
    return media.endswith("/json") or media.endswith("+json")


def _charset(content_type: str) -> str:
    """The declared charset if Python knows it, else UTF-8 (today's default, and JSON's)."""
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            try:
                return codecs.lookup(value.strip().strip("\"'")).name
            except LookupError:
                break
    return "utf-8"


def _parse_json(text: str, *, default: Any) -> Any:
    # Bounded (boternity.parsing): NaN/Infinity, 5,000-digit numbers and 3,000-level nesting from a
    # target server leave the body as text instead of failing the step with a RecursionError.
    return json_or(text, default, what="the response")
