"""The http function: requests with an SSRF guard and secret masking."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from boternity.executors.http import run_http
from boternity.runtime.context import Secrets
from boternity.runtime.secrets import lookup_secret
from boternity.runtime.step import Services, run_step

if TYPE_CHECKING:
    from boternity.runtime.context import StepContext

services = Services()


def execute(sc: StepContext) -> Any:
    cfg = sc.render(sc.spec["config"], field_name="config", with_secrets=True)
    allow = bool(sc.ctx.get("workflow", {}).get("allow_private_network"))
    return run_http(cfg, allow_private_network=allow)


def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return run_step(event, execute, services, secrets=Secrets(lookup_secret))
