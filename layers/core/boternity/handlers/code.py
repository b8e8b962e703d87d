"""The code function: sandboxed WASM (and JavaScript where supported)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boternity.executors.code import run_code
from boternity.runtime.log import traced
from boternity.runtime.step import Services, run_step

if TYPE_CHECKING:
    from boternity.runtime.context import StepContext

services = Services()


def execute(sc: StepContext) -> Any:
    cfg = dict(sc.spec["config"])
    cfg["input"] = sc.render(cfg.get("input"), field_name="config.input")
    base = os.environ.get("BOTERNITY_BASE_DIR")
    return run_code(cfg, base_dir=Path(base) if base else None)


@traced
def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return run_step(event, execute, services)
