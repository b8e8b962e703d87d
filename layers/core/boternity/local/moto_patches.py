"""Every patch of moto internals, in one module (moto 5.2.5: ``apply()`` refuses another version
unless told otherwise; tests/functional/test_moto_patches.py fails loudly when moto changes under these).

1. Lambda invocations are dispatched in-process to our handler functions (no Docker); a state
   machine's ``lambda:invoke`` task calls the handler directly, without a boto3 client per call.
2. ``states:startExecution.sync:2`` works (upstream getmoto/moto#10076: the parameters are not
   converted to boto3's names), and its completion poll is shortened from 0.5 s. When the parent
   stops (cancelled, failed, timed out) while the child runs, the child is stopped too, as AWS does
   for a ``.sync`` task (hence the parent role's ``states:StopExecution``); moto left it running.
3. StopExecution interrupts tasks waiting for a callback (moto leaves them RUNNING); a task token
   whose task timed out or whose execution ended, or was asked to stop (moto's status turns
   ABORTED only when the worker thread notices), answers TaskTimedOut, as AWS does.
4. Optionally, Retry intervals do not really sleep (tests only; local runs keep real backoff).
5. A definite JSONPath such as ``$[0].steps`` yields the value, as in AWS; moto wraps it in a list
   (its fix for getmoto/moto#7825 applies to every path that starts with an index), which breaks
   merging Parallel results (``$[0].ctx``, ``States.JsonMerge($[0].steps, ...)``).
6. Execution status changes are delivered as the "Step Functions Execution Status Change" events
   AWS sends to EventBridge (moto emits none): every function in ``STATUS_LISTENERS`` receives the
   event, in a thread of its own, when an execution starts and when it ends.
7. DynamoDB operations are atomic, as in AWS: moto applies an UpdateItem in steps (two threads
   updating the same new item can lose one write; the cross-branch signal relies on atomic
   UpdateItem with ReturnValues), and checks a transaction item by item, restoring a copy of the
   whole table on a failed condition (undoing other threads' writes). Every operation of moto's
   DynamoDB backend holds one re-entrant lock.
8. A definition is parsed once: its program is kept pickled (``ParsedPrograms``; in this process,
   bounded, and optionally on disk), and each execution unpickles its own copy (a program holds
   its execution's state, so one serves one execution, as in moto). moto's parser takes about
   5 ms a state; unpickling about 1 ms.
9. States are copied as JSON (``json_copy``) where moto deep-copies them at every state, and not
   at all where moto copies a state's input only to read it (its history events, the 256 KiB
   quota) or copies a value nobody else holds (``_patch_state_reads``).
10. moto's Step Functions interpreter is imported without moto.ec2 (half a second of start-up).
11. A ResultPath of plain field names (``$.steps.fetch``) copies only the objects on its path and
    shares the rest of the state with the input, and the whole-state input and output of a
    state's entered and exited history events are serialised when the history is read, not at
    every state, and the 256 KiB quota measures a state from the sizes of its parts (``json_size``). Both rest on what patch 9 already does: no state value is changed in place once
    a state holds it. Each of these was a pass over the whole state at every state, so a step cost
    more the more records the run held (``SHARED_STATES`` switches both off, for the
    differential test that checks they change nothing a run or its history shows).
"""

from __future__ import annotations

import datetime
import io
import json
import re
import threading
import types
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]

HANDLERS: dict[str, Handler] = {}
STATUS_LISTENERS: list[Callable[[dict[str, Any]], None]] = []
_lock = threading.Lock()
_applied = False
_fast_retry = False


class _LocalContext:
    """The bits of a LambdaContext our handlers and Powertools read."""

    def __init__(self, name: str) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = "local"
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def _function_name(function_name: str) -> str:
    return function_name.split(":function:")[-1].split(":")[0]


def _dispatch(name: str, body: Any) -> tuple[bytes, str | None]:
    """Run a function's handler as the Lambda runtime would: JSON in, JSON out, an exception
    becoming ``{"errorType", "errorMessage"}`` with the function error ``Unhandled``."""
    handler = HANDLERS.get(name)
    if handler is None:
        return (json.dumps({"errorType": "FunctionNotFound", "errorMessage": f"no local handler for {name}"}).encode(),
                "Unhandled")
    try:
        event = json.loads(body) if body else {}
        return json.dumps(handler(event, _LocalContext(name))).encode(), None
    except Exception as exc:  # noqa: BLE001 - this IS the Lambda runtime's error boundary
        # Step Functions sees Error = the exception's class name, as with the real Python runtime.
        return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode(), "Unhandled"


def _invoke(self: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any) -> bytes:
    payload, error = _dispatch(_function_name(function_name), body)
    if error:
        response_headers["x-amz-function-error"] = error
    return payload


