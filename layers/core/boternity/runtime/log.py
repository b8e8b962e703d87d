"""Structured logs (Powertools Logger) with the run and step ids on every line, and X-Ray traces
(Powertools Tracer: each handler is a segment, its AWS and HTTP calls subsegments).

In Lambda they go to stdout (CloudWatch). Locally they go to stderr at WARNING, so `boternity run`
keeps stdout for its result. Secrets and task tokens are never logged: callers log codes and
masked messages only.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TypeVar

from aws_lambda_powertools import Logger

_in_lambda = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))

logger = Logger(
    service=os.environ.get("POWERTOOLS_SERVICE_NAME", "boternity"),
    level=os.environ.get("LOG_LEVEL") or ("INFO" if _in_lambda else "WARNING"),
    **({} if _in_lambda else {"logger_handler": logging.StreamHandler(sys.stderr)}),
)


Handler = TypeVar("Handler", bound=Any)


def traced(handler: Handler) -> Handler:
    """The handler as a Powertools Tracer segment (its AWS SDK and HTTP calls as subsegments), in
    Lambda unless ``POWERTOOLS_TRACE_DISABLED``; anywhere else the handler itself.

    Tracer imports the X-Ray SDK and patches botocore when it is created (about 0.3 s, even when
    disabled), so it is created only where it traces: a cold start pays it only with tracing on."""
    in_lambda = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))
    if not in_lambda or os.environ.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in ("1", "true"):
        return handler
    from aws_lambda_powertools import Tracer

    tracer = Tracer(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "boternity"))
    return tracer.capture_lambda_handler(handler)  # type: ignore[no-any-return]
