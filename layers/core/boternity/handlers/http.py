"""The http function: requests with an SSRF guard and secret masking."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from boternity.errors import StepFailed
from boternity.executors.http import MAX_TIMEOUT_SECS, run_http
from boternity.runtime.context import Secrets
from boternity.runtime.log import traced
from boternity.runtime.secrets import lookup_secret
from boternity.runtime.step import Services, run_step

if TYPE_CHECKING:
    from boternity.runtime.context import StepContext

services = Services()


# Deployment-wide limits (documented in the README, "Step executors"): a response body is cut at
# BOTERNITY_HTTP_MAX_BODY_BYTES (the output is flagged truncated), and a step without timeout_secs
# gets BOTERNITY_HTTP_TIMEOUT_SECS for connect, headers and body together.
MAX_BODY_ENV, MAX_BODY_DEFAULT = "BOTERNITY_HTTP_MAX_BODY_BYTES", 10 * 1024 * 1024
TIMEOUT_ENV, TIMEOUT_DEFAULT = "BOTERNITY_HTTP_TIMEOUT_SECS", 30.0


def _positive_env(name: str, default: float, kind: type[int] | type[float], *, most: float = math.inf) -> Any:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = 0
    if not (value > 0 and math.isfinite(value)) or value > most:
        # A deployment mistake, not the workflow's: say which variable, and do not guess a value.
        upto = f" up to {most:g}" if math.isfinite(most) else ""
        raise StepFailed(f"environment variable {name} must be a positive number{upto}, got {raw!r}",
                         code="http.invalid_config")
    return value


def execute(sc: StepContext) -> Any:
    cfg = sc.render(sc.spec["config"], field_name="config", with_secrets=True)
    allow = bool(sc.ctx.get("workflow", {}).get("allow_private_network"))
    return run_http(
        cfg,
        allow_private_network=allow,
        max_body_bytes=_positive_env(MAX_BODY_ENV, MAX_BODY_DEFAULT, int),
        default_timeout=_positive_env(TIMEOUT_ENV, TIMEOUT_DEFAULT, float, most=MAX_TIMEOUT_SECS),
    )


@traced
def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return run_step(event, execute, services, secrets=Secrets(lookup_secret))
