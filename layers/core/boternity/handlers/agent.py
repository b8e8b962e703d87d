"""The agent function: one LLM call through a bot, with optional LLM self-correction between attempts.

The only function that imports ``anthropic`` (about 0.8 s of import), so the others stay cold-start light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from boternity.executors.agent import default_model_from_env, make_client, request_correction, run_agent
from boternity.executors.bots import load_bot
from boternity.executors.selfcorrect import build_correction_prompt, summarize_config
from boternity.runtime.assets import asset_dir
from boternity.runtime.log import traced
from boternity.runtime.step import Services, run_step

if TYPE_CHECKING:
    from boternity.runtime.context import StepContext

services = Services()


def execute(sc: StepContext, *, attempt: int = 0) -> Any:
    spec = sc.spec
    cfg = {k: v for k, v in spec["config"].items() if k != "type"}
    for field_name in ("prompt", "system"):
        if cfg.get(field_name) is not None:
            cfg[field_name] = sc.render(cfg[field_name], field_name=f"config.{field_name}")
    bot = load_bot(asset_dir("bots", cfg["bot"]), cfg["bot"])
    model = cfg.get("model") or bot.model or default_model_from_env()
    client = make_client()
    correction = None
    retry = spec.get("retry") or {}
    if retry.get("strategy") == "llm_self_correct" and attempt > 0:
        # Step Functions re-invokes the task with the same input; the previous attempt's error is in
        # the run records, so the model can be asked what to do differently.
        previous = services.runs.attempts(sc.run_id, sc.step_id, iteration=sc.iteration_key())
        if previous:
            prompt = build_correction_prompt(
                step_name=str(spec.get("name") or sc.step_id),
                config_summary=summarize_config("agent", cfg),
                attempt=attempt, max_attempts=int(retry.get("max_attempts", 3)),
                error=str(previous[-1].get("error", "")),
            )
            correction = request_correction(client, model=model, prompt=prompt)
    result = run_agent(cfg, bot=bot, client=client, default_model=default_model_from_env(), correction=correction)
    if correction:
        result["correction"] = correction
    result["attempt"] = attempt + 1
    return result


@traced
def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    attempt = int(event.get("attempt") or 0)
    return run_step(event, lambda sc: execute(sc, attempt=attempt), services)
