"""Approval forgeries: whoever does not hold the approval (its id and IAM, or its link key, plus the
page's CSRF token) cannot decide it, a decision that comes too late is refused with a sentence, and
no refused request changes the run, its step record or the stored approval."""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

import pytest

from boternity.handlers.api import lambda_handler as api
from boternity.service.approval_page import csrf_token, link_key
from tests.support.apigw import Reply, call, wait_for
from tests.support.approval_runs import (
    FORM,
    Snapshot,
    approval,
    csrf_of,
    deploy,
    finished,
    gate_workflow,
    module_cloud,
    page,
    pending_approval,
    run_detail,
    start,
    steps,
    stored,
)

if TYPE_CHECKING:
    from collections.abc import Callable

ANONYMOUS = {"identity": {"sourceIp": "203.0.113.9"}}   # the link routes carry no IAM caller
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with module_cloud(tmp_path_factory.mktemp("forgeries")) as eng:
        deploy(gate_workflow("gate"))
        deploy(gate_workflow("hurry", timeout_secs=1))
        # The approval times out while the run still has a long way to go.
        doc = gate_workflow("linger", timeout_secs=1)
        doc["steps"][1] = {"id": "linger", "type": "wait", "depends_on": ["review"], "config": {"seconds": 600}}
        deploy(doc)
        yield eng


@pytest.fixture
def waiting(cloud: Any) -> tuple[str, str]:
    """A fresh run of ``gate`` waiting for its approval: (run id, approval id)."""
    rid = start("gate")
    return rid, pending_approval(rid)


@pytest.fixture(scope="module")
def still_waiting(cloud: Any) -> tuple[str, str]:
    """One run for every refused request: each must leave it waiting, exactly as it was."""
    rid = start("gate")
    return rid, pending_approval(rid)


def _key(aid: str) -> str:
    return link_key(str(stored(aid)["token"]), aid)


def _decide(aid: str) -> Reply:
    return call(api, "POST", f"/approvals/{aid}/decision", body={"approved": True})


