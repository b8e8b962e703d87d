"""Schemathesis against a real `boternity serve` on 127.0.0.1, from the OpenAPI document the API
serves: generated valid and invalid requests to every operation (bounded examples) never get a
5xx, and every answer is documented: its status, content type, headers and body schema. Methods
an operation's path lacks are answered 405 with Allow.

Schemathesis' own pytest plugin does not load under pytest 9 (it reads ``Function._nodeid``), so
each operation is one parametrized case driving the operation's Hypothesis strategy directly.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from schemathesis import GenerationMode, checks

from benchmarks.served import served
from boternity.local.server import allowed_methods

if TYPE_CHECKING:
    from collections.abc import Iterator


def _served_document() -> dict[str, Any]:
    """The document exactly as the api function answers GET /openapi.json (checked against the
    running server below), so the cases can be collected before a server exists."""
    from boternity.handlers.api import lambda_handler
    from tests.support.apigw import rest_event

    resp = lambda_handler(rest_event("GET", "/openapi.json"), None)
    assert resp["statusCode"] == 200, resp
    return json.loads(resp["body"])


DOCUMENT = _served_document()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
OPERATIONS = {op.label: op for op in (r.ok() for r in SCHEMA.get_all_operations())}
# Per operation and mode: 14 operations x 2 modes stay near a minute on two shared cores.
EXAMPLES = 20
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "TRACE")
SEED = 20261201   # fixed, so a failure reproduces; change it to explore further


def _can_be_invalid(label: str) -> bool:
    """Whether the document constrains some input, so an invalid request can be generated: a body,
    a query or a header parameter (a free-form path segment admits every string)."""
    raw = OPERATIONS[label].definition.raw
    return "requestBody" in raw or any(p.get("in") in ("query", "header") for p in raw.get("parameters", []))


CASES = [pytest.param(label, mode, id=f"{label}-{mode.value}") for label in sorted(OPERATIONS)
         for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
         if mode is GenerationMode.POSITIVE or _can_be_invalid(label)]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with served() as base:
        yield base


def test_the_server_serves_the_document_under_test(base_url):
    served = requests.get(base_url + "/openapi.json", timeout=30).json()
    assert served["servers"] == [{"url": base_url}], "the server the document names is the one serving it"
    assert {**served, "servers": DOCUMENT["servers"]} == DOCUMENT
    assert len(OPERATIONS) == 14
    ids = [op.definition.raw["operationId"] for op in OPERATIONS.values()]
    assert all(i.isalnum() and i[0].islower() for i in ids), ids
    for op in OPERATIONS.values():
        error = op.definition.raw["responses"]["422"]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/ErrorResponse"}, op.label


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_every_generated_request_gets_a_documented_answer(base_url, label, mode):
    operation = OPERATIONS[label]

    @seed(SEED)
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=30)

    fuzz()


PATHS = sorted({op.path for op in OPERATIONS.values()})


@pytest.mark.parametrize("path", PATHS)
def test_a_method_the_path_lacks_gets_405_with_allow(base_url, path):
    documented = sorted(m.upper() for m in DOCUMENT["paths"][path])
    concrete = path.replace("{name}", "wf").replace("{run_id}", "r1").replace("{approval_id}", "a1")
    assert allowed_methods(concrete) == documented
    for method in (m for m in METHODS if m not in documented):
        resp = requests.request(method, base_url + concrete, timeout=30)
        assert resp.status_code == 405, (method, resp.text)
        assert resp.headers["Allow"] == ", ".join(documented)
        assert resp.json()["error"]["code"] == "method_not_allowed"
