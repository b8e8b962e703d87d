"""The skill function: prompt skills and WASM tool skills."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from boternity.errors import StepFailed
from boternity.executors.skill import load_skill, run_skill
from boternity.runtime.assets import asset_dir
from boternity.runtime.log import traced
from boternity.runtime.step import Services, run_step

if TYPE_CHECKING:
    from boternity.runtime.context import StepContext

services = Services()


def execute(sc: StepContext) -> Any:
    cfg = sc.spec["config"]
    folder = asset_dir("skills", cfg["skill"])
    if folder is None:
        raise StepFailed(f"skill '{cfg['skill']}': no skills folder (put skills/ next to the workflow or pass "
                         "--skills DIR)", code="skill.not_found")
    skill = load_skill(folder, cfg["skill"])
    return run_skill(skill, sc.render(cfg.get("input"), field_name="config.input"))


@traced
def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return run_step(event, execute, services)
