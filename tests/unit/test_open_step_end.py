"""How a step still open when its run ends is recorded (runtime.finish.open_step_end)."""

from __future__ import annotations

import pytest

from boternity.runtime.finish import open_step_end

FETCH_FAILED = "step fetch failed (StepFailed): http.blocked_address: 127.0.0.1 is loopback"
CALL_TIMED_OUT = "step call failed (States.Timeout)"


@pytest.mark.parametrize(("run_status", "cause", "step", "iteration", "expected"), [
    ("FAILED", FETCH_FAILED, "fetch", "", ("failed", "StepFailed: http.blocked_address: 127.0.0.1 is loopback")),
    ("FAILED", FETCH_FAILED, "slow", "", ("aborted", "stopped: step fetch failed (StepFailed)")),
    ("FAILED", FETCH_FAILED, "fetch", "i3", ("aborted", "stopped: step fetch failed (StepFailed)")),
    ("FAILED", CALL_TIMED_OUT, "call", "", ("timed_out", "timed out (States.Timeout)")),
    ("FAILED", CALL_TIMED_OUT + ": Task timed out", "call", "i0",
     ("timed_out", "timed out (States.Timeout): Task timed out")),
    ("FAILED", "States.DataLimitExceeded: too big", "a", "", ("aborted", "stopped: the run failed (States.DataLimitExceeded: too big)")),
    ("FAILED", None, "a", "", ("aborted", "stopped: the run failed (no cause given)")),
    ("TIMED_OUT", None, "nap", "", ("timed_out", "the run timed out (workflow timeout_secs) while this step ran")),
    ("ABORTED", "Boternity.Cancelled", "review", "", ("aborted", "run aborted")),
])
def test_an_open_step_is_closed_with_what_stopped_it(run_status, cause, step, iteration, expected):
    assert open_step_end(run_status, cause, step_id=step, iteration=iteration) == expected


def test_a_step_id_that_only_starts_like_the_failing_one_is_not_taken_for_it():
    assert open_step_end("FAILED", FETCH_FAILED, step_id="fetch-2")[0] == "aborted"
