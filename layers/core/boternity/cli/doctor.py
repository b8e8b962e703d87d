"""`boternity doctor`: a smoke test of a deployed stack (or `boternity serve`) from the outside.

It registers two tiny workflows, runs one through every step function (code, http, skill, agent,
approval, control: a conditional, a for_each Map and a wait), the approval callback path and a
sub-workflow, checks the run's records, and deletes both workflows again, whatever happened.
Every failed check says what to fix: an IAM action and resource when AWS refused one, the route
and status otherwise.

The skill step names a skill that does not exist, and the agent step a model that does not exist
(both ``continue_on_error``): the skill function reads the bucket and answers "not found"; the
agent function reads the stack's Anthropic key and calls the API, which authenticates the key and
answers 404 for the model, so no tokens are spent. A wrong key answers 401 and names itself.
``--agent BOT`` makes one real model call through an existing bot instead.
"""

from __future__ import annotations

import json
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from boternity.cli.client import ApiError, Client

if TYPE_CHECKING:
    from collections.abc import Callable

MISSING = "boternity-doctor-missing"
NO_SUCH_MODEL = "boternity-doctor-no-such-model"

# "User: arn:... is not authorized to perform: states:StartExecution on resource: arn:..."
_DENIED = re.compile(r"not authorized to perform:? ?(?P<action>[\w-]+:[\w*]+)(?: on resource:? ?(?P<resource>\S+))?")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, ok, detail))
        return ok

    def lines(self) -> list[str]:
        return [f"{'ok  ' if c.ok else 'FAIL'} {c.name}" + (f": {c.detail}" if c.detail else "") for c in self.checks]


def fix_hint(message: str) -> str:
    """What to grant, when the message is an AWS access denial; else the message itself."""
    m = _DENIED.search(message or "")
    if not m:
        return message
    resource = (m.group("resource") or "").rstrip(".,;")
    return (f"grant {m.group('action')}" + (f" on {resource}" if resource else "")
            + " to the function's role (template.yaml), then redeploy")


def _workflows(suffix: str, *, api_url: str, local: bool, agent_bot: str | None) -> tuple[str, str, str, str]:
    child = f"boternity-doctor-child-{suffix}"
    parent = f"boternity-doctor-{suffix}"
    child_yaml = f"""name: {child}
description: boternity doctor (deleted when it ends)
steps:
  - {{id: hello, type: code, config: {{language: javascript, source: "({{hello: input}})", input: "{{{{ trigger.who }}}}"}}}}
"""
    agent = (f'{{id: agent, type: agent, config: {{bot: {agent_bot}, prompt: "Reply with the word ok."}}}}'
             if agent_bot else
             f'{{id: agent, type: agent, continue_on_error: true, '
             f'config: {{bot: {MISSING}, model: {NO_SUCH_MODEL}, prompt: "-", max_tokens: 1}}}}')
    parent_yaml = f"""name: {parent}
description: boternity doctor (deleted when it ends)
allow_private_network: {"true" if local else "false"}
timeout_secs: 600
steps:
  - {{id: code, type: code, config: {{language: javascript, source: "[1, 2]"}}}}
  - id: http
    type: http
    config: {{url: "{api_url}/openapi.json", expect_status: [200, 401, 403], timeout_secs: 20}}
  - {{id: skill, type: skill, continue_on_error: true, config: {{skill: {MISSING}, input: "-"}}}}
  - {agent}
  - {{id: route, type: conditional, depends_on: [code], config: {{condition: "1 == 1", then_steps: [each]}}}}
  - {{id: each, type: code, for_each: "{{{{ steps.code.output.output }}}}",
     config: {{language: javascript, source: "input * 2", input: "{{{{ item }}}}"}}}}
  - {{id: pause, type: wait, config: {{seconds: 1}}}}
  - {{id: review, type: approval, depends_on: [each, http, skill, agent, pause],
     config: {{prompt: "boternity doctor: approve to finish", timeout_secs: 300}}}}
  - id: child
    type: sub_workflow
    depends_on: [review]
    config: {{workflow_name: {child}, input: {{who: doctor}}}}
"""
    return child, child_yaml, parent, parent_yaml


