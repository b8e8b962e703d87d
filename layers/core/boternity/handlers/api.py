"""The api function: the REST API of workflows, runs and approvals (Powertools
``APIGatewayRestResolver`` with request/response validation and the OpenAPI document).

Routes (template.yaml puts IAM auth on every one):

    PUT    /workflows/{name}                 201 created / 200 updated
    GET    /workflows                        200
    GET    /workflows/{name}                 200
    DELETE /workflows/{name}                 200
    POST   /workflows/{name}/runs            202 {run_id, status, links}
    GET    /workflows/{name}/runs            200 ?status=&limit=&next_token=
    GET    /runs/{run_id}                    200 the run and its steps
    POST   /runs/{run_id}/cancel             200
    POST   /runs/{run_id}/redrive            202 (501 where RedriveExecution does not exist)
    GET    /approvals                        200 ?status=&workflow=&limit=&next_token=
    GET    /approvals/{approval_id}          200 JSON, or an HTML page with Approve/Reject
    POST   /approvals/{approval_id}/decision 200 {approved, comment}
    GET    /openapi.json                     200

Every error is ``{"error": {"code", "message", "details"}}`` (400, 403, 404, 409, 413, 415, 422,
429; 500/501 only for the deployment, never for bad input), Powertools' own validation errors
included.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFound
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
    ResponseValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from pydantic import ValidationError

from boternity import __version__
from boternity.approvals import ApprovalStore, public
from boternity.errors import BoternityError, Forbidden, NotFound
from boternity.handlers.rest import (
    FORM,
    JSON,
    Request,
    error_body,
    invalid_request_message,
    parse_body,
    pydantic_details,
    read_request,
    to_http,
)
from boternity.parsing import loads_json
from boternity.runtime.log import logger, traced
from boternity.service.api_models import (
    ApprovalList,
    ApprovalView,
    CancelResult,
    DecisionRequest,
    ErrorResponse,
    RedriveResult,
    RunAccepted,
    RunDetail,
    RunList,
    WorkflowDeleted,
    WorkflowList,
    WorkflowPutResult,
    WorkflowSummary,
    WorkflowView,
    workflow_view,
)
from boternity.service.approval_page import (
    HTML_HEADERS,
    check_csrf,
    check_link_key,
    csrf_token,
    prefers_html,
    render_approval,
    render_decided,
)
from boternity.service.approvals import list_approvals as approvals_page
from boternity.service.config import Settings
from boternity.service.links import api_base_url, run_links, webhook_base_url
from boternity.service.registry import Registry
from boternity.service.runs import RUN_PAYLOAD_MAX, RunService
from boternity.service.workflows import WorkflowService

# Powertools parses bodies itself for routes with a Body parameter (and app.current_event.json_body):
# the same bounded parser as everywhere else, so no route can reach an unbounded json.loads. The
# routes below read their bodies through boternity.handlers.rest.parse_body.
# The API's security scheme in the OpenAPI document: IAM (SigV4). The approval-link routes
# (/approve/{id}) are the exception: the link's key is their credential.
SIGV4 = "sigv4"
NO_IAM: dict[str, Any] = {"security": []}   # an operation's own empty list overrides the document's
app = APIGatewayRestResolver(enable_validation=True, response_validation_error_http_code=500,
                             json_body_deserializer=lambda text: loads_json(text, what="the body"))

HTML = "text/html; charset=utf-8"
RUN_STATUS = r"^(?i:queued|running|succeeded|failed|timed_out|aborted)$"
APPROVAL_STATUS = r"^(?i:pending|approved|rejected|expired|cancelled)$"
WORKFLOW_NAME = r"^[A-Za-z0-9][A-Za-z0-9-]*$"   # boternity.model.workflow.WORKFLOW_NAME_PATTERN
CSRF_FAILED = "the form's CSRF token is missing or wrong; reload the approval page"


def _responses(ok: int, description: str, *errors: tuple[int, str]) -> dict[int, Any]:
    """The OpenAPI responses of a route: its success (schema from the return annotation) and errors."""
    out: dict[int, Any] = {ok: {"description": description}}
    for status, text in errors:
        out[status] = {"description": text, "content": {JSON: {"model": ErrorResponse}}}
    return out


def _request() -> Request:
    return read_request(app.current_event.raw_event)


# Path parameters too long to name anything are answered 404 before any store is read: DynamoDB
# refuses a key over 2,048 bytes (ValidationException, a 500), and the answer must not echo 3,000
# characters back. Workflow names have at most 64 characters, run ids (execution names) 80,
# approval ids 22. (A length check only: the name pattern lives in boternity.model, which this
# function does not load at cold start.)
ID_MAX = 80


def _workflow_name(name: str) -> str:
    if len(name) > ID_MAX:
        raise NotFound(f"workflow {_clipped(name)} not found")
    return name


def _run_id(run_id: str) -> str:
    if len(run_id) > ID_MAX:
        raise NotFound(f"run {_clipped(run_id)} not found")
    return run_id


def _clipped(value: str) -> str:
    return repr(value) if len(value) <= 64 else repr(value[:64]) + f"... ({len(value):,} characters)"


def _settings() -> Settings:
    return Settings.from_env()


def _json_response(status: int, model: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status, content_type=JSON, body=model, headers=headers)


# ---------------------------------------------------------------------- workflows


@app.put(
    "/workflows/<name>", status_code=201, tags=["workflows"],
    summary="Register a workflow (create or update its state machine and triggers)",
    description="Body: the workflow as JSON, or as YAML with Content-Type application/yaml. The body's `name` "
                "must equal the path's (or is filled from it). Answers 201 when created, 200 when updated.",
    responses={**_responses(201, "created", (400, "invalid workflow: its errors in details (the first 100)"),
                            (409, "webhook path taken, or a concurrent update"), (413, "body over 256 KiB"),
                            (415, "not JSON or YAML"), (422, "valid, but beyond a Step Functions limit")),
               200: {"description": "updated", "content": {JSON: {"model": WorkflowPutResult}}}},
    openapi_extensions={"requestBody": {"required": True, "content": {
        JSON: {"schema": {"type": "object", "description": "a workflow (see `boternity schema`)"}},
        "application/yaml": {"schema": {"type": "string"}}}}},
)
def put_workflow(name: str) -> Response[WorkflowPutResult]:
    req = _request()
    # The registry reads the workflow itself (JSON or YAML, with line numbers for every error).
    item, created, warnings = WorkflowService(_settings()).deploy(name, req.body, req.header("Content-Type"))
    view = WorkflowPutResult(**_workflow_view(req, item), created=created, warnings=warnings)
    return _json_response(201 if created else 200, view)


@app.get("/workflows", tags=["workflows"], summary="List registered workflows",
         responses=_responses(200, "the workflows, by name", (400, "bad next_token")))
def list_workflows(limit: Annotated[int, Query(ge=1, le=100)] = 50,
                   next_token: Annotated[str | None, Query(max_length=2048)] = None) -> Response[WorkflowList]:
    items, token = Registry(_settings().table).list(limit=limit, next_token=next_token)
    # Summaries only: a registry item holds the source (up to 256 KiB), and 100 of them made a
    # 25 MB page, over Lambda's 6 MB response limit. GET /workflows/{name} has the rest.
    summaries = [{k: v for k, v in item.items() if k in _SUMMARY_FIELDS} for item in items]
    return _json_response(200, WorkflowList(workflows=summaries, next_token=token))


_SUMMARY_FIELDS = frozenset(WorkflowSummary.model_fields)


@app.get("/workflows/<name>", tags=["workflows"],
         summary="A workflow: its source as sent, the definition, state machine ARN, triggers",
         responses=_responses(200, "the workflow", (404, "no such workflow")))
def get_workflow(name: str) -> Response[WorkflowView]:
    item = WorkflowService(_settings()).describe(_workflow_name(name))
    return _json_response(200, WorkflowView(**_workflow_view(_request(), item, with_source=True)))


@app.delete("/workflows/<name>", tags=["workflows"],
            summary="Delete a workflow: its state machine and trigger resources (run records stay)",
            responses=_responses(200, "deleted", (404, "no such workflow")))
def delete_workflow(name: str) -> Response[WorkflowDeleted]:
    return _json_response(200, WorkflowDeleted(**WorkflowService(_settings()).undeploy(_workflow_name(name))))


def _workflow_view(req: Request, item: dict[str, Any], *, with_source: bool = False) -> dict[str, Any]:
    return workflow_view(item, api_base=api_base_url(req.event), hooks_base=webhook_base_url(req.event),
                         with_source=with_source)


# ---------------------------------------------------------------------- runs


@app.post(
    "/workflows/<name>/runs", status_code=202, tags=["runs"],
    summary="Start a run (the HTTPS trigger); answers at once",
    description="The JSON body is the trigger payload (at most 256 KiB; empty means {}). The same "
                "Idempotency-Key returns the same run (409 while the first request is still starting it). With `concurrency`, a full workflow queues the run "
                "(status QUEUED) or, with `on_limit: reject`, answers 429.",
    responses=_responses(202, "started (RUNNING) or queued (QUEUED)", (400, "not JSON"), (404, "no such workflow"),
                         (409, "a request with this Idempotency-Key is still starting its run (see Retry-After)"),
                         (413, "payload over 256 KiB"), (415, "not JSON"),
                         (422, "Idempotency-Key reused with another payload"),
                         (429, "concurrency limit reached (on_limit: reject)")),
    openapi_extensions={"requestBody": {"required": False, "content": {JSON: {"schema": {}}}}},
)
def start_run(name: str,
              idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)] = None,
              ) -> Response[RunAccepted]:
    req = _request()
    # Depth, long numbers, NaN, UTF-8: a ParseError is a 400 naming line and column, before any run.
    payload = parse_body(req, accept=(JSON,), what="the payload", max_bytes=RUN_PAYLOAD_MAX, empty={},
                         unsupported=f"Content-Type '{req.media_type}' is not accepted: the payload must be "
                                     "application/json")
    trigger = {"type": "http", "caller": req.caller}
    started = RunService(_settings().table, context=app.lambda_context).start(
        _workflow_name(name), payload, trigger_type="http", trigger=trigger, idempotency_key=idempotency_key)
    links = run_links(api_base_url(req.event), started.run_id, started.workflow, started.execution_arn)
    accepted = RunAccepted(run_id=started.run_id, status=started.status, workflow=started.workflow, links=links,
                           replayed=started.replayed)
    return _json_response(202, accepted, {"Location": str(links["self"])})


@app.get("/workflows/<name>/runs", tags=["runs"], summary="A workflow's runs, newest first",
         responses=_responses(200, "a page of runs", (400, "bad next_token"), (404, "no such workflow, no runs")))
def list_runs(name: str,
              status: Annotated[str | None, Query(pattern=RUN_STATUS)] = None,
              limit: Annotated[int, Query(ge=1, le=100)] = 20,
              next_token: Annotated[str | None, Query(max_length=2048)] = None) -> Response[RunList]:
    table = _settings().table
    runs, token = RunService(table).list(_workflow_name(name), status=status, limit=limit, next_token=next_token)
    if not runs and next_token is None and Registry(table).get(name) is None:
        raise NotFound(f"workflow '{name}' not found and has no runs")
    return _json_response(200, RunList(runs=runs, next_token=token))


@app.get("/runs/<run_id>", tags=["runs"], summary="A run and each of its steps",
         responses=_responses(200, "the run and its steps", (404, "no such run")))
def get_run(run_id: str) -> Response[RunDetail]:
    data = RunService(_settings().table).get(_run_id(run_id))
    run = data["run"]
    links = run_links(api_base_url(_request().event), run_id, run.get("workflow"), run.get("execution_arn"))
    return _json_response(200, RunDetail(run=run, steps=data["steps"], links=links))


@app.post("/runs/<run_id>/cancel", tags=["runs"], summary="Stop a run; its pending approvals are cancelled",
          description="Exactly one cancel of a run wins (one StopExecution): it answers 200. Every other cancel "
                      "of the same run, concurrent or later, answers 409 `already_cancelled`; a cancel of a run "
                      "that ended on its own answers 409 `run_ended` with the run's status in `details`.",
          responses=_responses(200, "stopped by this request: the run is ABORTED, its open approvals CANCELLED "
                                    "and its open step records aborted", (404, "no such run"),
                               (409, "already_cancelled (another cancel won) or run_ended (details.status says "
                                     "how it ended)")))
def cancel_run(run_id: str) -> Response[CancelResult]:
    return _json_response(200, CancelResult(**RunService(_settings().table).cancel(_run_id(run_id), by=_request().caller)))


@app.post("/runs/<run_id>/redrive", status_code=202, tags=["runs"],
          summary="Resume a failed, timed-out or aborted run from the step that failed",
          responses=_responses(202, "resumed", (404, "no such run"), (409, "the run cannot be redriven"),
                               (429, "no free concurrency slot"), (501, "RedriveExecution unavailable here")))
def redrive_run(run_id: str) -> Response[RedriveResult]:
    svc = RunService(_settings().table)
    result = svc.redrive(_run_id(run_id))
    run = svc.get(run_id)["run"]
    links = run_links(api_base_url(_request().event), run_id, run.get("workflow"), run.get("execution_arn"))
    return _json_response(202, RedriveResult(**result, links=links))


# ---------------------------------------------------------------------- approvals


def _approvals() -> ApprovalStore:
    return ApprovalStore(_settings().table)


def _approval_item(approval_id: str) -> dict[str, Any]:
    """The stored approval, task token included (for the CSRF key only; never returned). One past
    its deadline is closed as EXPIRED by the store, so no page or answer shows it as still decidable.
    Raises NotFound."""
    if len(approval_id) > ID_MAX:
        raise NotFound("approval not found")
    return _approvals().item(approval_id)


def _approval_view(req: Request, public_item: dict[str, Any]) -> ApprovalView:
    base = api_base_url(req.event)
    aid = public_item["approval_id"]
    links = {"self": f"{base}/approvals/{aid}", "decision": f"{base}/approvals/{aid}/decision",
             "run": f"{base}/runs/{public_item.get('run_id')}"}
    return ApprovalView(**public_item, links=links)


def _html(page: str) -> Response[str]:
    return Response(200, HTML, page, headers=dict(HTML_HEADERS))


def _decided(approval_id: str, decision: DecisionRequest, *, approver: str, via: str) -> dict[str, Any]:
    result = _approvals().decide(approval_id, approved=decision.approved, approver=approver,
                                 comment=decision.comment)
    logger.info("approval decided", extra={"approval_id": approval_id, "approved": decision.approved,
                                           "run_id": result.get("run_id"), "via": via})
    return result


@app.get("/approvals", tags=["approvals"], summary="Approvals of one status (default pending), by workflow",
         description="One page of approvals in one status, by workflow name then oldest first; `workflow` keeps "
                     "one workflow's. A pending approval past its deadline is closed (EXPIRED) instead of listed, "
                     "so a page may be shorter than `limit` while `next_token` says more follow. Never returns "
                     "a task token.",
         responses=_responses(200, "a page of approvals", (400, "bad next_token")))
def list_approvals(status: Annotated[str, Query(pattern=APPROVAL_STATUS)] = "pending",
                         workflow: Annotated[str | None, Query(max_length=64, pattern=WORKFLOW_NAME)] = None,
                         limit: Annotated[int, Query(ge=1, le=100)] = 50,
                         next_token: Annotated[str | None, Query(max_length=2048)] = None) -> Response[ApprovalList]:
    req = _request()
    items, token = approvals_page(_approvals(), status=status, workflow=workflow, limit=limit, next_token=next_token)
    return _json_response(200, ApprovalList(approvals=[_approval_view(req, a) for a in items], next_token=token),
                          {"Cache-Control": "no-store"})


@app.get("/approvals/<approval_id>", tags=["approvals"],
         summary="An approval: JSON, or an HTML page with Approve and Reject buttons for browsers",
         description="Never decides anything (link scanners fetch GETs); the page's buttons POST the decision.",
         responses={**_responses(200, "", (404, "no such approval")), 200: {
                        "description": "the approval", "content": {JSON: {"model": ApprovalView},
                                                                   "text/html": {"schema": {"type": "string"}}}}})
def get_approval(approval_id: str) -> Response[ApprovalView | str]:
    req = _request()
    item = _approval_item(approval_id)
    view = public(item)
    if prefers_html(req.header("Accept")):
        csrf = csrf_token(str(item["token"]), approval_id) if view.get("status") == "PENDING" else None
        return _html(render_approval(view, csrf=csrf))
    return _json_response(200, _approval_view(req, view), {"Cache-Control": "no-store"})


@app.post(
    "/approvals/<approval_id>/decision", tags=["approvals"], summary="Approve or reject: {approved, comment}",
    description="JSON from API clients (the approver is the caller's IAM identity). The approval page posts a "
                "form carrying its CSRF token; a form without a valid token is refused (403).",
    responses=_responses(200, "decided; the run resumes", (403, "form post without a valid CSRF token"),
                         (404, "no such approval"), (409, "too late: code already_decided, approval_expired (its deadline passed) or "
                                "approval_cancelled (its run was cancelled or ended)"),
                         (415, "neither JSON nor a form")),
    openapi_extensions={"requestBody": {"required": True, "content": {
        JSON: {"schema": DecisionRequest.model_json_schema()},
        FORM: {"schema": DecisionRequest.model_json_schema()}}}},
)
def decide_approval(approval_id: str) -> Response[ApprovalView | str]:
    req = _request()
    is_form = req.media_type == FORM
    data = parse_body(req, accept=(JSON, FORM), what="the body",
                      unsupported=f"Content-Type '{req.media_type}' is not accepted: send application/json")
    # ValidationError → 422
    decision = DecisionRequest.from_form(data) if is_form and data is not None else DecisionRequest.model_validate(data)
    item = _approval_item(approval_id)                 # 404 before any other check
    if is_form and not check_csrf(str(item["token"]), approval_id, decision.csrf):
        # A form can be posted cross-site by any page; only the approval page knows the token.
        raise Forbidden(CSRF_FAILED, code="csrf_failed")
    result = _decided(approval_id, decision, approver=req.caller, via="api")
    if is_form and prefers_html(req.header("Accept")):
        return _html(render_decided(result))
    return _json_response(200, _approval_view(req, result))


# ---------------------------------------------------------------------- approval links (no IAM)
# A browser cannot sign requests, so the links in approval notifications point at these two routes,
# which API Gateway leaves open: the key in the link is the credential (see approval_page.link_key).
# A wrong key answers exactly like an unknown approval.


def _linked_approval(approval_id: str, key: str | None) -> dict[str, Any]:
    item = _approval_item(approval_id)
    if not check_link_key(str(item["token"]), approval_id, key):
        raise NotFound(f"approval '{approval_id}' not found")
    return item


@app.get("/approve/<approval_id>", tags=["approvals"], openapi_extensions=NO_IAM,
         summary="The approval page an approval link opens (no IAM; the link's key is the credential)",
         description="Never decides anything (link scanners fetch GETs); its buttons POST the decision.",
         responses={**_responses(200, "", (404, "no such approval, or a wrong key")),
                    200: {"description": "the page", "content": {"text/html": {"schema": {"type": "string"}}}}})
def approval_link_page(approval_id: str, k: Annotated[str, Query(max_length=64)] = "") -> Response[str]:
    item = _linked_approval(approval_id, k)
    view = public(item)
    csrf = csrf_token(str(item["token"]), approval_id) if view.get("status") == "PENDING" else None
    return _html(render_approval(view, csrf=csrf, link=k))


@app.post("/approve/<approval_id>", tags=["approvals"], openapi_extensions=NO_IAM,
          summary="The decision from an approval link's page (a form with the link's key and CSRF token)",
          responses=_responses(200, "decided; the run resumes", (403, "no valid CSRF token"),
                               (404, "no such approval, or a wrong key"), (409, "too late: already_decided, approval_expired or approval_cancelled"),
                               (415, "not a form")))
def approval_link_decision(approval_id: str) -> Response[str]:
    req = _request()
    data: dict[str, str] = parse_body(req, accept=(FORM,), what="the body", empty={},
                                      unsupported=f"post the approval page's form ({FORM})")
    key = data.pop("k", None)
    decision = DecisionRequest.from_form(data)       # ValidationError → 422
    item = _linked_approval(approval_id, key)
    if not check_csrf(str(item["token"]), approval_id, decision.csrf):
        raise Forbidden(CSRF_FAILED, code="csrf_failed")
    return _html(render_decided(_decided(approval_id, decision, approver="approval link", via="link")))


# ---------------------------------------------------------------------- OpenAPI

# What any operation can answer besides its own errors: a request that does not match the API
# (the exception handlers below: never Powertools' HTTPValidationError shape), one over API
# Gateway's request limits (boternity.local.serve_limits holds `boternity serve` to the same), and
# a failure of the deployment. Each route documents its own statuses; these fill in the ones it leaves out.
_COMMON_ERRORS = {
    400: "a malformed request: unreadable body, bad header or query value",
    413: "the body is over the API's payload limit (10 MB; routes keep smaller ones)",
    414: "the request line is over 10240 bytes",
    422: "the request does not match the API: its problems in details (the first 100)",
    431: "the request line and headers are over 10240 bytes together",
    500: "internal error (a bug or an AWS outage, never bad input)",
}


def _document_every_operation() -> None:
    """Stable operationIds (``getWorkflow``, not the generated ``get_workflow_workflows__name__get``,
    which changes with the path) and the errors every operation can answer, in the one error shape."""
    # Powertools keeps no public route list; these two attributes hold every registered route.
    for route in (*getattr(app, "_static_routes", []), *getattr(app, "_dynamic_routes", [])):
        if not route.include_in_schema:
            continue
        if route.operation_id == route._generate_operation_id():   # none given on the route
            head, *rest = route.func.__name__.split("_")
            route.operation_id = head + "".join(part.title() for part in rest)
        responses = dict(route.responses or {})
        for status, text in _COMMON_ERRORS.items():
            responses.setdefault(status, {"description": text, "content": {JSON: {"model": ErrorResponse}}})
        route.responses = responses


_document_every_operation()


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[Any]:
    # Only here: Powertools' OpenAPI models cost a cold start about 100 ms, and only this route needs them.
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server

    doc = app.get_openapi_json_schema(
        title="Boternity Workflows API", version=__version__,
        description="Workflows (YAML DAGs compiled to AWS Step Functions), their runs and approvals. Requests are "
                    "signed with SigV4 (IAM auth); webhooks arrive at /hooks/{path} and verify themselves.",
        # The URL this document was fetched through: the execute-api host and stage, or the
        # configured base (a custom domain, `boternity serve`).
        servers=[Server(url=api_base_url(app.current_event.raw_event) or "/")],
        security_schemes={SIGV4: APIKey(
            name="Authorization", description="AWS Signature Version 4 for the execute-api service (IAM "
            "authorization): the caller's credentials sign each request.", **{"in": APIKeyIn.header},
            **{"x-amazon-apigateway-authtype": "awsSigv4"})},
        security=[{SIGV4: []}])
    return Response(200, JSON, doc)


# ---------------------------------------------------------------------- errors


def _error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status, content_type=JSON, body=body, headers=headers or None)


@app.exception_handler(BoternityError)
def _boternity_error(exc: BoternityError) -> Response[Any]:
    status, body, headers = to_http(exc)
    if status >= 500:
        logger.error("request failed", extra={"code": body["error"]["code"], "error": str(exc)})
    return _error(status, body, headers)


@app.exception_handler(RequestValidationError)
def _request_invalid(exc: RequestValidationError) -> Response[Any]:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return _error(400, error_body("invalid_json", "the body is not valid JSON"))
    return _error(422, error_body("invalid_request", invalid_request_message(len(errors)), pydantic_details(errors)))


@app.exception_handler(ValidationError)
def _model_invalid(exc: ValidationError) -> Response[Any]:
    errors = exc.errors(include_url=False)
    return _error(422, error_body("invalid_request", invalid_request_message(len(errors)), pydantic_details(errors)))


@app.exception_handler(RequestUnsupportedContentType)
def _unsupported(exc: RequestUnsupportedContentType) -> Response[Any]:
    return _error(415, error_body("unsupported_media_type", "send application/json"))


@app.exception_handler(ResponseValidationError)
def _response_invalid(exc: ResponseValidationError) -> Response[Any]:
    logger.error("response failed validation", extra={"errors": pydantic_details(exc.errors())})
    return _error(500, error_body("internal", "internal error"))


@app.not_found
def _no_route(exc: RouteNotFound) -> Response[Any]:
    event = app.current_event.raw_event
    return _error(404, error_body("not_found", f"no route {event.get('httpMethod')} {event.get('path')}"))


@app.exception_handler(ServiceError)
def _service_error(exc: ServiceError) -> Response[Any]:
    return _error(exc.status_code, error_body("error", str(exc.msg)))


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response[Any]:
    # A bug or an AWS outage, never bad input: log it whole, answer without details.
    logger.exception("unhandled error")
    return _error(500, error_body("internal", "internal error"))


# The resolver keeps the request being handled (``app.current_event``) and the logger its
# correlation id in module state: one request at a time, as in a Lambda execution environment.
# `boternity serve` calls this from many threads; without the lock one request read another's
# body and caller (a decision racing a cancel was answered with the cancel's empty body).
_one_request_at_a_time = threading.Lock()


@traced
def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    with _one_request_at_a_time:
        # Every log line of this request carries API Gateway's request id (and run/approval ids where logged).
        logger.set_correlation_id(((event or {}).get("requestContext") or {}).get("requestId"))
        return app.resolve(event, context)
