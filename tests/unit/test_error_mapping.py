"""One error tree (boternity.errors), one table to HTTP (handlers/rest.py), read backwards by the CLI."""

from __future__ import annotations

import inspect

import pytest

import boternity.errors as errors
from boternity.cli.client import ApiError, api_error
from boternity.errors import (
    BadRequest,
    BoternityError,
    Conflict,
    MethodNotAllowed,
    NotFound,
    Refused,
    SignatureError,
    StartInProgress,
    TooManyRequests,
    ValidationFailed,
    WorkflowError,
)
from boternity.handlers.rest import STATUS, WEBHOOK_UNAUTHORIZED, error_body, error_class, to_http
from boternity.parsing import ParseError

TREE = [cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, BoternityError)]
REFUSALS = [cls for cls in TREE if issubclass(cls, Refused) and cls is not Refused]


def test_the_tree_knows_no_http():
    assert not [cls.__name__ for cls in TREE if {"status", "status_code", "headers"} & set(vars(cls))]


@pytest.mark.parametrize("cls", REFUSALS, ids=lambda c: c.__name__)
def test_every_refusal_has_its_own_status(cls):
    """No refusal falls through to the generic 400 of an unknown error."""
    assert any(base in STATUS for base in cls.__mro__ if base is not Refused and issubclass(base, Refused))


def test_to_http_answers_in_the_one_shape():
    assert to_http(NotFound("run 'r' not found")) == (
        404, {"error": {"code": "not_found", "message": "run 'r' not found", "details": None}}, {})
    assert to_http(Conflict("decided", code="already_decided"))[:2] == (
        409, error_body("already_decided", "decided"))
    assert to_http(TooManyRequests("full", code="concurrency_limit", details={"limit": 2})) == (
        429, error_body("concurrency_limit", "full", {"limit": 2}), {})
    assert to_http(StartInProgress("starting", retry_after=3, code="idempotency_key_in_progress"))[::2] == (
        409, {"Retry-After": "3"})
    assert to_http(MethodNotAllowed("webhooks take POST", allowed=("POST",)))[::2] == (405, {"Allow": "POST"})
    assert to_http(SignatureError("bad hmac: expected abc"))[1] == error_body("unauthorized", WEBHOOK_UNAUTHORIZED)
    assert to_http(ParseError("too big", code="too_large"))[0] == 413
    assert to_http(ParseError("bad", code="invalid_json", line=1, column=2))[:2] == (
        400, error_body("invalid_json", "bad (at line 1, column 2)", {
            "code": "invalid_json", "message": "bad", "line": 1, "column": 2, "path": None, "limit": None}))
    failed = ValidationFailed([WorkflowError("no steps", code="empty", line=2)])
    assert to_http(failed)[1]["error"]["code"] == "validation_failed"
    assert to_http(failed)[1]["error"]["details"][0]["line"] == 2
    assert to_http(KeyError("a bug")) == (500, error_body("internal", "internal error"), {})


@pytest.mark.parametrize(("cls", "status"), [(c, s) for c, s in STATUS.items() if issubclass(c, Refused)],
                         ids=lambda v: getattr(v, "__name__", str(v)))
def test_the_cli_maps_each_status_back_to_its_class(cls, status):
    exc = api_error(status, error_body(cls.code, "the message", {"k": 1}))
    assert isinstance(exc, cls) and isinstance(exc, ApiError)
    assert (exc.status, exc.code, exc.message, exc.details) == (status, cls.code, "the message", {"k": 1})
    assert str(exc) == f"{status} {cls.code}: the message"


def test_the_cli_keeps_retry_after_and_allow():
    started = api_error(409, error_body("delivery_in_progress", "being started"), {"Retry-After": "5"})
    assert isinstance(started, StartInProgress) and started.retry_after == 5
    assert isinstance(api_error(409, error_body("already_decided", "late")), Conflict)
    assert not isinstance(api_error(409, error_body("already_decided", "late")), StartInProgress)
    assert api_error(405, error_body("method_not_allowed", "POST"), {"allow": "POST"}).allowed == ("POST",)


def test_answers_outside_the_table():
    assert error_class(400) is BadRequest and error_class(401) is SignatureError
    gateway = api_error(502, {"message": "Internal server error"})
    assert type(gateway) is ApiError and str(gateway) == "502: {'message': 'Internal server error'}"
    assert gateway.message == "{'message': 'Internal server error'}"
