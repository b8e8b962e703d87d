"""handlers/rest.py parse_body: the one body parser of the API, cheapest check first."""

from __future__ import annotations

import base64

import pytest

from boternity.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from boternity.handlers.rest import FORM, JSON, parse_body, read_request
from boternity.parsing import ParseError


def request(body: bytes | str | None, content_type: str | None = None, *, b64: bool = False):
    headers = {"content-type": content_type} if content_type else {}
    if b64 and body is not None:
        body = base64.b64encode(body if isinstance(body, bytes) else body.encode()).decode()
    return read_request({"body": body, "headers": headers, "isBase64Encoded": b64})


def parse(req, **kw):
    return parse_body(req, what="the body", unsupported="send JSON", **{"accept": (JSON,), **kw})


def test_json_in_any_json_type_or_none_at_all():
    for ctype in (None, "application/json", "Application/JSON; charset=utf-8", "application/merge-patch+json"):
        assert parse(request('{"a": 1}', ctype)) == {"a": 1}


def test_a_blank_body_is_the_empty_value_whatever_its_type():
    assert parse(request("  \n", "text/plain"), empty={}) == {}
    assert parse(request(None)) is None


def test_size_is_checked_before_the_media_type_and_the_media_type_before_the_bytes():
    with pytest.raises(PayloadTooLarge) as big:
        parse(request(b"\xff" * 11, "text/plain", b64=True), max_bytes=10)
    assert big.value.details == {"limit_bytes": 10}
    with pytest.raises(UnsupportedMediaType, match="send JSON"):
        parse(request(b"\xff\xfe", "text/plain", b64=True))
    with pytest.raises(ParseError) as not_utf8:
        parse(request(b'{"a": "\xff"}', "application/json", b64=True))
    assert not_utf8.value.code == "invalid_encoding"


def test_a_form_only_where_accepted():
    assert parse(request("approved=true&comment=", FORM), accept=(JSON, FORM)) == {"approved": "true", "comment": ""}
    with pytest.raises(UnsupportedMediaType):
        parse(request("approved=true", FORM))
    with pytest.raises(UnsupportedMediaType):
        parse(request('{"approved": true}', JSON), accept=(FORM,))


def test_json_within_the_parsing_limits():
    with pytest.raises(ParseError) as deep:
        parse(request("[" * 100 + "]" * 100, JSON))
    assert deep.value.code == "too_deep"


def test_bad_base64_is_a_bad_request_only_when_the_body_is_read():
    req = request(None)
    req.event.update(body="not base64!", isBase64Encoded=True)
    assert req.caller == "anonymous"   # reading the caller does not touch the body
    with pytest.raises(BadRequest) as bad:
        parse(req)
    assert bad.value.code == "invalid_body"
