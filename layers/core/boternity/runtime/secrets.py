"""Secret lookup for ``{{ secrets.NAME }}``: the environment first (local runs), then Secrets
Manager through Powertools Parameters (cached five minutes)."""

from __future__ import annotations

import os


def lookup_secret(name: str) -> str | None:
    value = os.environ.get(name)
    if value is not None:
        return value
    try:
        from aws_lambda_powertools.utilities import parameters

        secret = parameters.get_secret(name, max_age=300)
    except Exception:  # noqa: BLE001 - any lookup failure means "no such secret" to the template
        return None
    return secret if isinstance(secret, str) else None