class Doctor:
    """Runs the checks against ``client``; ``sleep`` and ``clock`` are injectable for tests."""

    def __init__(self, client: Client, *, agent_bot: str | None = None, timeout: float = 300,
                 say: Callable[[str], None] | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.agent_bot = agent_bot
        self.timeout = timeout
        self.say = say or (lambda _line: None)
        self.sleep, self.clock = sleep, clock
        self.report = Report()

    def _call(self, name: str, method: str, path: str, body: Any = None, *, ctype: str = "application/json"
              ) -> Any:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        try:
            out = self.client.request(method, path, body=data, content_type=ctype)
        except ApiError as exc:
            hint = fix_hint(exc.message)
            if exc.status == 403 and hint == exc.message:
                hint = ("the API refused the credentials: they need execute-api:Invoke on the stage's routes "
                        "(see the README's deploy section)")
            self.report.add(name, False, f"{method} {path} answered {exc.status}: {hint}")
            raise
        self.report.add(name, True)
        self.say(f"ok   {name}")
        return out

    def run(self) -> Report:
        suffix = uuid.uuid4().hex[:8]
        child, child_yaml, parent, parent_yaml = _workflows(
            suffix, api_url=self.client.base, local=self.client._local(), agent_bot=self.agent_bot)
        registered: list[str] = []
        try:
            self._call("the API answers signed requests", "GET", "/openapi.json")
            for name, text in ((child, child_yaml), (parent, parent_yaml)):
                self._call(f"register workflow {name} (creates its state machine)", "PUT",
                           f"/workflows/{quote(name)}", text.encode(), ctype="application/yaml")
                registered.append(name)
            started = self._call("start a run", "POST", f"/workflows/{quote(parent)}/runs", {})
            self._follow(str(started["run_id"]))
        except ApiError:
            pass  # already in the report
        finally:
            for name in reversed(registered):
                try:
                    self._call(f"delete workflow {name} (its state machine too)", "DELETE",
                               f"/workflows/{quote(name)}")
                except ApiError:
                    pass
        return self.report

    def _poll(self, run_id: str, until: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        deadline = self.clock() + self.timeout
        while True:
            data = self.client.request("GET", f"/runs/{quote(run_id)}")
            if until(data):
                return data
            if self.clock() > deadline:
                return None
            self.sleep(1.0)

    def _follow(self, run_id: str) -> None:
        def steps(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
            return {s["step_id"]: s for s in data.get("steps", []) if not s.get("iteration")}

        def final(data: dict[str, Any]) -> bool:
            return data.get("run", {}).get("status") not in (None, "RUNNING", "QUEUED")

        waiting = self._poll(run_id, lambda d: final(d) or steps(d).get("review", {}).get("status")
                             == "waiting_approval")
        if waiting is None:
            self.report.add("the run reaches the approval step", False,
                            f"still running after {self.timeout:.0f} s: GET /runs/{run_id} shows where it stopped")
            return
        if final(waiting):
            self._explain(waiting)
            return
        self.report.add("every step function ran up to the approval (agent, skill, http, code, control, wait)", True)
        approval_id = (steps(waiting)["review"].get("output") or {}).get("approval_id")
        self._call("approve through the API (the callback path: SendTaskSuccess)", "POST",
                   f"/approvals/{quote(str(approval_id))}/decision", {"approved": True, "comment": "doctor"})
        done = self._poll(run_id, final)
        if done is None:
            self.report.add("the run finishes after the approval", False,
                            f"still running after {self.timeout:.0f} s: GET /runs/{run_id}")
            return
        self._explain(done)

    def _explain(self, data: dict[str, Any]) -> None:
        run = data.get("run", {})
        by_id = {s["step_id"]: s for s in data.get("steps", []) if not s.get("iteration")}
        if run.get("status") != "SUCCEEDED":
            failed = [s for s in by_id.values() if s.get("status") == "failed"]
            where = "; ".join(f"step {s['step_id']}: {fix_hint(str(s.get('error') or ''))}" for s in failed)
            self.report.add("the run succeeds", False,
                            f"{run.get('status')}: {fix_hint(str(run.get('cause') or run.get('error') or ''))}"
                            + (f" ({where})" if where else ""))
            return
        self.report.add("the run succeeds (approval resumed it, the sub-workflow ran)", True)
        skill = by_id.get("skill", {})
        text = f"{skill.get('error') or ''} {json.dumps(skill.get('output'))}"
        self.report.add("skill function reads the bucket (the missing skill is reported as such)",
                        "not found" in text.lower(), fix_hint(text[:300]))
        agent = by_id.get("agent", {})
        text = f"{agent.get('error') or ''} {json.dumps(agent.get('output'))}"
        if self.agent_bot:
            self.report.add("agent function calls the model with the stack's key",
                            agent.get("status") == "completed", "" if agent.get("status") == "completed"
                            else fix_hint(text[:300]))
        else:
            self.report.add("agent function reaches the Anthropic API with a valid key (the model is unknown)",
                            "agent.not_found" in text, fix_hint(text[:300]))
        child = (by_id.get("child", {}).get("output") or {}).get("hello", {})
        self.report.add("sub-workflow output reaches the parent", child.get("status") == "completed",
                        "" if child.get("status") == "completed" else json.dumps(child)[:300])
        each = by_id.get("each", {}).get("output")
        self.report.add("for_each gathers its items", isinstance(each, list) and len(each) == 2, json.dumps(each)[:200])


def cmd_doctor(args: Any) -> int:
    client = Client(args.api, api_key=args.api_key)
    print(f"boternity doctor: {client.base}", file=sys.stderr)
    report = Doctor(client, agent_bot=args.agent, timeout=args.timeout).run()
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1
