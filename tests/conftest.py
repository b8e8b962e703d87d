"""Shared fixtures. Functional tests run the real compiled state machines on moto (in-process)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden/*.asl.json")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def examples_dir() -> Path:
    return EXAMPLES


@pytest.fixture
def engine(tmp_path: Path):
    """A local engine (moto) with instant Retry intervals, skills from examples/skills."""
    from boternity.local.engine import LocalEngine

    env = {"BOTERNITY_SKILLS_DIR": str(EXAMPLES / "skills"), "BOTERNITY_BOTS_DIR": str(EXAMPLES / "bots")}
    with LocalEngine(base_dir=tmp_path, blob_dir=tmp_path / "blobs", fast_retry=True, env=env) as eng:
        yield eng
