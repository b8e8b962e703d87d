"""The moto internals that boternity.local.moto_patches replaces must still exist, with the
signatures the patches assume: if moto changes under us, this fails loudly and first."""

from __future__ import annotations

import inspect


def test_patched_moto_internals_still_exist():
    from moto.awslambda.models import LambdaFunction
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.stepfunctions.parser.asl.component.intrinsic.argument.argument import ArgumentJsonPath
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.backend.execution import Execution

    assert list(inspect.signature(LambdaSimpleBackend.invoke).parameters)[1:] == [
        "function_name", "qualifier", "body", "headers", "response_headers"]
    assert hasattr(LambdaFunction, "invoke")
    assert hasattr(StateTaskServiceSfn, "_normalise_parameters")
    assert hasattr(StateTaskServiceSfn, "_normalise_response")
    assert hasattr(state_task_service_callback, "_DELAY_SECONDS_SYNC_CONDITION_CHECK")
    assert hasattr(Execution, "stop") and hasattr(Environment, "set_error")
    assert hasattr(ArgumentJsonPath, "_eval_argument")
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    assert hasattr(ExecutionWorker, "_get_evaluation_entrypoint")
    assert hasattr(StepFunctionsParserBackend, "_validate_definition")
    import moto

    assert moto.__version__ == "5.2.5", "moto_patches was written against moto 5.2.5: re-check every patch"


def test_intrinsic_merge_of_parallel_results_works(engine):
    """moto wraps $[0].steps in a list inside intrinsics; the patch makes it a value, as AWS does."""
    import json
    import time
    import uuid

    asl = {"StartAt": "P", "States": {"P": {"Type": "Pass",
           "Parameters": {"r.$": "States.JsonMerge($[0].steps, $[1], false)"}, "End": True}}}
    arn = engine.sfn.create_state_machine(name="merge-check", definition=json.dumps(asl),
                                          roleArn=engine.role_arn)["stateMachineArn"]
    ex = engine.sfn.start_execution(stateMachineArn=arn, name=uuid.uuid4().hex,
                                    input=json.dumps([{"steps": {"a": 1}}, {"b": 2}]))["executionArn"]
    for _ in range(200):
        d = engine.sfn.describe_execution(executionArn=ex)
        if d["status"] != "RUNNING":
            break
        time.sleep(0.01)
    assert d["status"] == "SUCCEEDED", d.get("cause")
    assert json.loads(d["output"]) == {"r": {"a": 1, "b": 2}}


def test_status_change_events_reach_listeners(engine):
    import threading

    from boternity.local import moto_patches
    from boternity.model import parse_workflow

    got: list[dict] = []
    done = threading.Event()

    def listener(event: dict) -> None:
        got.append(event)
        if event["detail"]["status"] != "RUNNING":
            done.set()

    moto_patches.STATUS_LISTENERS.append(listener)
    try:
        wf = parse_workflow({"name": "evt", "steps": [{"id": "a", "type": "wait", "config": {"seconds": 0}}]})
        engine.run(wf, timeout=30)
        assert done.wait(5)
    finally:
        moto_patches.STATUS_LISTENERS.remove(listener)
    # Each event is delivered in a thread of its own, as EventBridge promises no order either: a
    # run this short can have its end delivered before its start.
    import time

    deadline = time.monotonic() + 5
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(e["detail"]["status"] for e in got) == ["RUNNING", "SUCCEEDED"]
    end = next(e for e in got if e["detail"]["status"] == "SUCCEEDED")
    assert end["detail-type"] == "Step Functions Execution Status Change"
    assert end["detail"]["name"] and '"a"' in end["detail"]["output"]


