"""Structured logs (Powertools Logger) with the run and step ids on every line.

In Lambda they go to stdout (CloudWatch). Locally they go to stderr at WARNING, so `boternity run`
keeps stdout for its result. Secrets and task tokens are never logged: callers log codes and
masked messages only.
"""

from __future__ import annotations

import logging
import os
import sys

from aws_lambda_powertools import Logger

_in_lambda = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))

logger = Logger(
    service=os.environ.get("POWERTOOLS_SERVICE_NAME", "boternity"),
    level=os.environ.get("LOG_LEVEL") or ("INFO" if _in_lambda else "WARNING"),
    **({} if _in_lambda else {"logger_handler": logging.StreamHandler(sys.stderr)}),
)
