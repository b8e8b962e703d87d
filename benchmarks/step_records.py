"""``python -m benchmarks.step_records [--steps N] [--rounds R]``: the local engine's hot path,
``RunStore.step_started`` + ``step_ended`` (two UpdateItems a step), on moto's DynamoDB and on
``boternity.local.fast_dynamodb``, in the same process and mock, alternating rounds so both see
the same machine load. Prints milliseconds per step on each and their ratio."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any


def _one_round(store: Any, run_id: str, steps: int) -> float:
    start = time.perf_counter()
    for i in range(steps):
        store.step_started(run_id, f"s{i}", step_type="prompt")
        store.step_ended(run_id, f"s{i}", status="completed", output={"text": "x" * 200, "i": i},
                         step_type="prompt")
    return (time.perf_counter() - start) / steps * 1000


def measure(steps: int = 200, rounds: int = 5) -> dict[str, Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(var, "testing")
    import boto3
    from moto import mock_aws

    from boternity.local import fast_dynamodb
    from boternity.store.run_records import RunStore, table_definition, unwatch_steps, watch_steps

    def watcher(run_id: str, record: dict[str, Any]) -> None:
        """The engine watches step records (its live progress): ReturnValues=ALL_NEW on every write."""

    times: dict[str, list[float]] = {"moto": [], "fast": []}
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**table_definition("moto_t"))   # before enable(): moto answers it
        fast_dynamodb.enable()
        watch_steps(watcher)
        try:
            client.create_table(**table_definition("fast_t"))
            resource = boto3.resource("dynamodb", region_name="us-east-1")
            stores = {"moto": RunStore("moto_t", client=resource), "fast": RunStore("fast_t", client=resource)}
            for r in range(rounds):
                for name in ("moto", "fast") if r % 2 == 0 else ("fast", "moto"):
                    times[name].append(_one_round(stores[name], f"run{r}", steps))
            held = fast_dynamodb.held_tables()
        finally:
            unwatch_steps(watcher)
            fast_dynamodb.disable()
    moto_ms, fast_ms = statistics.median(times["moto"]), statistics.median(times["fast"])
    return {"steps": steps, "rounds": rounds, "moto_ms_per_step": round(moto_ms, 3),
            "fast_ms_per_step": round(fast_ms, 3), "ratio": round(moto_ms / fast_ms, 2),
            "fast_table_held": held == ["fast_t"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(measure(args.steps, args.rounds), indent=2))


if __name__ == "__main__":
    main()