def test_concurrent_update_item_on_a_new_item_loses_no_write(engine):
    """The cross-branch signal needs DynamoDB's atomic UpdateItem; moto alone can lose one."""
    import threading

    import boto3

    ddb = boto3.client("dynamodb", region_name="us-east-1")
    for trial in range(200):  # unpatched moto lost about 1 write in 40 here
        key = {"pk": {"S": f"RACE#{trial}"}, "sk": {"S": "x"}}
        barrier = threading.Barrier(2)

        def waiter(key=key, barrier=barrier):
            barrier.wait()
            ddb.update_item(TableName="boternity", Key=key, UpdateExpression="ADD waiters :w",
                            ExpressionAttributeValues={":w": {"SS": ["t"]}})

        def signaller(key=key, barrier=barrier):
            barrier.wait()
            ddb.update_item(TableName="boternity", Key=key, UpdateExpression="SET done = :t",
                            ExpressionAttributeValues={":t": {"BOOL": True}})

        threads = [threading.Thread(target=waiter), threading.Thread(target=signaller)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        item = ddb.get_item(TableName="boternity", Key=key)["Item"]
        assert "waiters" in item and "done" in item, f"trial {trial}: a concurrent write was lost: {item}"


def _finish(engine, arn: str, payload: object) -> dict:
    import json
    import time
    import uuid

    ex = engine.sfn.start_execution(stateMachineArn=arn, name=uuid.uuid4().hex, input=json.dumps(payload))
    for _ in range(300):
        d = engine.sfn.describe_execution(executionArn=ex["executionArn"])
        if d["status"] != "RUNNING":
            return d
        time.sleep(0.01)
    raise AssertionError("execution did not finish")


def test_a_definition_is_parsed_once_and_every_run_gets_its_own_program(engine):
    import json

    import pytest
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    from boternity.local import moto_patches

    asl = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"n.$": "$.n"}, "End": True}}}
    definition = json.dumps(asl)
    calls = []
    original = AmazonStateLanguageParser.parse
    programs = []
    entry0 = moto_patches.PROGRAMS.parse

    def counting(text: str):
        calls.append(text)
        return original(text)

    def keeping(text: str):
        programs.append(entry0(text))
        return programs[-1]

    moto_patches.PROGRAMS.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(AmazonStateLanguageParser, "parse", staticmethod(counting))
        mp.setattr(moto_patches.PROGRAMS, "parse", keeping)
        arn = engine.sfn.create_state_machine(name="parse-once", definition=definition,
                                              roleArn=engine.role_arn)["stateMachineArn"]
        assert moto_patches.PROGRAMS.known(definition)
        first = _finish(engine, arn, {"n": 1})
        second = _finish(engine, arn, {"n": 2})
        assert len(calls) == 1, "validating the definition parsed it; its runs reuse that parse"
    assert json.loads(first["output"]) == {"n": 1} and json.loads(second["output"]) == {"n": 2}
    assert len({id(p) for p in programs[1:]}) == 2, "each run executes a program of its own"
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="ASLParserException"):   # still refused when created
        engine.sfn.create_state_machine(name="broken", definition='{"StartAt": "X", "States": {}}',
                                        roleArn=engine.role_arn)


def test_an_untested_moto_is_refused_with_what_to_do(monkeypatch):
    import moto
    import pytest

    from boternity.local import moto_patches

    monkeypatch.setattr(moto, "__version__", "9.9.9")
    monkeypatch.delenv("BOTERNITY_UNTESTED_MOTO", raising=False)
    with pytest.raises(RuntimeError, match=r"tested with moto 5\.2\.5, and this environment has moto 9\.9\.9"):
        moto_patches.check_moto_version()
    monkeypatch.setenv("BOTERNITY_UNTESTED_MOTO", "1")
    moto_patches.check_moto_version()   # told to try anyway


def test_a_token_is_refused_from_the_stop_on_before_the_worker_notices_it(engine, monkeypatch):
    # moto turns a stopped execution's status ABORTED only when its worker thread notices the
    # stop; AWS refuses the task token from the StopExecution call on. Hold the worker back: the
    # execution still says RUNNING, and the token must be refused all the same.
    import time

    import boto3
    import pytest
    from boto3.dynamodb.conditions import Attr
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    from boternity.model import parse_workflow

    wf = parse_workflow({"name": "held-stop", "steps": [
        {"id": "review", "type": "approval", "config": {"prompt": "go?"}}]})
    run_id, arn = engine.start(wf)
    table = boto3.resource("dynamodb", region_name="us-east-1").Table("boternity")
    deadline = time.monotonic() + 30
    items: list = []
    while not items and time.monotonic() < deadline:
        items = table.scan(FilterExpression=Attr("run_id").eq(run_id) & Attr("token").exists())["Items"]
        time.sleep(0.05)
    (approval,) = items
    monkeypatch.setattr(ExecutionWorker, "stop", lambda self, **kw: None)   # the worker never notices
    engine.sfn.stop_execution(executionArn=arn, error="Test.Stop", cause="held")
    assert engine.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    with pytest.raises(ClientError) as refused:
        engine.sfn.send_task_success(taskToken=approval["token"], output="{}")
    assert refused.value.response["Error"]["Code"] == "TaskTimedOut"
    monkeypatch.undo()
    engine.sfn.stop_execution(executionArn=arn, error="Test.Stop", cause="really")
