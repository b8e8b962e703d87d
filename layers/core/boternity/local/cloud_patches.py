"""moto patches for the cloud side of the local runtime (moto 5.2.5; tests in
tests/functional/test_triggers.py and test_api.py fail loudly when moto changes under them).

Separate from ``moto_patches`` (the step runtime's patches) and applied by whoever emulates the
cloud (``apply()``; idempotent): the API and webhook handlers never import this module.

1. **RedriveExecution** (moto raises ``NotImplementedError``). The stand-in resumes the *same*
   execution (same name and ARN, as AWS does) from its last top-level state that is not a Fail
   state, with that state's recorded input: the step that failed (a caught failure is routed to a
   ``<step>.failed`` Fail state, which would only fail again). Limits: a failed Parallel or Map
   state re-runs as a whole (AWS re-runs only the failed branches or items); the history restarts.
2. **EventBridge rules with Lambda or Step Functions targets** (moto raises
   ``NotImplementedError`` for both, failing the whole ``put_events``). Lambda targets are invoked
   asynchronously, as EventBridge does, through moto's Lambda backend (whose invoke
   ``moto_patches`` routes to the in-process handlers); Step Functions targets start an execution.
   ``Input``, ``InputPath`` and ``InputTransformer`` (paths and the reserved variables
   ``<aws.events.event.json>``, ``<aws.events.rule-name>``, ``<aws.events.rule-arn>``) apply;
   other targets go to moto unchanged.

DynamoDB writes (transactions included) are made atomic by ``moto_patches`` (one lock for every
local mode), not here.

S3 ObjectCreated → Lambda needs no patch here: ``moto_patches`` already routes
``LambdaFunction.invoke`` (which S3 notifications call) to the handlers. The function must exist
in moto's Lambda: :func:`install_trigger_function` creates the webhook function there.
"""

from __future__ import annotations

import copy
import datetime
import json
import re
import threading
import uuid
from typing import Any

_lock = threading.Lock()
_originals: dict[str, Any] = {}


# ---------------------------------------------------------------------- 1. RedriveExecution


def redrive_local(backend: Any, execution_arn: str) -> datetime.datetime:
    """Resume a FAILED, TIMED_OUT or ABORTED execution of moto's interpreter in place."""
    from moto.stepfunctions.parser.backend.execution import Execution

    execution = backend.describe_execution(execution_arn)
    status = str(getattr(execution.status, "value", execution.status))
    if status not in ("FAILED", "TIMED_OUT", "ABORTED"):
        raise _not_redrivable(f"Execution {execution_arn} is {status}, not FAILED, TIMED_OUT or ABORTED")
    definition = json.loads(execution.state_machine.definition)
    states = definition.get("States", {})
    entered = [e["stateEnteredEventDetails"] for e in execution.to_history_output()["events"]
               if str(e.get("type", "")).endswith("StateEntered") and e.get("stateEnteredEventDetails")]
    resume = [d for d in entered if d.get("name") in states and states[d["name"]].get("Type") != "Fail"]
    start_at, start_input = (resume[-1]["name"], resume[-1].get("input") or "{}") if resume \
        else (definition["StartAt"], execution.execution_input)
    machine = backend._get_state_machine_for_execution(execution_arn)
    snapshot = copy.deepcopy(execution.state_machine, {id(execution.state_machine.executions): [],
                                                        id(execution.state_machine.backend): execution.state_machine.backend})
    snapshot.definition = json.dumps({**definition, "StartAt": start_at})
    redriven = Execution(
        name=execution.name, sm_type=execution.sm_type, role_arn=execution.role_arn, exec_arn=execution.exec_arn,
        account_id=execution.account_id, region_name=execution.region_name, state_machine=snapshot,
        start_date=execution.start_date, cloud_watch_logging_session=None, activity_store={},
        input_data=start_input,
    )
    redriven.execution_input = execution.execution_input   # describe_execution shows the original input
    redriven.redrive_count = int(getattr(execution, "redrive_count", 0)) + 1
    redriven.redrive_date = datetime.datetime.now(tz=datetime.UTC)
    machine.executions[machine.executions.index(execution)] = redriven
    redriven.start()
    return redriven.redrive_date


def _not_redrivable(message: str) -> Exception:
    from moto.core.exceptions import AWSError

    class ExecutionNotRedrivable(AWSError):
        TYPE = "ExecutionNotRedrivable"
        STATUS = 400

    return ExecutionNotRedrivable(message)


def _patch_redrive() -> None:
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def redrive_execution(self: Any) -> Any:
        when = redrive_local(self.stepfunction_backend, self._get_param("executionArn"))
        return ActionResult({"redriveDate": when})

    _originals.setdefault("redrive", getattr(StepFunctionResponse, "redrive_execution", None))
    StepFunctionResponse.redrive_execution = redrive_execution


