"""The control function: conditionals, loop checks, gates, and cross-branch signals."""

from __future__ import annotations

from typing import Any

from boternity.runtime.control import handle
from boternity.runtime.log import traced
from boternity.runtime.step import Services

services = Services()


@traced
def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return handle(event, services)