def _patch_sfn_lambda_direct() -> None:
    """A ``lambda:invoke`` task calls the handler directly instead of through a new boto3 client and
    moto's Lambda API (a client per invocation, serialised twice: a third of a step's cost). The
    payload still crosses as JSON bytes, and the answer has the integration's shape (StatusCode,
    ExecutedVersion, Payload, FunctionError), so the state machine sees what it sees in AWS.
    Functions without a local handler go the original way."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils as leu

    invoke0 = leu._invoke_lambda_function

    def invoke(parameters: dict[str, Any], region: str, state_credentials: Any) -> dict[str, Any]:
        name = _function_name(str(parameters.get("FunctionName", "")))
        if name not in HANDLERS or parameters.get("InvocationType", "RequestResponse") != "RequestResponse":
            return invoke0(parameters, region, state_credentials)
        payload, error = _dispatch(name, parameters.get("Payload"))
        response: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST",
                                    "Payload": leu._from_payload(io.BytesIO(payload))}
        if error:
            response["FunctionError"] = error
        return response

    leu._invoke_lambda_function = invoke


def _patch_sfn_sync() -> None:
    import botocore.session
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_mod,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )
    from moto.stepfunctions.parser.utils import camel_to_snake_case

    models: dict[str, Any] = {}

    def op_model(self: Any, svc: str, act: str) -> Any:
        svc = self._get_boto_service_name(svc)
        act = self._get_boto_service_action(act)
        m = models.get(svc) or models.setdefault(svc, botocore.session.get_session().get_service_model(svc))
        return next(m.operation_model(o) for o in m.operation_names if camel_to_snake_case(o) == act)

    orig = StateTaskServiceSfn._normalise_parameters

    def norm_params(self: Any, parameters: Any, boto_service_name: Any = None, service_action_name: Any = None) -> None:
        orig(self, parameters, boto_service_name, service_action_name)
        self._to_boto_request(parameters, op_model(self, boto_service_name, service_action_name).input_shape)

    def norm_resp(self: Any, response: Any, boto_service_name: Any = None, service_action_name: Any = None) -> None:
        self._from_boto_response(response, op_model(self, boto_service_name, service_action_name).output_shape)
        for k, v in list(response.items()):
            if isinstance(v, datetime.datetime):
                response[k] = int(v.timestamp() * 1000)  # AWS returns epoch milliseconds

    StateTaskServiceSfn._normalise_parameters = norm_params
    StateTaskServiceSfn._normalise_response = norm_resp
    callback_mod._DELAY_SECONDS_SYNC_CONDITION_CHECK = 0.02

    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    class ChildResolver:
        """moto's completion poll, remembering which child execution it polls."""

        def __init__(self, resolve: Callable[[], Any], child_arn: str | None, region: str, credentials: Any) -> None:
            self._resolve, self.child_arn, self._region, self._credentials = resolve, child_arn, region, credentials

        def __call__(self) -> Any:
            return self._resolve()

        def stop_child(self, env: Any) -> None:
            state = env.program_state()
            error = getattr(state, "error", None) if isinstance(state, ProgramStopped) else None
            cause = getattr(state, "cause", None) if isinstance(state, ProgramStopped) else None
            from botocore.exceptions import ClientError

            sfn = boto_client_for(region=self._region, service="stepfunctions", state_credentials=self._credentials)
            try:
                if sfn.describe_execution(executionArn=self.child_arn)["status"] == "RUNNING":
                    sfn.stop_execution(executionArn=self.child_arn, error=error or "States.Aborted",
                                       cause=cause or "the parent execution ended while this one ran")
            except ClientError:
                pass  # best effort, as in AWS: the child ended (or was never created) meanwhile

    def with_child(build: Any) -> Any:
        def build_resolver(self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: Any,
                           state_credentials: Any) -> Any:
            top = env.stack[-1] if env.stack else None
            child_arn = top.get("ExecutionArn") if isinstance(top, dict) else None
            resolve = build(self, env=env, resource_runtime_part=resource_runtime_part,
                            normalised_parameters=normalised_parameters, state_credentials=state_credentials)
            if resolve is None:
                return None
            return ChildResolver(resolve, child_arn, resource_runtime_part.region, state_credentials)
        return build_resolver

    StateTaskServiceSfn._build_sync_resolver = with_child(StateTaskServiceSfn._build_sync_resolver)
    StateTaskServiceSfn._build_sync2_resolver = with_child(StateTaskServiceSfn._build_sync2_resolver)
    eval_sync0 = StateTaskServiceSfn._eval_sync

    def eval_sync(self: Any, env: Any, sync_resolver: Any, **kwargs: Any) -> Any:
        try:
            return eval_sync0(self, env=env, sync_resolver=sync_resolver, **kwargs)
        finally:
            if not env.is_running() and isinstance(sync_resolver, ChildResolver) and sync_resolver.child_arn:
                sync_resolver.stop_child(env)

    StateTaskServiceSfn._eval_sync = eval_sync


