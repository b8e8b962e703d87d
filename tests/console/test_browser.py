"""The console in a real browser (Playwright driving Debian's Chromium) against a real
`boternity serve`: a finished run's page shows each step's status, a running run's nodes change
without a reload, the Approve button resumes a run, the start form starts one (and refuses invalid
JSON before sending), cancel and redrive act, and markup in names and outputs stays text.

Every wait is on a condition in the page or the API, never a fixed sleep. The approval test takes
the run-page screenshot the README shows (written to docs/console-run.png with --update-golden)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.console.conftest import ROOT, api_call

FINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
WAIT_MS = 60_000

FINISHED = {
    "name": "console-finished",
    "description": "<b>not bold</b> <script>window.__pwned = 'description'</script>",
    "variables": {"items": ["a", "b"]},
    "steps": [
        {"id": "greet", "name": "<script>window.__pwned = 'name'</script>Greet", "type": "skill",
         "config": {"skill": "echo-prompt", "input": "hello {{ trigger.who | default('world') }}"}},
        {"id": "markup", "type": "code", "depends_on": ["greet"],
         "config": {"language": "javascript",
                    "source": "'<img src=x onerror=window.__pwned=1><script>window.__pwned=2</script>'"}},
        {"id": "never", "type": "wait", "depends_on": ["greet"], "condition": "1 == 2", "config": {"seconds": 0}},
        {"id": "each", "type": "skill", "depends_on": ["greet"], "for_each": "{{ variables.items }}",
         "config": {"skill": "echo-prompt", "input": "item {{ item }}"}},
    ],
}
LIVE = {
    "name": "console-live",
    "steps": [
        {"id": "first", "type": "skill", "config": {"skill": "echo-prompt", "input": "go"}},
        {"id": "pause", "type": "wait", "depends_on": ["first"], "config": {"seconds": 5}},
        {"id": "last", "type": "skill", "depends_on": ["pause"], "config": {"skill": "echo-prompt", "input": "done"}},
    ],
}
SLOW = {
    "name": "console-slow",
    "steps": [{"id": "hold", "type": "wait", "config": {"seconds": 600}},
              {"id": "after", "type": "wait", "depends_on": ["hold"], "config": {"seconds": 0}}],
}
FAILING = {"name": "console-failing", "steps": [
    {"id": "boom", "type": "code", "config": {"language": "javascript", "source": "throw new Error('no <b>luck</b>')"}},
    {"id": "after", "type": "wait", "depends_on": ["boom"], "config": {"seconds": 0}}]}
WIDE = {"name": "console-wide", "steps": [
    {"id": f"c{c}-{j}", "type": "skill", "depends_on": [f"c{c}-{j - 1}"] if j else [],
     "config": {"skill": "echo-prompt", "input": f"{c}/{j}"}} for c in range(10) for j in range(15)]}
LARGE = {"name": "console-large", "steps": [
    {"id": "big", "type": "code", "config": {"language": "javascript", "source": "'<i>' + 'x'.repeat(100000)"}}]}
CHILD = {"name": "console-child", "steps": [
    {"id": "inner", "type": "skill", "config": {"skill": "echo-prompt", "input": "inside"}}]}
PARENT = {"name": "console-parent", "steps": [
    {"id": "call", "type": "sub_workflow", "config": {"workflow_name": "console-child", "input": {"x": 1}}}]}
SLOW_CHILD = {"name": "console-slow-child", "steps": [{"id": "nap", "type": "wait", "config": {"seconds": 2}}]}
SLOW_PARENT = {"name": "console-slow-parent", "steps": [
    {"id": "call", "type": "sub_workflow", "config": {"workflow_name": "console-slow-child", "input": {}}}]}
WRITTEN = """\
# Why this workflow exists: the console shows this comment.
name: console-written
steps:
  - id: nap   # <b>markup in a comment</b> stays text
    config: {seconds: 0}
    type: wait