# Each forgery: the request (given the run's approval id), then the exact answer it must get.
Forgery = tuple["Callable[[str], Reply]", int, str, "Callable[[str], str]"]
NOT_FOUND: Callable[[str], Callable[[str], str]] = lambda shown: lambda aid: f"approval '{shown}' not found"  # noqa: E731
CSRF = "the form's CSRF token is missing or wrong; reload the approval page"
INVALID = "the request does not match the API"
FORGERIES: dict[str, Forgery] = {
    "unknown-id-get": (lambda aid: call(api, "GET", "/approvals/AAAAAAAAAAAAAAAAAAAAAA"), 404, "not_found",
                       NOT_FOUND("AAAAAAAAAAAAAAAAAAAAAA")),
    "unknown-id-decide": (lambda aid: _decide("AAAAAAAAAAAAAAAAAAAAAA"), 404, "not_found",
                          NOT_FOUND("AAAAAAAAAAAAAAAAAAAAAA")),
    "id-case-flipped": (lambda aid: _decide(aid.swapcase()), 404, "not_found", lambda aid: f"approval '{aid.swapcase()}' not found"),
    "id-truncated": (lambda aid: _decide(aid[:-1]), 404, "not_found", lambda aid: "approval not found"),
    "id-with-key-separator": (lambda aid: _decide(f"{aid}%23APPROVAL"), 404, "not_found",
                              lambda aid: "approval not found"),
    "id-3000-chars": (lambda aid: _decide("a" * 3000), 404, "not_found", lambda aid: "approval not found"),
    "id-3000-chars-get": (lambda aid: call(api, "GET", "/approvals/" + "a" * 3000), 404, "not_found",
                          lambda aid: "approval not found"),
    "id-terminal-escape": (lambda aid: _decide("%1B%5B2J" + aid), 404, "not_found", lambda aid: "approval not found"),
    "form-without-csrf": (lambda aid: call(api, "POST", f"/approvals/{aid}/decision", body="approved=true",
                                           headers=FORM), 403, "csrf_failed", lambda aid: CSRF),
    "form-forged-csrf": (lambda aid: call(api, "POST", f"/approvals/{aid}/decision",
                                          body="approved=true&csrf=" + "0" * 40, headers=FORM),
                         403, "csrf_failed", lambda aid: CSRF),
    "form-link-key-as-csrf": (lambda aid: call(api, "POST", f"/approvals/{aid}/decision",
                                               body=f"approved=true&csrf={_key(aid)}", headers=FORM),
                              403, "csrf_failed", lambda aid: CSRF),
    "link-without-key": (lambda aid: call(api, "GET", f"/approve/{aid}", **ANONYMOUS), 404, "not_found",
                         lambda aid: f"approval '{aid}' not found"),
    "link-forged-key": (lambda aid: call(api, "GET", f"/approve/{aid}", query={"k": "0" * 40}, **ANONYMOUS),
                        404, "not_found", lambda aid: f"approval '{aid}' not found"),
    "link-csrf-as-key": (lambda aid: call(api, "GET", f"/approve/{aid}", query={"k": csrf_of(page(aid).text)},
                                          **ANONYMOUS), 404, "not_found", lambda aid: f"approval '{aid}' not found"),
    "link-post-forged-key": (lambda aid: call(api, "POST", f"/approve/{aid}",
                                              body=f"k={'0' * 40}&csrf={csrf_of(page(aid).text)}&approved=true",
                                              headers=FORM, **ANONYMOUS),
                             404, "not_found", lambda aid: f"approval '{aid}' not found"),
    "link-post-without-csrf": (lambda aid: call(api, "POST", f"/approve/{aid}", body=f"k={_key(aid)}&approved=true",
                                                headers=FORM, **ANONYMOUS), 403, "csrf_failed", lambda aid: CSRF),
    "link-post-as-json": (lambda aid: call(api, "POST", f"/approve/{aid}", body={"k": _key(aid), "approved": True},
                                           **ANONYMOUS), 415, "unsupported_media_type",
                          lambda aid: "post the approval page's form (application/x-www-form-urlencoded)"),
    "comment-2001-chars": (lambda aid: call(api, "POST", f"/approvals/{aid}/decision",
                                            body={"approved": True, "comment": "x" * 2001}),
                           422, "invalid_request", lambda aid: INVALID),
    "comment-1-mib-form": (lambda aid: call(api, "POST", f"/approvals/{aid}/decision",
                                            body=f"approved=true&csrf={csrf_of(page(aid).text)}&comment={'x' * 2**20}",
                                            headers=FORM), 413, "too_large",
                           lambda aid: "the body is larger than allowed (limit 1,048,576, BOTERNITY_MAX_INPUT_BYTES)"),
    "approver-spoofed": (lambda aid: call(api, "POST", f"/approvals/{aid}/decision",
                                          body={"approved": True, "approver": "the-ceo"}),
                         422, "invalid_request", lambda aid: INVALID),
    "link-approver-spoofed": (lambda aid: call(api, "POST", f"/approve/{aid}",
                                               body=f"k={_key(aid)}&csrf={csrf_of(page(aid).text)}&approved=true"
                                                    "&approver=the-ceo", headers=FORM, **ANONYMOUS),
                              422, "invalid_request", lambda aid: INVALID),
    "verdict-not-a-boolean": (lambda aid: call(api, "POST", f"/approvals/{aid}/decision", body={"approved": "yes!"}),
                              422, "invalid_request", lambda aid: INVALID),
}


@pytest.mark.parametrize(("name"), list(FORGERIES))
def test_a_forged_or_malformed_decision_is_refused_and_changes_nothing(still_waiting: tuple[str, str],
                                                                      name: str) -> None:
    rid, aid = still_waiting
    request, status, code, message = FORGERIES[name]
    before = Snapshot.take(rid, aid)
    r = request(aid)
    assert r.status == status, r.text
    assert r.error["code"] == code
    assert r.error["message"] == message(aid)
    assert Snapshot.take(rid, aid) == before
    assert before.run_status == "RUNNING" and before.step_status == "waiting_approval"
    assert before.approval["status"] == "PENDING"