def _patch_callback_timeout() -> None:
    """A task token whose task timed out answers SendTaskSuccess/Failure with TaskTimedOut, as AWS
    does. moto never marks the token, so a late decision "succeeded" while the run had already
    taken the timeout path, and the approval record claimed a decision that changed nothing."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import (
        CallbackConsumerTimeout,
        CallbackOutcomeTimedOut,
    )

    wait0 = StateTaskServiceCallback._eval_wait_for_task_token

    def wait(self: Any, env: Any, timeout_seconds: Any, callback_endpoint: Any, heartbeat_endpoint: Any) -> Any:
        outcome = wait0(self, env, timeout_seconds, callback_endpoint, heartbeat_endpoint)
        if isinstance(outcome, CallbackOutcomeTimedOut):
            callback_endpoint.report(CallbackConsumerTimeout())
        return outcome

    StateTaskServiceCallback._eval_wait_for_task_token = wait

    # The state's own TimeoutSeconds fires in another thread than the callback wait above and is
    # recorded (TaskTimedOut) first: mark the token before that error leaves the state, so no
    # decision can slip in between the recorded timeout and the mark.
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import EvalTimeoutError
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState

    evaluate0 = ExecutionState._evaluate_with_timeout

    def evaluate(self: Any, env: Any) -> None:
        try:
            evaluate0(self, env)
        except EvalTimeoutError:
            token = (env.states.context_object.context_object_data.get("Task") or {}).get("Token")
            endpoint = env.callback_pool_manager.get(token) if token else None
            if endpoint is not None and endpoint.get_outcome() is None:
                endpoint.report(CallbackConsumerTimeout())
            raise

    ExecutionState._evaluate_with_timeout = evaluate

    # moto's own answer to such a token is broken (it tests the wrong object and builds its
    # errors without the message they require, so the caller gets a TypeError): answer here.
    from moto.core.exceptions import AWSError
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    def refuse_closed(backend: Any, token: str) -> None:
        for execution in backend._get_executions():
            endpoint = execution.exec_worker.env.callback_pool_manager.get(token) if execution.exec_worker else None
            if endpoint is None:
                continue
            # A stopped execution's status turns ABORTED only when its worker thread notices the
            # stop; AWS refuses the token from the StopExecution call on (see _patch_stop).
            if (isinstance(endpoint.consumer_error, CallbackConsumerTimeout) or execution.status != "RUNNING"
                    or getattr(execution, "stop_requested", False)):
                raise AWSError("Task Timed Out: the task of this token timed out or its execution ended",
                               exception_type="TaskTimedOut")
            return
        raise AWSError("Invalid Token: no task waits for this token", exception_type="InvalidToken")

    success0, failure0 = StepFunctionsParserBackend.send_task_success, StepFunctionsParserBackend.send_task_failure

    def send_task_success(self: Any, task_token: str, outcome: str) -> Any:
        refuse_closed(self, task_token)
        return success0(self, task_token, outcome)

    def send_task_failure(self: Any, task_token: str, error: Any = None, cause: Any = None) -> Any:
        refuse_closed(self, task_token)
        return failure0(self, task_token, error, cause)

    StepFunctionsParserBackend.send_task_success = send_task_success
    StepFunctionsParserBackend.send_task_failure = send_task_failure


def _patch_stop() -> None:
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
    from moto.stepfunctions.parser.backend.execution import Execution

    stop0, err0 = Execution.stop, Environment.set_error

    def stop(self: Any, stop_date: Any, error: Any, cause: Any) -> None:
        self.stop_requested = True   # before the worker thread turns the status ABORTED (refuse_closed)
        stop0(self, stop_date=stop_date, error=error, cause=cause)
        if self.exec_worker:  # wake the threads blocked on callback endpoints
            for ep in list(self.exec_worker.env.callback_pool_manager._pool.values()):
                ep.interrupt_all()

    def set_error(self: Any, error: Any) -> None:
        if not isinstance(self._program_state, ProgramStopped):  # the wake-up is not a timeout
            err0(self, error)

    Execution.stop = stop
    Environment.set_error = set_error


def _patch_retry_sleep() -> None:
    import time as _time

    import moto.stepfunctions.parser.asl.component.common.retry.retrier_decl as rd

    def sleep(seconds: float) -> None:
        if not _fast_retry:
            _time.sleep(seconds)

    rd.time = types.SimpleNamespace(sleep=sleep)


_DEFINITE = re.compile(r"^\$(\.[A-Za-z0-9_-]+|\[\d+\])*$")
_SEGMENT = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]")
_JSON_PATH_USERS = (
    "moto.stepfunctions.parser.asl.component.intrinsic.argument.argument",
    "moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations.timestamp_operators",
    "moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations.boolean_equals",
    "moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations.numeric",
    "moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations.string_operators",
    "moto.stepfunctions.parser.asl.eval.states",
    "moto.stepfunctions.parser.asl.component.common.string.string_expression",
)


def _patch_definite_paths() -> None:
    import importlib

    from moto.stepfunctions.parser.asl.utils import json_path

    orig = json_path.extract_json

    def extract_json(path: str, data: Any) -> Any:
        if path == "$" or not _DEFINITE.match(path):
            return orig(path, data)
        value = data
        try:
            for name, index in _SEGMENT.findall(path):
                value = value[name] if name else value[int(index)]
        except (KeyError, IndexError, TypeError):
            return orig(path, data)  # let moto raise its own "no such path" error
        return value

    json_path.extract_json = extract_json
    for mod in _JSON_PATH_USERS:
        m = importlib.import_module(mod)
        if hasattr(m, "extract_json"):
            m.extract_json = extract_json


def status_event(execution: Any) -> dict[str, Any]:
    """An EventBridge "Step Functions Execution Status Change" event for a moto execution."""
    import uuid

    d = execution.to_describe_output()

    def ms(v: Any) -> int | None:
        return int(v.timestamp() * 1000) if v else None

    status = d["status"]
    return {
        "version": "0", "id": uuid.uuid4().hex, "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states", "account": execution.account_id, "region": execution.region_name,
        "time": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": [d["executionArn"]],
        "detail": {
            "executionArn": d["executionArn"], "stateMachineArn": d["stateMachineArn"], "name": d["name"],
            "status": str(getattr(status, "value", status)), "startDate": ms(d.get("startDate")),
            "stopDate": ms(d.get("stopDate")), "input": d.get("input"), "output": d.get("output"),
            "error": d.get("error"), "cause": d.get("cause"),
            # As AWS: how many times this execution was redriven (the events function tells a late
            # event of an earlier attempt by it).
            "redriveCount": int(getattr(execution, "redrive_count", 0) or 0),
        },
    }


def _patch_status_events() -> None:
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution

    start0, term0 = Execution.start, BaseExecutionWorkerCommunication.terminated

    def deliver(execution: Any) -> None:
        if not STATUS_LISTENERS:
            return
        event = status_event(execution)
        for listener in list(STATUS_LISTENERS):
            threading.Thread(target=listener, args=(event,), daemon=True).start()

    def start(self: Any) -> None:
        start0(self)
        deliver(self)

    def terminated(self: Any) -> None:
        term0(self)
        deliver(self.execution)

    Execution.start = start
    BaseExecutionWorkerCommunication.terminated = terminated


_DDB_LOCK = threading.RLock()


def _patch_dynamodb_atomic() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    for name in ("put_item", "get_item", "query", "scan", "update_item", "delete_item", "transact_write_items",
                 "batch_write_item", "batch_get_item"):
        original = getattr(DynamoDBBackend, name)

        def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _DDB_LOCK:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)


class ParsedPrograms:
    """Parsed state machine programs by definition, kept as pickles.

    moto parses a definition with an ANTLR parser in pure Python: about 5 ms a state, the largest
    single cost of a local run. A program holds its execution's state, so each execution needs its
    own copy; unpickling one is 5-10x faster than parsing. Kept in this process (at most
    ``max_bytes`` of pickles, least recently used dropped first) and, when ``directory`` is set, on
    disk, so the next ``boternity run`` of the same workflow skips the parse too.

    The disk cache holds pickles, so it is only read from a folder that this user owns and nobody
    else can write to (files likewise); anything else is ignored and the definition parsed.
    """

    def __init__(self, *, max_bytes: int = 64 * 1024 * 1024, directory: str | None = None,
                 disk_max_bytes: int = 256 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.directory = directory
        self.disk_max_bytes = disk_max_bytes
        self._pickles: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    @staticmethod
    def key(definition: str) -> str:
        import hashlib
        import platform

        import moto

        tag = f"{moto.__version__}|{platform.python_version()}|"
        return hashlib.sha256((tag + definition).encode("utf-8")).hexdigest()

    def parse(self, definition: str) -> Any:
        """A fresh program for one execution of ``definition`` (parsed only if no pickle is kept)."""
        import pickle

        key = self.key(definition)
        data = self._get(key)
        if data is not None:
            try:
                return pickle.loads(data)
            except Exception:  # noqa: BLE001 - a stale or damaged pickle: parse instead
                self._drop(key)
        from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

        program, _ = AmazonStateLanguageParser.parse(definition)
        try:
            data = pickle.dumps(program, protocol=pickle.HIGHEST_PROTOCOL)
        except (RecursionError, pickle.PicklingError, TypeError, AttributeError):
            return program  # not picklable: this definition is parsed every time
        self._put(key, data)
        return program

    def known(self, definition: str) -> bool:
        return self._get(self.key(definition)) is not None

    def clear(self) -> None:
        with self._lock:
            self._pickles.clear()
            self._size = 0

    # ------------------------------------------------------------------ storage
    def _get(self, key: str) -> bytes | None:
        with self._lock:
            data = self._pickles.get(key)
            if data is not None:
                self._pickles.move_to_end(key)
                return data
        data = self._read_disk(key)
        if data is not None:
            self._remember(key, data)
        return data

    def _put(self, key: str, data: bytes) -> None:
        self._remember(key, data)
        self._write_disk(key, data)

    def _remember(self, key: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            old = self._pickles.pop(key, None)
            self._size -= len(old) if old is not None else 0
            self._pickles[key] = data
            self._size += len(data)
            while self._size > self.max_bytes:
                _, dropped = self._pickles.popitem(last=False)
                self._size -= len(dropped)

    def _drop(self, key: str) -> None:
        with self._lock:
            old = self._pickles.pop(key, None)
            self._size -= len(old) if old is not None else 0
        if self.directory:
            import contextlib
            import os

            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.directory, key + ".pickle"))

    def _private(self, path: str) -> bool:
        import os
        import stat

        st = os.lstat(path)
        return (st.st_uid == os.getuid() and not stat.S_ISLNK(st.st_mode)
                and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))

    def _read_disk(self, key: str) -> bytes | None:
        if not self.directory:
            return None
        import os

        path = os.path.join(self.directory, key + ".pickle")
        try:
            if not (self._private(self.directory) and self._private(path)):
                return None
            with open(path, "rb") as f:
                data = f.read(self.max_bytes + 1)
            os.utime(path)   # used now: the disk cache drops the least recently used first
            return data
        except OSError:
            return None

    def _write_disk(self, key: str, data: bytes) -> None:
        if not self.directory:
            return
        import os
        import tempfile

        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            if not self._private(self.directory):
                return
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, os.path.join(self.directory, key + ".pickle"))
            self._trim_disk()
        except OSError:
            pass  # a cache that cannot be written is only slower

    def _trim_disk(self) -> None:
        """Keep the folder under ``disk_max_bytes``: least recently used programs go first (one
        file per distinct definition, so every edit of a workflow adds one)."""
        import os

        entries = []
        with os.scandir(self.directory) as it:
            for e in it:
                if e.name.endswith(".pickle") and e.is_file(follow_symlinks=False):
                    st = e.stat(follow_symlinks=False)
                    entries.append((st.st_mtime, st.st_size, e.path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.disk_max_bytes:
                break
            os.unlink(path)
            total -= size


PROGRAMS = ParsedPrograms()


def set_parse_cache_dir(directory: str | None) -> None:
    """Keep parsed programs on disk in ``directory`` too (None: in this process only)."""
    PROGRAMS.directory = directory


def _patch_parse_once() -> None:
    from moto.stepfunctions.parser import models
    from moto.stepfunctions.parser.asl.parse.asl_parser import ASLParserException
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    def validate_and_keep(definition: str) -> None:
        # moto's _validate_definition, keeping what it parsed.
        if PROGRAMS.known(definition):
            return
        try:
            PROGRAMS.parse(definition)
        except ASLParserException as exc:
            raise models.InvalidDefinition(message=repr(exc)) from None
        except Exception as exc:  # noqa: BLE001 - as moto: any parser failure is an invalid definition
            raise models.InvalidDefinition(
                message=f"Error={exc.__class__.__name__} Args={list(exc.args)} in definition '{definition}'."
            ) from None

    def entrypoint(self: Any) -> Any:
        return PROGRAMS.parse(self._evaluation_details.state_machine_details.definition)

    StepFunctionsParserBackend._validate_definition = staticmethod(validate_and_keep)  # type: ignore[method-assign]
    ExecutionWorker._get_evaluation_entrypoint = entrypoint  # type: ignore[method-assign]


def _import_parser_without_ec2() -> None:
    """Import moto's Step Functions interpreter without moto.ec2 (half a second, a fifth of a
    1-step run): its Batch integration imports one enum from ``moto.batch.utils``, and importing
    that package runs ``moto.batch.models``, which builds EC2's region tables. During this import
    ``moto.batch`` is a bare package (its ``__init__`` not run); afterwards it is forgotten, so a
    later ``import moto.batch`` loads the real one (and reuses the same ``utils`` module)."""
    import importlib
    import importlib.util
    import sys

    batch_task = "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch"
    if "moto.batch" in sys.modules or batch_task in sys.modules:
        return
    spec = importlib.util.find_spec("moto.batch")
    if spec is None or not spec.submodule_search_locations:
        return
    bare = types.ModuleType("moto.batch")
    bare.__path__ = list(spec.submodule_search_locations)
    bare.__spec__ = spec
    sys.modules["moto.batch"] = bare
    try:
        importlib.import_module(batch_task)
    finally:
        if sys.modules.get("moto.batch") is bare:
            del sys.modules["moto.batch"]


def json_copy(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, scalars), several times faster than
    ``copy.deepcopy``; anything else is handed to ``copy.deepcopy``. JSON values are trees, so
    the memo that deepcopy keeps for shared references changes nothing they serialise to."""
    kind = type(value)
    if kind is dict:
        return {k: json_copy(v) for k, v in value.items()}
    if kind is list:
        return [json_copy(v) for v in value]
    if kind in (str, int, float, bool) or value is None:
        return value
    import copy

    return copy.deepcopy(value)


