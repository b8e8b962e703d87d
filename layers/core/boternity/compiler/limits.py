"""Step Functions limits, in one place, each with where it comes from.

https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html
"""

from __future__ import annotations

# Names of states and executions: 1-80 characters.
MAX_NAME = 80
# Input/output of a task, state or execution: 256 KiB of UTF-8.
MAX_PAYLOAD_BYTES = 262_144
# What we let the state grow to. A result just under 256 KiB can still fail uncatchably once
# Step Functions adds its metadata (cdklabs/construct-hub#1886), so keep a wide margin.
STATE_BUDGET_BYTES = 160 * 1024
# Default inline threshold for one step's output; larger outputs are claim-checked.
DEFAULT_INLINE_BYTES = 32 * 1024
# A claim-check reference, {"$ref": "blob:<sha256>", "size": n}, at most (store/blobs.py checks it).
MAX_REF_BYTES = 100
# A trigger payload larger than this starts the run as a claim-check reference (templates resolve
# it): the state keeps room for the records' 160 KiB budget whatever a webhook sends.
TRIGGER_INLINE_BYTES = 32 * 1024
# A for_each list sits in the state while its Map runs (next to the records' budget).
FOR_EACH_LIST_BYTES = 48 * 1024
# Never inline less than this: below it a reference is about as big as the value.
MIN_INLINE_BYTES = 128
# What one step record costs in the state besides its output and its id:
# "<id>":{"status":"completed","output":<output>}, plus the commas.
RECORD_OVERHEAD_BYTES = 40
# The worst case the state may reach (every output at its inline limit): under 256 KiB with a margin.
MAX_STATE_WORST_BYTES = 224 * 1024
# The most items one for_each may have, whatever the history budget leaves.
MAX_FOR_EACH_ITEMS = 1000
# State machine definition: 1 MB, hard limit.
MAX_DEFINITION_BYTES = 1_048_576
# Standard workflow execution history: 25,000 events; the execution fails at the limit.
MAX_HISTORY_EVENTS = 25_000
# Intrinsic functions nest at most 10 deep.
MAX_INTRINSIC_NESTING = 10
# Inline Map runs at most 40 iterations at once whatever MaxConcurrency says.
INLINE_MAP_CONCURRENCY = 40
# How many items a for_each is assumed to have when estimating history at compile time; the
# runtime refuses more items than the estimate leaves room for.
FOR_EACH_ESTIMATE = 40

# History events per state kind (Standard workflows; a Lambda task writes StateEntered,
# TaskScheduled, TaskStarted, TaskSucceeded and StateExited).
EVENTS_TASK = 5
EVENTS_RETRY = 3
EVENTS_SIMPLE = 2       # Pass, Choice, Wait, Succeed, Fail
EVENTS_PARALLEL = 4     # entered, started, succeeded, exited
EVENTS_MAP = 4
EVENTS_MAP_ITERATION = 2
EVENTS_EXECUTION = 2    # ExecutionStarted, ExecutionSucceeded