def test_the_link_key_of_another_approval_opens_nothing(cloud: Any) -> None:
    mine_run, mine = (rid := start("gate")), pending_approval(rid)
    other_run = start("gate")
    other = pending_approval(other_run)
    before = Snapshot.take(mine_run, mine)
    stolen = _key(other)
    r = call(api, "GET", f"/approve/{mine}", query={"k": stolen}, **ANONYMOUS)
    assert (r.status, r.error["code"], r.error["message"]) == (404, "not_found", f"approval '{mine}' not found")
    other_page = call(api, "GET", f"/approve/{other}", query={"k": stolen}, **ANONYMOUS)
    body = f"k={stolen}&csrf={csrf_of(other_page.text)}&approved=true"
    r = call(api, "POST", f"/approve/{mine}", body=body, headers=FORM, **ANONYMOUS)
    assert (r.status, r.error["code"], r.error["message"]) == (404, "not_found", f"approval '{mine}' not found")
    assert Snapshot.take(mine_run, mine) == before
    assert approval(other)["status"] == "PENDING"


def test_a_decision_after_the_deadline_is_refused_and_the_approval_shows_expired(cloud: Any) -> None:
    rid = start("linger")
    aid = pending_approval(rid)
    key = _key(aid)
    csrf = csrf_token(str(stored(aid)["token"]), aid)   # what the page showed while it was open
    # Step Functions times the task out by itself and says nothing: the step goes on rejected.
    wait_for(lambda: steps(rid).get("linger"), timeout=10)
    for r in (_decide(aid),
              call(api, "POST", f"/approve/{aid}", body=f"k={key}&csrf={csrf}&approved=true", headers=FORM,
                   **ANONYMOUS)):
        assert r.status == 409, r.text
        assert r.error["code"] == "approval_expired"
        assert re.fullmatch(rf"approval '{re.escape(aid)}' expired at {ISO}: a decision can no longer change its run",
                            r.error["message"])
    view = approval(aid)
    assert view["status"] == "EXPIRED" and view["approved"] is None and view["reason"]
    html = page(aid).text
    assert "<form" not in html and ">Approve</button>" not in html
    assert "<h1>Approval expired</h1>" in html and "there is nothing to decide" in html
    assert steps(rid)["review"]["output"]["timed_out"] is True
    assert call(api, "POST", f"/runs/{rid}/cancel", body={}).status == 200


def test_an_approval_past_its_deadline_reads_expired_while_the_run_goes_on(cloud: Any) -> None:
    rid = start("linger")
    aid = pending_approval(rid)
    # Step Functions times the task out by itself and says nothing: the first read notices.
    view = wait_for(lambda: (a := approval(aid))["status"] != "PENDING" and a, timeout=10)
    assert view["status"] == "EXPIRED" and view["reason"] == "no decision before its deadline"
    review = wait_for(lambda: (s := steps(rid)["review"])["status"] != "waiting_approval" and s)
    assert review["status"] == "completed" and review["output"]["timed_out"] is True
    assert run_detail(rid)["run"]["status"] == "RUNNING"
    r = _decide(aid)
    assert (r.status, r.error["code"]) == (409, "approval_expired")
    assert call(api, "POST", f"/runs/{rid}/cancel", body={}).status == 200


def test_the_end_of_a_run_closes_an_approval_nobody_looked_at(cloud: Any) -> None:
    rid = start("hurry")
    aid = pending_approval(rid)
    done = finished(rid)     # the step timed out, was rejected, and the run went on to its end
    assert done["run"]["status"] == "SUCCEEDED"
    # Read as stored, not through the API (whose read would close it): the run's end did.
    item = wait_for(lambda: (i := stored(aid))["status"] != "PENDING" and i)
    assert item["status"] == "EXPIRED" and "approved" not in item
    assert {s["step_id"]: s for s in done["steps"]}["review"]["output"]["timed_out"] is True


def test_a_decision_after_cancel_is_refused_and_the_page_shows_cancelled(waiting: tuple[str, str]) -> None:
    rid, aid = waiting
    key = _key(aid)
    csrf = csrf_of(page(aid).text)
    assert call(api, "POST", f"/runs/{rid}/cancel", body={}).status == 200
    for r in (_decide(aid),
              call(api, "POST", f"/approve/{aid}", body=f"k={key}&csrf={csrf}&approved=true", headers=FORM,
                   **ANONYMOUS)):
        assert r.status == 409, r.text
        assert r.error["code"] == "approval_cancelled"
        assert r.error["message"] == (f"approval '{aid}' was cancelled (the run was cancelled): "
                                      "there is nothing to decide")
    assert approval(aid)["status"] == "CANCELLED"
    html = page(aid).text
    assert "<form" not in html and "<h1>Approval cancelled</h1>" in html and "the run was cancelled" in html
    assert steps(rid)["review"]["status"] == "aborted"
    assert run_detail(rid)["run"]["status"] == "ABORTED"