# moto's modules that deep-copy a state's JSON input, output or parameters at every state (a
# fifth of a local step's cost, and growing with the state): they copy with json_copy instead.
_STATE_COPIERS = (
    "moto.stepfunctions.parser.asl.eval.states",
    "moto.stepfunctions.parser.asl.component.common.string.string_expression",
    "moto.stepfunctions.parser.asl.component.common.path.result_path",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service",
    "moto.stepfunctions.parser.asl.component.state.exec.state_parallel.state_parallel",
    "moto.stepfunctions.parser.asl.component.intrinsic.function.statesfunction.json_manipulation.json_merge",
)


def _patch_state_copies() -> None:
    import copy
    import importlib

    fast = types.SimpleNamespace(deepcopy=json_copy, copy=copy.copy)
    for name in _STATE_COPIERS:
        module = importlib.import_module(name)
        if getattr(module, "copy", None) is not copy:
            raise RuntimeError(f"moto changed: {name} no longer imports copy as a module")
        module.copy = fast  # type: ignore[attr-defined]
    # A task's evaluation thread gets its own stack (it pushes and pops there), holding the values
    # of its state's stack: nothing on it is changed in place (parameters, results and paths build
    # new values), so a list of the same values does, where moto deep-copied them all.
    execute_state = importlib.import_module("moto.stepfunctions.parser.asl.component.state.exec.execute_state")
    execute_state.copy = types.SimpleNamespace(deepcopy=list, copy=copy.copy)  # type: ignore[attr-defined]


