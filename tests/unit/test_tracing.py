"""Every Lambda handler is a Powertools Tracer segment in Lambda, and only there (the X-Ray SDK
costs a cold start about 0.3 s to import, so nothing else pays it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

HANDLERS = ("agent", "api", "approval", "code", "control", "events", "http", "skill", "webhook")

PROBE = """
import importlib, json, sys
out = {}
for name in sys.argv[1:]:
    handler = importlib.import_module("boternity.handlers." + name).lambda_handler
    out[name] = hasattr(handler, "__wrapped__")
out["xray_imported"] = "aws_xray_sdk" in sys.modules
print(json.dumps(out))
"""


def probe(**env: str) -> dict[str, bool]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("AWS_LAMBDA", "POWERTOOLS_TRACE", "_X_AMZN"))}
    clean.update({"AWS_DEFAULT_REGION": "us-east-1", "BOTERNITY_TABLE": "t", **env})
    done = subprocess.run([sys.executable, "-c", PROBE, *HANDLERS], env=clean, capture_output=True,
                          text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_in_lambda_every_handler_is_traced():
    seen = probe(AWS_LAMBDA_FUNCTION_NAME="boternity-x")
    assert {name: seen[name] for name in HANDLERS} == dict.fromkeys(HANDLERS, True)


def test_outside_lambda_or_with_tracing_off_nothing_imports_the_xray_sdk():
    assert probe() == {**dict.fromkeys(HANDLERS, False), "xray_imported": False}
    assert probe(AWS_LAMBDA_FUNCTION_NAME="boternity-x", POWERTOOLS_TRACE_DISABLED="true") == {
        **dict.fromkeys(HANDLERS, False), "xray_imported": False}