def test_a_run_stopped_outside_the_api_closes_its_approval(cloud: Any, waiting: tuple[str, str]) -> None:
    rid, aid = waiting
    arn = run_detail(rid)["run"]["execution_arn"]
    cloud.sfn.stop_execution(executionArn=arn, error="Ops.Stop", cause="stopped in the console")
    # The status-change event (the events function) closes what the run left open.
    wait_for(lambda: approval(aid)["status"] == "CANCELLED")
    r = _decide(aid)
    assert (r.status, r.error["code"]) == (409, "approval_cancelled")
    assert r.error["message"] == (f"approval '{aid}' was cancelled (the run was cancelled): "
                                  "there is nothing to decide")
    assert wait_for(lambda: steps(rid)["review"]["status"] == "aborted")


def test_approving_the_approval_of_a_finished_run_is_already_decided(waiting: tuple[str, str]) -> None:
    rid, aid = waiting
    assert _decide(aid).status == 200
    assert finished(rid)["run"]["status"] == "SUCCEEDED"
    r = call(api, "POST", f"/approvals/{aid}/decision", body={"approved": False, "comment": "changed my mind"})
    assert (r.status, r.error["code"]) == (409, "already_decided")
    assert re.fullmatch(rf"approval '{re.escape(aid)}' was already decided \(approved at {ISO[:-1]}\.\d{{3}}Z\)",
                        r.error["message"])
    view = approval(aid)
    assert view["approved"] is True and view["comment"] is None
    assert steps(rid)["ship"]["status"] == "completed"


def test_racing_decisions_have_exactly_one_winner(waiting: tuple[str, str]) -> None:
    rid, aid = waiting
    n = 8
    barrier = threading.Barrier(n)
    replies: list[Reply] = []

    def decide(i: int) -> None:
        barrier.wait()
        replies.append(call(api, "POST", f"/approvals/{aid}/decision",
                            body={"approved": i % 2 == 0, "comment": f"voter {i}"}))

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(r.status for r in replies) == [200] + [409] * (n - 1)
    assert {r.error["code"] for r in replies if r.status == 409} == {"already_decided"}
    winner = next(r.json for r in replies if r.status == 200)
    done = finished(rid)
    review = {s["step_id"]: s for s in done["steps"]}["review"]["output"]
    assert review["comment"] == winner["comment"] and review["approved"] is winner["approved"]
    assert approval(aid)["comment"] == winner["comment"]


def test_a_replayed_link_post_is_refused_and_the_first_decision_stands(waiting: tuple[str, str]) -> None:
    rid, aid = waiting
    key = _key(aid)
    csrf = csrf_of(call(api, "GET", f"/approve/{aid}", query={"k": key}, **ANONYMOUS).text)
    body = f"k={key}&csrf={csrf}&comment=first&approved=false"
    first = call(api, "POST", f"/approve/{aid}", body=body, headers=FORM, **ANONYMOUS)
    assert first.status == 200 and "rejected" in first.text
    replay = call(api, "POST", f"/approve/{aid}", body=body.replace("approved=false", "approved=true"),
                  headers=FORM, **ANONYMOUS)
    assert (replay.status, replay.error["code"]) == (409, "already_decided")
    view = approval(aid)
    assert (view["status"], view["comment"], view["approver"]) == ("REJECTED", "first", "approval link")
    assert {s["step_id"]: s for s in finished(rid)["steps"]}["ship"]["status"] == "skipped"


def test_markup_in_a_comment_is_shown_as_text(waiting: tuple[str, str]) -> None:
    _, aid = waiting
    assert call(api, "POST", f"/approvals/{aid}/decision",
                body={"approved": True, "comment": "<script>alert(1)</script>"}).status == 200
    html = page(aid).text
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