TESTED_MOTO = "5.2.5"


def check_moto_version() -> None:
    """Refuse a moto these patches were not tested with: they reach into its internals, and a
    changed internal would make local runs mean something else than the cloud, quietly.
    ``BOTERNITY_UNTESTED_MOTO=1`` tries anyway (tests/functional/test_moto_patches.py tells what broke)."""
    import os

    import moto

    if moto.__version__ != TESTED_MOTO and os.environ.get("BOTERNITY_UNTESTED_MOTO") != "1":
        raise RuntimeError(
            f"the local engine is tested with moto {TESTED_MOTO}, and this environment has moto "
            f"{moto.__version__}: install the tested one (pip install 'moto=={TESTED_MOTO}', or "
            "pip install -c constraints.txt 'boternity[local]'), or set BOTERNITY_UNTESTED_MOTO=1 to try it anyway")


# Where moto copies a state's input only to read it (history events, the size quota) or copies a
# value that nobody else holds (the output a state just built, a copy it just made): no copy
# there. Each entry is (end of the file name, function name) of the calling function.
_READS_ONLY = {("asl/component/state/state.py", "_eval_body"),
               ("asl/component/state/state.py", "_get_state_entered_event_details"),
               ("asl/component/state/state.py", "_get_state_exited_event_details"),
               # the input a state's Parameters (or a Pass, Choice or Wait) read, and the task
               # thread's view of it: ResultPath, the one writer, takes its own copy
               ("asl/component/common/path/input_path.py", "_eval_body"),
               ("asl/component/state/state.py", "_eval_state_input"),
               ("asl/component/state/exec/execute_state.py", "_evaluate_with_timeout")}
