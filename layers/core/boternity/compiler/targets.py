"""Where compiled tasks point: Lambda functions and state machines.

The compiler takes these as data so it stays pure. In the cloud the API function compiles a
workflow when it is registered, with the stack's function ARNs (``BOTERNITY_FUNCTION_ARNS``) and
state-machine prefix, and creates the state machine itself; the local engine passes moto ARNs;
``boternity compile`` without ``--local`` prints ``${...}`` placeholders where those ARNs go.
Same definition, same meaning.
"""

from __future__ import annotations

from dataclasses import dataclass

FUNCTIONS = ("agent", "skill", "http", "code", "approval", "control")


@dataclass(frozen=True)
class TaskTargets:
    functions: dict[str, str]
    state_machine_prefix: str          # e.g. "arn:aws:states:us-east-1:123456789012:stateMachine:boternity-"

    def function(self, kind: str) -> str:
        return self.functions[kind]

    def state_machine(self, workflow_name: str) -> str:
        return self.state_machine_prefix + workflow_name

    @classmethod
    def sam(cls) -> TaskTargets:
        """Readable placeholders for ``boternity compile``: where the deployed stack's ARNs go."""
        fns = {k: "${" + k.capitalize() + "FunctionArn}" for k in FUNCTIONS}
        return cls(functions=fns, state_machine_prefix="${StateMachineArnPrefix}")

    @classmethod
    def local(cls, *, region: str = "us-east-1", account: str = "123456789012",
              prefix: str = "boternity-") -> TaskTargets:
        fns = {k: f"arn:aws:lambda:{region}:{account}:function:{prefix}{k}" for k in FUNCTIONS}
        return cls(functions=fns, state_machine_prefix=f"arn:aws:states:{region}:{account}:stateMachine:{prefix}")


def step_function_kind(step_type: str) -> str | None:
    """The Lambda function that runs a step type, or None for states that run inside Step Functions."""
    if step_type in ("agent", "skill", "http", "code", "approval"):
        return step_type
    if step_type in ("conditional", "loop"):
        return "control"
    return None
