"""Fixtures of the browser tests: a real `boternity serve` (a child process) with the test
workflows registered, and Debian's Chromium driven by Playwright for Python.

Both are skipped, with the reason, where the machine lacks them: `.ci/run` installs chromium
(apt) and playwright (the dev extra)."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def api_call(base: str, method: str, path: str, body: Any = None, *, content_type: str = "application/json") -> Any:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": content_type, "Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium): the console's browser tests need it")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    return path


@pytest.fixture(scope="module")
def browser(chromium: str) -> Any:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1300, "height": 820})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.script_errors = errors
    yield pg
    context.close()
    assert errors == [], f"the page raised: {errors}"


@pytest.fixture(scope="module")
def serve(chromium: str) -> Any:
    """The base URL of a running `boternity serve`, for one test module."""
    from benchmarks.served import served

    with served(project_dir=ROOT / "examples") as base:
        yield base
