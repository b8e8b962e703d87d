"""The service's settings, from the environment template.yaml gives the api and webhook functions.

Read on every use (cheap), never cached at import: tests and ``boternity serve`` set the
environment after the handler modules are imported.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from boternity.errors import ServiceMisconfigured

DEFAULT_PREFIX = "boternity-"


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


@dataclass(frozen=True)
class Settings:
    table: str
    prefix: str = DEFAULT_PREFIX
    bucket: str | None = None
    role_arn: str | None = None
    function_arns: dict[str, str] = field(default_factory=dict)
    scheduler_group: str | None = None
    scheduler_role_arn: str | None = None
    event_bus: str | None = None
    webhook_base_url: str | None = None
    approval_base_url: str | None = None
    trigger_function_arn_env: str | None = None
    log_group_arn: str | None = None

    @classmethod
    def from_env(cls) -> Settings:
        table = _env("BOTERNITY_TABLE")
        if not table:
            raise ServiceMisconfigured("BOTERNITY_TABLE is not set")
        arns_text = _env("BOTERNITY_FUNCTION_ARNS")
        try:
            arns = json.loads(arns_text) if arns_text else {}
        except ValueError:
            raise ServiceMisconfigured("BOTERNITY_FUNCTION_ARNS is not a JSON object") from None
        if not isinstance(arns, dict):
            raise ServiceMisconfigured("BOTERNITY_FUNCTION_ARNS is not a JSON object")
        return cls(
            table=table,
            prefix=os.environ.get("BOTERNITY_STATE_MACHINE_PREFIX") or DEFAULT_PREFIX,
            bucket=_env("BOTERNITY_BUCKET"),
            role_arn=_env("BOTERNITY_STATE_MACHINE_ROLE_ARN"),
            function_arns={str(k): str(v) for k, v in arns.items()},
            scheduler_group=_env("BOTERNITY_SCHEDULER_GROUP"),
            scheduler_role_arn=_env("BOTERNITY_SCHEDULER_ROLE_ARN"),
            event_bus=_env("BOTERNITY_EVENT_BUS"),
            webhook_base_url=_env("BOTERNITY_WEBHOOK_BASE_URL"),
            approval_base_url=_env("BOTERNITY_APPROVAL_BASE_URL"),
            trigger_function_arn_env=_env("BOTERNITY_TRIGGER_FUNCTION_ARN"),
            log_group_arn=_env("BOTERNITY_STATE_MACHINE_LOG_GROUP_ARN"),
        )

    # ------------------------------------------------------------------ derived names
    def _arn_parts(self) -> tuple[str, str, str]:
        """(partition, region, account) of this deployment, read off a step function's ARN.

        Every function of the stack lives in the same account and region as the state machines,
        so no STS call is needed (and none is granted).
        """
        for arn in self.function_arns.values():
            parts = arn.split(":")
            if len(parts) >= 7 and parts[0] == "arn":
                return parts[1], parts[3], parts[4]
        raise ServiceMisconfigured("BOTERNITY_FUNCTION_ARNS names no function ARN")

    @property
    def region(self) -> str:
        return self._arn_parts()[1]

    def state_machine_name(self, workflow: str) -> str:
        return self.prefix + workflow

    def state_machine_arn(self, workflow: str) -> str:
        partition, region, account = self._arn_parts()
        return f"arn:{partition}:states:{region}:{account}:stateMachine:{self.state_machine_name(workflow)}"

    def state_machine_prefix_arn(self) -> str:
        partition, region, account = self._arn_parts()
        return f"arn:{partition}:states:{region}:{account}:stateMachine:{self.prefix}"

    def require_function_arns(self) -> dict[str, str]:
        from boternity.compiler.targets import FUNCTIONS

        missing = [k for k in FUNCTIONS if k not in self.function_arns]
        if missing:
            raise ServiceMisconfigured(f"BOTERNITY_FUNCTION_ARNS lacks {', '.join(missing)}")
        return self.function_arns

    @property
    def trigger_function_arn(self) -> str | None:
        """The function that takes S3 notifications and filtered event triggers: the webhook function.

        template.yaml names every function ``<stack>-<name>``, so without an explicit
        ``BOTERNITY_TRIGGER_FUNCTION_ARN`` the ARN follows from a step function's.
        """
        if self.trigger_function_arn_env:
            return self.trigger_function_arn_env
        agent = self.function_arns.get("agent")
        if agent and agent.endswith("-agent"):
            return agent[: -len("-agent")] + "-webhook"
        return None
