"""Which child run a running sub_workflow step started, read from its parent's history as
GetExecutionHistory returns it (newest first, branches interleaved)."""

from __future__ import annotations

import json
from typing import Any

from boternity.service.runs import running_children

CHILD = "arn:aws:states:us-east-1:123456789012:execution:boternity-kid:"


class History:
    """GetExecutionHistory of one execution: the events given, newest first, as AWS answers
    ``reverseOrder=True``; records the arguments."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.asked: list[dict[str, Any]] = []

    def get_execution_history(self, **kwargs: Any) -> dict[str, Any]:
        self.asked.append(kwargs)
        return {"events": sorted(self.events, key=lambda e: -e["id"])}


def task(first_id: int, state: str, child: str | None, *, resource: str = "startExecution.sync:2") -> list[dict]:
    """A task state's events: entered, scheduled, started and (for a child) submitted."""
    events = [{"id": first_id, "type": "TaskStateEntered", "previousEventId": first_id - 1,
               "stateEnteredEventDetails": {"name": state}},
              {"id": first_id + 1, "type": "TaskScheduled", "previousEventId": first_id},
              {"id": first_id + 2, "type": "TaskStarted", "previousEventId": first_id + 1}]
    if child is not None:
        events.append({"id": first_id + 3, "type": "TaskSubmitted", "previousEventId": first_id + 2,
                       "taskSubmittedEventDetails": {"resource": resource,
                                                     "output": json.dumps({"ExecutionArn": CHILD + child})}})
    return events


def test_each_state_names_the_child_it_started_last():
    # A loop's body ran "call" twice (c1 ended, c2 runs); a parallel branch's "other" runs c3 with
    # its events between them; a Lambda task has no child.
    events = [*task(2, "call", "c1"), *task(10, "other", "c3"), *task(20, "call", "c2"),
              *task(30, "fetch", None, resource="invoke")]
    sfn = History(events)
    assert running_children(sfn, "arn:parent") == {"call": CHILD + "c2", "other": CHILD + "c3"}
    assert sfn.asked == [{"executionArn": "arn:parent", "reverseOrder": True, "maxResults": 1000}]


def test_a_submission_whose_state_is_beyond_the_page_or_whose_output_is_unreadable_is_skipped():
    lost = [e for e in task(2, "call", "c1") if e["type"] != "TaskStateEntered"]
    garbled = task(10, "broken", "c2")
    garbled[-1]["taskSubmittedEventDetails"]["output"] = "not json"
    assert running_children(History([*lost, *garbled]), "arn:parent") == {}