"""
APPROVAL = {
    "name": "console-approval",
    "description": "Draft, check, ask a human, ship",
    "steps": [
        {"id": "draft", "name": "Draft the post", "type": "skill",
         "config": {"skill": "echo-prompt", "input": "a post about {{ trigger.what }}"}},
        {"id": "facts", "name": "Check facts", "type": "skill",
         "config": {"skill": "echo-prompt", "input": "facts of {{ trigger.what }}"}},
        {"id": "score", "name": "Score it", "type": "code", "depends_on": ["draft"],
         "config": {"language": "javascript", "source": "({score: 0.9})"}},
        {"id": "review", "name": "Editor review", "type": "approval", "depends_on": ["score", "facts"],
         "config": {"prompt": "Publish the post about {{ trigger.what }}?"}},
        {"id": "ship", "name": "Publish", "type": "wait", "depends_on": ["review"],
         "condition": "steps.review.output.approved", "config": {"seconds": 0}},
        {"id": "announce", "name": "Announce", "type": "skill", "depends_on": ["ship"],
         "config": {"skill": "echo-prompt", "input": "published {{ trigger.what }}"}},
    ],
}


@pytest.fixture(scope="module")
def base(serve: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    from boternity.cli.main import main

    for wf in (FINISHED, LIVE, SLOW, APPROVAL, CHILD, PARENT, FAILING, WIDE, LARGE, SLOW_CHILD, SLOW_PARENT):
        api_call(serve, "PUT", f"/workflows/{wf['name']}", wf)
    # Registered as users do: `boternity deploy` sends the file's bytes, comments included.
    written = tmp_path_factory.mktemp("written") / "console-written.yaml"
    written.write_text(WRITTEN)
    assert main(["deploy", str(written), "--api", serve]) == 0
    return serve


def start(base: str, name: str, payload: Any = None) -> str:
    return str(api_call(base, "POST", f"/workflows/{name}/runs", payload or {})["run_id"])


def run_detail(base: str, run_id: str) -> dict[str, Any]:
    return api_call(base, "GET", f"/runs/{run_id}")


def finished(base: str, run_id: str, timeout: float = 60.0) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while True:
        detail = run_detail(base, run_id)
        if detail["run"]["status"] in FINAL or time.monotonic() > end:
            return detail
        time.sleep(0.2)


def node(page: Any, step_id: str, status: str) -> str:
    return f'[data-step-id="{step_id}"][data-status="{status}"]'


def test_a_finished_run_shows_each_steps_status_and_markup_stays_text(base, page):
    run_id = start(base, "console-finished", {"who": "<i>you</i>"})
    assert finished(base, run_id)["run"]["status"] == "SUCCEEDED"
    page.goto(f"{base}/console/runs/{run_id}")
    page.wait_for_selector("body[data-loaded=true]")
    statuses = page.eval_on_selector_all("svg .node", "ns => ns.map(n => [n.dataset.stepId, n.dataset.status])")
    assert dict(statuses) == {"greet": "completed", "markup": "completed", "never": "skipped", "each": "completed"}
    assert page.get_attribute("#run-status", "data-status") == "succeeded"
    assert page.locator("#cancel-run").count() == 0 and page.locator("#redrive-run").count() == 0

    page.click('[data-step-id="markup"]')
    text = page.locator(".output-text").inner_text()
    assert "<img src=x onerror=window.__pwned=1><script>window.__pwned=2</script>" in text
    page.click('[data-step-id="greet"]')
    assert "hello <i>you</i>" in page.locator(".output-text").inner_text()
    assert page.locator("#step-panel h2").inner_text() == "<script>window.__pwned = 'name'</script>Greet"
    page.click('[data-step-id="each"]')
    items = page.locator("#step-panel tr[data-iteration]")
    assert items.count() == 2
    assert [i.endswith(f"i{n}") for n, i in enumerate(items.evaluate_all("rs => rs.map(r => r.dataset.iteration)"))] \
        == [True, True]
    items.nth(1).locator("button").click()
    assert "item b" in page.locator(".iter-output .output-text").inner_text()
    page.goto(f"{base}/console/workflows/console-finished")
    page.wait_for_selector("body[data-loaded=true]")
    assert page.locator("main > p").first.inner_text() == FINISHED["description"]
    assert page.locator("main b, main script, main img").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_a_running_runs_nodes_change_live_without_a_reload(base, page):
    run_id = start(base, "console-live")
    page.goto(f"{base}/console/runs/{run_id}")
    page.wait_for_selector("body[data-loaded=true]")
    page.evaluate("window.__sameDocument = true")
    assert page.get_attribute('[data-step-id="last"]', "data-status") == "pending"
    page.wait_for_selector(node(page, "first", "completed"), timeout=WAIT_MS)
    page.wait_for_selector(node(page, "last", "completed"), timeout=WAIT_MS)
    page.wait_for_selector('#run-status[data-status="succeeded"]', timeout=WAIT_MS)
    assert page.evaluate("window.__sameDocument") is True


def test_approving_through_the_button_resumes_the_run(base, page, update_golden, tmp_path):
    run_id = start(base, "console-approval", {"what": "<b>console</b>"})
    page.goto(f"{base}/console/runs/{run_id}")
    page.wait_for_selector(node(page, "review", "waiting_approval"), timeout=WAIT_MS)
    page.click('[data-step-id="review"]')
    page.wait_for_selector("#approve")
    assert page.locator(".approval .prompt").inner_text() == "Publish the post about <b>console</b>?"
    page.fill("#approval-comment", "looks good")
    page.set_viewport_size({"width": 1600, "height": 760})
    page.wait_for_selector("#step-panel .output-text")
    # The README's picture: rewritten with --update-golden (as the ASL goldens), else taken aside.
    page.screenshot(path=str(ROOT / "docs" / "console-run.png" if update_golden else tmp_path / "console-run.png"))
    page.click("#approve")
    page.wait_for_selector(node(page, "announce", "completed"), timeout=WAIT_MS)
    page.wait_for_selector('#run-status[data-status="succeeded"]', timeout=WAIT_MS)
    review = next(s for s in run_detail(base, run_id)["steps"] if s["step_id"] == "review")
    assert (review["output"]["approved"], review["output"]["comment"]) == (True, "looks good")


def test_the_approvals_page_lists_a_waiting_approval_and_rejects_it(base, page):
    run_id = start(base, "console-approval", {"what": "nothing"})
    page.goto(f"{base}/console/runs/{run_id}")
    page.wait_for_selector(node(page, "review", "waiting_approval"), timeout=WAIT_MS)
    page.goto(f"{base}/console/approvals")
    page.wait_for_selector("body[data-loaded=true]")
    row = page.locator("tr", has=page.locator(f'a[href="/console/runs/{run_id}"]'))
    assert "Publish the post about nothing?" in row.inner_text()
    page.goto(f"{base}/console/workflows/console-approval")
    page.wait_for_selector("body[data-loaded=true]")
    page.click("#workflow-approvals")
    page.wait_for_url("**/console/approvals?workflow=console-approval")
    page.wait_for_selector("body[data-loaded=true]")
    # Only console-approval's approvals, this run's among them.
    assert page.locator("#approvals tbody tr", has=page.locator(f'a[href="/console/runs/{run_id}"]')).count() == 1
    assert page.locator("#approvals tbody tr").count() == page.locator(
        "#approvals tbody tr", has=page.locator('a[href="/console/workflows/console-approval"]')).count()
    page.goto(f"{base}/console/approvals?workflow=console-finished")
    page.wait_for_selector("body[data-loaded=true]")
    assert page.get_by_text("Nothing is waiting.").count() == 1
    page.goto(f"{base}/console/approvals")
    page.wait_for_selector("body[data-loaded=true]")
    row = page.locator("tr", has=page.locator(f'a[href="/console/runs/{run_id}"]'))
    row.locator("button.reject").click()
    row.get_by_text("Rejected.").wait_for()
    detail = finished(base, run_id)
    assert detail["run"]["status"] == "SUCCEEDED"   # a rejection is a decision; "ship" is skipped
    assert {s["step_id"]: s["status"] for s in detail["steps"]}["ship"] == "skipped"


def test_the_start_form_refuses_invalid_json_and_starts_a_run_with_valid_json(base, page):
    page.goto(f"{base}/console/workflows/console-finished")
    page.wait_for_selector("body[data-loaded=true]")
    page.click('[data-step-id="greet"]')
    assert '"skill": "echo-prompt"' in page.locator("#step-config").inner_text()
    page.fill("#run-input", '{"who": ')
    assert page.is_disabled("#start-run")
    assert "Not valid JSON" in page.locator(".form-status").inner_text()
    page.fill("#run-input", '{"who": "the form"}')
    assert page.is_enabled("#start-run")
    page.click("#start-run")
    page.wait_for_url("**/console/runs/*", timeout=WAIT_MS)
    page.wait_for_selector('#run-status[data-status="succeeded"]', timeout=WAIT_MS)
    page.click('[data-step-id="greet"]')
    assert "hello the form" in page.locator(".output-text").inner_text()


def test_the_run_page_shows_the_input_the_run_started_with_as_text(base, page):
    payload = {"who": "<img src=x onerror=window.__pwned=3>", "note": "<b>bold?</b>"}
    run_id = start(base, "console-finished", payload)
    assert finished(base, run_id)["run"]["status"] == "SUCCEEDED"
    page.goto(f"{base}/console/runs/{run_id}")
    page.wait_for_selector("#run-input-box .input-text")
    assert json.loads(page.locator("#run-input-box .input-text").inner_text()) == payload
    assert page.locator("#run-input-box img, #run-input-box b").count() == 0
    assert page.evaluate("window.__pwned") is None
    download = page.locator("#run-input-box a[download]").get_attribute("href")
    assert download == f"/console/data/runs/{run_id}/input?download=1"


def test_the_workflow_page_shows_the_yaml_as_written_with_its_comments(base, page):
    page.goto(f"{base}/console/workflows/console-written")
    page.wait_for_selector("body[data-loaded=true]")
    assert page.locator("pre.definition").text_content() == WRITTEN
    assert page.locator("pre.definition b").count() == 0, "the comment's markup is text"
    assert "As written" in page.locator("#definition-origin").inner_text()


def test_cancel_stops_a_run_and_redrive_resumes_it(base, page):
    run_id = start(base, "console-slow")
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{base}/console/runs/{run_id}")
    page.wait_for_selector("#cancel-run")
    page.click("#cancel-run")
    page.wait_for_selector('#run-status[data-status="aborted"]', timeout=WAIT_MS)
    assert run_detail(base, run_id)["run"]["status"] == "ABORTED"
    page.click("#redrive-run")
    page.wait_for_selector('#run-status[data-status="running"]', timeout=WAIT_MS)
    assert run_detail(base, run_id)["run"]["redrive_count"] == 1
    api_call(base, "POST", f"/runs/{run_id}/cancel")


def test_the_overview_lists_workflows_and_recent_runs(base, page):
    run_id = start(base, "console-finished")
    finished(base, run_id)
    page.goto(f"{base}/console/")
    page.wait_for_selector("body[data-loaded=true]")
    card = page.locator('[data-workflow="console-finished"]')
    assert card.locator("svg .node").count() == 4
    assert page.locator(f'tr[data-run-id="{run_id}"]').count() == 1


def test_an_action_posted_without_the_pages_token_is_refused(base, page):
    page.goto(f"{base}/console/")
    page.wait_for_selector("body[data-loaded=true]")
    status = page.evaluate("""async () => (await fetch('/console/api/workflows/console-finished/runs',
        {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'})).status""")
    assert status == 403


def test_a_sub_workflow_step_links_to_its_child_run(base, page):
    run_id = start(base, "console-parent")
    assert finished(base, run_id)["run"]["status"] == "SUCCEEDED"
    [child] = api_call(base, "GET", "/workflows/console-child/runs")["runs"]
    page.goto(f"{base}/console/runs/{run_id}")
    page.wait_for_selector("body[data-loaded=true]")
    page.click('[data-step-id="call"]')
    page.click(f'.children a[href="/console/runs/{child["run_id"]}"]')
    page.wait_for_selector(node(page, "inner", "completed"))


def test_a_sub_workflow_step_links_to_its_own_child_even_when_another_run_of_the_child_overlaps(base, page):
    run_id = start(base, "console-slow-parent")
    bystander = start(base, "console-slow-child")   # started while the parent's step runs its child
    assert finished(base, run_id)["run"]["status"] == "SUCCEEDED"
    finished(base, bystander)
    step = next(s for s in run_detail(base, run_id)["steps"] if s["step_id"] == "call")
    children = {r["run_id"] for r in api_call(base, "GET", "/workflows/console-slow-child/runs")["runs"]}
    assert children == {step["child_run_id"], bystander}, "two runs of the child overlapped the step"
    page.goto(f"{base}/console/runs/{run_id}")
    page.wait_for_selector("body[data-loaded=true]")
    page.click('[data-step-id="call"]')
    page.wait_for_selector(".children a[href^='/console/runs/']")
    links = page.locator(".children a[href^='/console/runs/']")
    assert [links.nth(i).get_attribute("href") for i in range(links.count())] == [
        f"/console/runs/{step['child_run_id']}"]


def test_a_failed_run_shows_the_failed_step_its_error_and_a_redrive_button(base, page):
    run_id = start(base, "console-failing")
    assert finished(base, run_id)["run"]["status"] == "FAILED"
    page.goto(f"{base}/console/runs/{run_id}")
    page.wait_for_selector("body[data-loaded=true]")
    assert page.get_attribute('[data-step-id="boom"]', "data-status") == "failed"
    assert page.get_attribute('[data-step-id="after"]', "data-status") == "pending"
    assert "step boom failed" in page.locator(".run-head .error").inner_text()
    assert page.locator("#redrive-run").count() == 1 and page.locator("#cancel-run").count() == 0
    page.click('[data-step-id="boom"]')
    assert "no <b>luck</b>" in page.locator("#step-panel .error").first.inner_text()


def test_an_unknown_run_says_so(base, page):
    page.goto(f"{base}/console/runs/no-such-run")
    page.wait_for_selector("body[data-loaded=error]")
    assert "run 'no-such-run' not found" in page.locator("main .error").inner_text()


def test_a_run_of_150_steps_is_drawn_and_followed_to_its_end(base, page):
    run_id = start(base, "console-wide")
    page.goto(f"{base}/console/runs/{run_id}")
    page.wait_for_selector("body[data-loaded=true]")
    assert page.locator("svg .node").count() == 150
    page.wait_for_selector('#run-status[data-status="succeeded"]', timeout=120_000)
    assert page.locator('svg .node[data-status="completed"]').count() == 150


def test_a_claim_checked_output_is_resolved_shown_truncated_and_downloadable_whole(base, page):
    run_id = start(base, "console-large")
    detail = finished(base, run_id)
    [big] = detail["steps"]
    assert "$ref" in big["output"]   # stored aside: the API hands out the reference only
    page.goto(f"{base}/console/runs/{run_id}")
    page.wait_for_selector("body[data-loaded=true]")
    page.click('[data-step-id="big"]')
    shown = page.locator("#step-panel .output-text").inner_text()
    assert shown.startswith('{"type":"code"') and "<i>xxxx" in shown
    assert "Claim-checked output" in page.locator("#step-panel .output").inner_text()
    assert "Shown: the first" in page.locator("#step-panel .output").inner_text()
    href = page.get_attribute("#step-panel .output a[download]", "href")
    whole = page.request.get(base + href).json()
    assert whole["output"] == "<i>" + "x" * 100000