_HANDS_OVER = {("asl/component/state/state.py", "_eval_state_output"),
               ("asl/component/state/exec/execute_state.py", "_evaluate_with_timeout"),
               ("asl/component/common/path/output_path.py", "_eval_body")}
# InputPath and OutputPath "$" (every state has both, by default) sample the whole value on the
# stack: InputPath's was just copied by get_input, OutputPath's is the output the state just built.
_WHOLE_VALUE_SAMPLERS = {("asl/component/common/path/input_path.py", "_eval_body"),
                         ("asl/component/common/path/output_path.py", "_eval_body")}


class _Callers:
    """Whether a function of moto's (a frame's code) is one of ``places`` ((end of file name,
    function name) pairs), remembered per code object: asked at every state."""

    def __init__(self, places: set[tuple[str, str]]) -> None:
        self.places = places
        self._seen: dict[Any, bool] = {}

    def __contains__(self, code: Any) -> bool:
        known = self._seen.get(code)
        if known is None:
            file = code.co_filename.replace("\\", "/")
            known = self._seen[code] = any(file.endswith(f) and code.co_name == n for f, n in self.places)
        return known


def _check_places(*places: set[tuple[str, str]]) -> None:
    """Fail loudly when moto no longer has a function these patches recognise callers by."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("moto.stepfunctions.parser")
    root = Path(next(iter(spec.submodule_search_locations or [])))   # type: ignore[union-attr]
    for file, name in set().union(*places):
        path = root / file
        if not path.is_file() or f"def {name}(" not in path.read_text(encoding="utf-8"):
            raise RuntimeError(f"moto changed: {file} has no {name}()")


def _patch_state_reads() -> None:
    import sys

    from moto.stepfunctions.parser.asl.component.common.string.string_expression import StringJsonPath
    from moto.stepfunctions.parser.asl.eval.states import States

    _check_places(_READS_ONLY, _HANDS_OVER, _WHOLE_VALUE_SAMPLERS)
    reads_only, hands_over, samplers = _Callers(_READS_ONLY), _Callers(_HANDS_OVER), _Callers(_WHOLE_VALUE_SAMPLERS)
    get0, reset0, sample0 = States.get_input, States.reset, StringJsonPath._eval_body

    def get_input(self: Any, query: str | None = None) -> Any:
        if query is None and sys._getframe(1).f_code in reads_only:
            return self._states_data["input"]
        return get0(self, query)

    def reset(self: Any, input_value: Any) -> None:
        if sys._getframe(1).f_code in hands_over:
            self._states_data["input"] = input_value
            self._states_data["result"] = None
            self._states_data["errorOutput"] = None
            return
        reset0(self, input_value)

    def sample(self: Any, env: Any) -> None:
        # StringJsonPath._eval_body <- EvalComponent.eval <- the path that samples
        if self.json_path == "$" and type(self) is StringJsonPath and sys._getframe(2).f_code in samplers:
            env.stack.append(env.stack[-1])
            return
        sample0(self, env)

    States.get_input = get_input  # type: ignore[method-assign]
    States.reset = reset  # type: ignore[method-assign]
    StringJsonPath._eval_body = sample  # type: ignore[method-assign]


# Patch 11 on or off (tests/functional/test_shared_states.py runs workflows both ways).
SHARED_STATES = True
_PLAIN_PATH = re.compile(r"^\$(\.[A-Za-z0-9_-]+)+$")


def _patch_result_path_sharing() -> None:
    from moto.stepfunctions.parser.asl.component.common.path.result_path import ResultPath

    original = ResultPath._eval_body

    def eval_body(self: Any, env: Any) -> None:
        src = self.result_path_src
        if not SHARED_STATES or src is None or not _PLAIN_PATH.match(src):
            return original(self, env)
        state = env.states._states_data["input"]
        if type(state) is not dict:
            return original(self, env)
        *parents, leaf = src[2:].split(".")
        # (the object before, the copy that replaces it), from the state down the path
        levels: list[tuple[dict[str, Any] | None, dict[str, Any]]] = [(state, dict(state))]
        for key in parents:
            before, node = levels[-1]
            child = before.get(key) if before is not None else None
            if child is None and (before is None or key not in before):
                child = None
            elif type(child) is not dict:
                return original(self, env)   # moto's own rules (and errors) for anything else
            node[key] = copy = dict(child) if child is not None else {}
            levels.append((child, copy))
        value = json_copy(env.stack.pop())
        levels[-1][1][leaf] = value
        _sizes_after_write(levels, [*parents, leaf], value)
        env.stack.append(levels[0][1])

    ResultPath._eval_body = eval_body  # type: ignore[method-assign]


_SIZES: dict[int, tuple[Any, int]] = {}
_SIZES_MAX = 200_000
_SCALARS = (str, int, float, bool, type(None))


def json_size(value: Any) -> int:
    """``len(to_json_str(value).encode())``, moto's measure of a state for the 256 KiB quota,
    without serialising what it measured before: the size of each object and list is kept (by
    identity, holding the value) while the value lives in states, where nothing changes it in place
    (see patch 9), so a new state costs only its new objects. Exact: checked against to_json_str."""
    kind = type(value)
    if kind is dict or kind is list:
        known = _SIZES.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        if kind is dict:
            if not all(type(k) is str for k in value):
                return _serialised_size(value)
            n = 2 + sum(_key_size(k) + 2 + json_size(v) for k, v in value.items())
        else:
            n = 2 + sum(json_size(v) for v in value)
        if len(value) > 1:
            n += 2 * (len(value) - 1)
        _remember_size(value, n)
        return n
    if kind is str:
        return _key_size(value)
    if kind in _SCALARS:
        return len(json.dumps(value).encode())
    return _serialised_size(value)


def _serialised_size(value: Any) -> int:
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    return len(to_json_str(value).encode())


def _patch_size_quota() -> None:
    import importlib

    from moto.stepfunctions.parser import quotas

    original = quotas.is_within_size_quota

    def is_within_size_quota(value: Any) -> bool:
        if not SHARED_STATES or isinstance(value, str):
            return original(value)
        return json_size(value) < quotas.MAX_STATE_SIZE_UTF8_BYTES

    for name in _QUOTA_USERS:
        module = importlib.import_module(name)
        if getattr(module, "is_within_size_quota", None) is not original:
            raise RuntimeError(f"moto changed: {name} no longer imports is_within_size_quota")
        module.is_within_size_quota = is_within_size_quota  # type: ignore[attr-defined]


_QUOTA_USERS = ("moto.stepfunctions.parser.asl.component.state.state",
                "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service",
                "moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda")


def _sizes_after_write(levels: list[tuple[dict[str, Any] | None, dict[str, Any]]], keys: list[str],
                       value: Any) -> None:
    """Keep the sizes of the copies a ResultPath made, from the sizes of what they replace: a
    state's size then costs the path, not the whole state (one key changed in a dict of 500
    records). Where a size before is not known, nothing is kept and json_size measures it."""
    child_size = json_size(value)
    for (before, copy), key in zip(reversed(levels), reversed(keys), strict=True):
        known = _SIZES.get(id(before)) if before is not None else None
        if known is None or known[0] is not before:
            if before is not None or len(copy) != 1:
                return
            size = 2 + _key_size(key) + 2 + child_size      # a new object holding just this key
        elif key in before:
            size = known[1] - json_size(before[key]) + child_size
        else:
            size = known[1] + _key_size(key) + 2 + child_size + (2 if before else 0)
        _remember_size(copy, size)
        child_size = size


def _key_size(key: str) -> int:
    if key.isascii() and key.isprintable() and '"' not in key and "\\" not in key:
        return len(key) + 2
    return len(json.dumps(key))


def _remember_size(value: Any, size: int) -> None:
    if len(_SIZES) >= _SIZES_MAX:
        _SIZES.clear()
    _SIZES[id(value)] = (value, size)


class _StateJson:
    """A state's whole input or output in a history event, serialised when the history is read
    (as moto would have at the state: the value is never changed afterwards, see patch 9)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _patch_lazy_history() -> None:
    from moto.stepfunctions.parser.api import (
        HistoryEventExecutionDataDetails,
        StateEnteredEventDetails,
        StateExitedEventDetails,
    )
    from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    entered0 = CommonStateField._get_state_entered_event_details
    exited0 = CommonStateField._get_state_exited_event_details
    history0 = EventManager.get_event_history
    log0 = EventManager._publish_history_log

    # moto's own two functions, with the state's value kept instead of its JSON text.
    def entered(self: Any, env: Any) -> Any:
        if not SHARED_STATES:
            return entered0(self, env)
        return StateEnteredEventDetails(
            name=self.name, input=_StateJson(env.states._states_data["input"]),
            inputDetails=HistoryEventExecutionDataDetails(truncated=False))

    def exited(self: Any, env: Any) -> Any:
        if not SHARED_STATES:
            return exited0(self, env)
        details = StateExitedEventDetails(
            name=self.name, output=_StateJson(env.states._states_data["input"]),
            outputDetails=HistoryEventExecutionDataDetails(truncated=False))
        assigned = env.variable_store.get_assigned_variables()
        env.variable_store.reset_tracing()
        if assigned:
            details["assignedVariables"] = assigned  # type: ignore[typeddict-unknown-key]
            details["assignedVariablesDetails"] = {"truncated": False}  # type: ignore[typeddict-unknown-key]
        return details

    def materialise(events: list[dict[str, Any]]) -> None:
        for event in events:
            for details in event.values():
                if type(details) is dict:
                    for key in ("input", "output"):
                        lazy = details.get(key)
                        if type(lazy) is _StateJson:
                            details[key] = to_json_str(lazy.value, separators=(",", ":"))

    def get_event_history(self: Any) -> Any:
        with self._mutex:
            materialise(self._history_event_list)
        return history0(self)

    def publish_history_log(self: Any, *args: Any, **kwargs: Any) -> Any:
        details = kwargs.get("event_details")
        if details and self._cloud_watch_logging_session is not None:
            materialise([details])
        return log0(self, *args, **kwargs)

    CommonStateField._get_state_entered_event_details = entered  # type: ignore[method-assign]
    CommonStateField._get_state_exited_event_details = exited  # type: ignore[method-assign]
    EventManager.get_event_history = get_event_history  # type: ignore[method-assign]
    EventManager._publish_history_log = publish_history_log  # type: ignore[method-assign]


def apply() -> None:
    """Apply every patch once per process."""
    global _applied
    with _lock:
        if _applied:
            return
        check_moto_version()
        _import_parser_without_ec2()
        from moto.awslambda.models import LambdaFunction
        from moto.awslambda_simple.models import LambdaSimpleBackend

        LambdaSimpleBackend.invoke = _invoke
        # S3/SNS/EventBridge notifications call LambdaFunction.invoke directly (they would try Docker).
        LambdaFunction.invoke = lambda self, body, req_h, resp_h: _invoke(  # type: ignore[method-assign]
            None, self.function_name, None, body, req_h, resp_h)
        _patch_sfn_sync()
        _patch_sfn_lambda_direct()
        _patch_stop()
        _patch_callback_timeout()
        _patch_retry_sleep()
        _patch_definite_paths()
        _patch_status_events()
        _patch_dynamodb_atomic()
        _patch_parse_once()
        _patch_state_copies()
        _patch_state_reads()
        _patch_result_path_sharing()
        _patch_lazy_history()
        _patch_size_quota()
        _applied = True


def set_fast_retry(enabled: bool) -> None:
    """Make Retry intervals instant (for tests); local runs keep real backoff by default."""
    global _fast_retry
    _fast_retry = enabled