# ---------------------------------------------------------------------- 2. EventBridge targets


_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


def _json_path(path: str, data: Any) -> Any:
    """The simple JSON paths EventBridge input paths use: ``$``, ``$.a.b``, ``$.a[0]``."""
    if path == "$":
        return data
    value = data
    for name, index in re.findall(r"\.([^.\[\]]+)|\[(\d+)\]", path[1:]):
        try:
            value = value[name] if name else value[int(index)]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def target_input(rule: Any, target: dict[str, Any], event: dict[str, Any]) -> Any:
    """What EventBridge hands a target: the event, or ``Input``/``InputPath``/``InputTransformer``'s result."""
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        return _json_path(target["InputPath"], event)
    transformer = target.get("InputTransformer")
    if not transformer:
        return event
    values: dict[str, Any] = {k: _json_path(v, event) for k, v in (transformer.get("InputPathsMap") or {}).items()}
    values.update({"aws.events.event.json": event, "aws.events.event": event, "aws.events.rule-name": rule.name,
                   "aws.events.rule-arn": rule.arn, "aws.events.event.ingestion-time": event.get("time")})
    template = transformer.get("InputTemplate") or ""

    def fill(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            return m.group(0)
        value = values[key]
        # Inside quotes a string goes in as text (JSON-escaped); elsewhere the value as JSON.
        quoted = m.start() > 0 and template[m.start() - 1] == '"' and template[m.end():m.end() + 1] == '"'
        if quoted:
            text = value if isinstance(value, str) else json.dumps(value)
            return json.dumps(text)[1:-1]
        return json.dumps(value)

    text = _PLACEHOLDER.sub(fill, template)
    try:
        return json.loads(text)
    except ValueError:
        return text


def _deliver(rule: Any, target: dict[str, Any], event: dict[str, Any]) -> None:
    from moto.awslambda.utils import get_backend as lambda_backend
    from moto.stepfunctions.responses import get_backend as sfn_backend

    payload = target_input(rule, target, event)
    arn = target["Arn"]
    service = arn.split(":")[2]
    account, region = arn.split(":")[4], arn.split(":")[3]
    if service == "lambda":
        def invoke() -> None:
            try:
                lambda_backend(account, region).invoke(arn, None, json.dumps(payload), {}, {})
            except Exception:  # noqa: BLE001 - an async invocation's failure never reaches put_events
                pass

        threading.Thread(target=invoke, daemon=True).start()
    else:
        sfn_backend(account, region).start_execution(arn, name=uuid.uuid4().hex, execution_input=json.dumps(payload))


def _patch_event_targets() -> None:
    from moto.events.models import Rule

    original = Rule.send_to_targets
    _originals.setdefault("send_to_targets", original)

    def send_to_targets(self: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
        if not self.event_pattern.matches_event(original_event):
            return
        if str(getattr(self, "state", "ENABLED")) != "ENABLED":
            return
        ours = [t for t in self.targets if t["Arn"].split(":")[2] in ("lambda", "states")]
        for t in ours:
            _deliver(self, t, original_event)
        others = [t for t in self.targets if t not in ours]
        if others:
            rest = copy.copy(self)       # never mutate the shared rule: put_events may run in threads
            rest.targets = others
            original(rest, original_event, transform_input)

    Rule.send_to_targets = send_to_targets


# ---------------------------------------------------------------------- wiring


def apply() -> None:
    """Apply the patches once per process (after ``moto_patches.apply()``)."""
    with _lock:
        if _originals.get("applied"):
            return
        _patch_redrive()
        _patch_event_targets()
        _originals["applied"] = True


def install_trigger_function(*, name: str = "boternity-webhook", role_arn: str, region: str = "us-east-1") -> str:
    """Create the webhook function in moto's Lambda and route it to ``boternity.handlers.webhook``
    in-process: the target of S3 notifications and of event triggers with ``when``. Returns its ARN."""
    import io
    import zipfile

    import boto3

    from boternity.local import moto_patches

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", "def lambda_handler(event, context):\n    return event\n")
    lam = boto3.client("lambda", region_name=region)
    try:
        arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    except lam.exceptions.ResourceNotFoundException:
        arn = lam.create_function(FunctionName=name, Runtime="python3.12", Role=role_arn,
                                  Handler="app.lambda_handler", Code={"ZipFile": buf.getvalue()})["FunctionArn"]

    def handler(event: dict[str, Any], context: Any) -> Any:
        from boternity.handlers.webhook import lambda_handler

        return lambda_handler(event, context)

    moto_patches.HANDLERS[name] = handler
    return str(arn)
