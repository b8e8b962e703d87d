"""Secret lookup for ``{{ secrets.NAME }}``: the environment first (local runs), then Secrets
Manager through Powertools Parameters (cached five minutes), as ``boternity/NAME`` (the prefix the
functions' IAM policy allows; ``BOTERNITY_SECRET_PREFIX`` changes it) and then as ``NAME``."""

from __future__ import annotations

import os


def lookup_secret(name: str) -> str | None:
    value = os.environ.get(name)
    if value is not None:
        return value
    from aws_lambda_powertools.utilities import parameters

    prefix = os.environ.get("BOTERNITY_SECRET_PREFIX", "boternity/")
    for candidate in dict.fromkeys((prefix + name, name)):
        try:
            secret = parameters.get_secret(candidate, max_age=300)
        except Exception:  # noqa: BLE001,S112 - not found / not allowed: try the next name
            continue
        if isinstance(secret, str):
            return secret
    return None
