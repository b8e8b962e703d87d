"""Small builders for ASL states: plain dicts with explicit keys (JSONPath, current field names).

``NEXT`` marks where control leaves a fragment; :func:`wire` points it at the following state.
"""

from __future__ import annotations

from typing import Any

NEXT = "__NEXT__"

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
LAMBDA_CALLBACK = "arn:aws:states:::lambda:invoke.waitForTaskToken"
SFN_START_SYNC = "arn:aws:states:::states:startExecution.sync:2"

# AWS's recommended retrier for Lambda service-side failures (not the function's own errors).
LAMBDA_SERVICE_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
LAMBDA_SERVICE_RETRY: dict[str, Any] = {
    "ErrorEquals": LAMBDA_SERVICE_ERRORS,
    "IntervalSeconds": 1,
    "MaxAttempts": 3,
    "BackoffRate": 2.0,
    "JitterStrategy": "FULL",
}

STEP_RESULT = {"status.$": "$.Payload.status", "output.$": "$.Payload.output"}


def task(resource: str, parameters: dict[str, Any], *, comment: str | None = None,
         result_selector: dict[str, Any] | None = None, result_path: str | None = "$",
         timeout: int | None = None, retry: list[dict[str, Any]] | None = None,
         catch: list[dict[str, Any]] | None = None, output_path: str | None = None) -> dict[str, Any]:
    s: dict[str, Any] = {"Type": "Task"}
    if comment:
        s["Comment"] = comment
    s["Resource"] = resource
    s["Parameters"] = parameters
    if result_selector is not None:
        s["ResultSelector"] = result_selector
    s["ResultPath"] = result_path
    if output_path is not None:
        s["OutputPath"] = output_path
    if timeout is not None:
        s["TimeoutSeconds"] = timeout
    if retry:
        s["Retry"] = retry
    if catch:
        s["Catch"] = catch
    s["Next"] = NEXT
    return s


def pass_(*, parameters: dict[str, Any] | None = None, result: Any = None, result_path: str | None = None,
          output_path: str | None = None, comment: str | None = None, has_result: bool = False) -> dict[str, Any]:
    s: dict[str, Any] = {"Type": "Pass"}
    if comment:
        s["Comment"] = comment
    if parameters is not None:
        s["Parameters"] = parameters
    if has_result:
        s["Result"] = result
    if result_path is not None:
        s["ResultPath"] = result_path
    if output_path is not None:
        s["OutputPath"] = output_path
    s["Next"] = NEXT
    return s


def choice(choices: list[dict[str, Any]], default: str = NEXT, *, comment: str | None = None) -> dict[str, Any]:
    s: dict[str, Any] = {"Type": "Choice"}
    if comment:
        s["Comment"] = comment
    s["Choices"] = choices
    s["Default"] = default
    return s


def fail(*, error: str | None = None, cause: str | None = None, error_path: str | None = None,
         cause_path: str | None = None, comment: str | None = None) -> dict[str, Any]:
    s: dict[str, Any] = {"Type": "Fail"}
    if comment:
        s["Comment"] = comment
    if error is not None:
        s["Error"] = error
    if cause is not None:
        s["Cause"] = cause
    if error_path is not None:
        s["ErrorPath"] = error_path
    if cause_path is not None:
        s["CausePath"] = cause_path
    return s


def wait(*, seconds: int | None = None, timestamp_path: str | None = None, comment: str | None = None
         ) -> dict[str, Any]:
    s: dict[str, Any] = {"Type": "Wait"}
    if comment:
        s["Comment"] = comment
    if seconds is not None:
        s["Seconds"] = seconds
    if timestamp_path is not None:
        s["TimestampPath"] = timestamp_path
    s["Next"] = NEXT
    return s


def wire(states: dict[str, dict[str, Any]], target: str | None, *, end_name: str | None = None,
         output_path: str | None = None) -> None:
    """Point every NEXT in ``states`` at ``target``; with no target, end the (sub)machine there,
    and with ``output_path`` the ending states output only that part of the state."""
    choice_needs_end = False
    for st in states.values():
        if st.get("Next") == NEXT:
            if target is None:
                del st["Next"]
                st["End"] = True
                if output_path is not None:
                    assert "OutputPath" not in st, "an ending state already selects its output"
                    st["OutputPath"] = output_path
            else:
                st["Next"] = target
        if st.get("Type") == "Choice":
            refs = [c for c in st["Choices"] if c.get("Next") == NEXT]
            if st.get("Default") == NEXT or refs:
                if target is None:
                    choice_needs_end = True
                else:
                    for c in refs:
                        c["Next"] = target
                    if st.get("Default") == NEXT:
                        st["Default"] = target
    if choice_needs_end:
        # A Choice cannot end a machine: give it a terminal Pass to go to.
        assert end_name is not None
        states[end_name] = {"Type": "Pass", "End": True}
        if output_path is not None:
            states[end_name]["OutputPath"] = output_path
        wire(states, end_name)


def is_open(states: dict[str, dict[str, Any]]) -> bool:
    return any(
        st.get("Next") == NEXT or st.get("Default") == NEXT or any(c.get("Next") == NEXT for c in st.get("Choices", []))
        for st in states.values()
    )
