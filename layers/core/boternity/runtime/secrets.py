"""Workflow secrets: what ``{{ secrets.NAME }}`` and a webhook's ``auth.secret_name`` may read.

Workflow secrets live in a namespace of their own, so a workflow author can never name the
functions' own credentials (``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``), another
environment variable, or the stack's own secrets (the Anthropic key):

* in the cloud (inside a Lambda function): Secrets Manager, ``<prefix><NAME>`` only. The prefix is
  ``BOTERNITY_SECRET_PREFIX`` (template.yaml sets ``<stack name>/workflows/``), and the functions
  that render workflow secrets may read nothing else (their IAM grant says the same);
* locally: the environment variable ``BOTERNITY_SECRET_<NAME>`` (``-`` written as ``_``), else
  the emulated Secrets Manager under the same prefix (what ``boternity secrets set`` stores).

Never the bare name, never another variable. Names are checked when a workflow is loaded
(:func:`secret_name_problem`), and again here, so a name that slipped past cannot escape the prefix.
"""

from __future__ import annotations

import os
import re

#: Where workflow secrets live in Secrets Manager unless ``BOTERNITY_SECRET_PREFIX`` says otherwise.
DEFAULT_SECRET_PREFIX = "boternity/workflows/"
SECRET_PREFIX_ENV = "BOTERNITY_SECRET_PREFIX"
#: Locally, ``BOTERNITY_SECRET_<NAME>`` holds the secret NAME.
SECRET_ENV_PREFIX = "BOTERNITY_SECRET_"
#: The longest secret name (the Secrets Manager name is the prefix plus this; its limit is 512).
SECRET_NAME_MAX_CHARS = 64
#: The largest secret value (Secrets Manager's own limit for SecretString).
SECRET_VALUE_MAX_BYTES = 65_536
#: How long a secret read in a Lambda is reused (Powertools' default; rotation shows up after this).
SECRET_CACHE_SECS = 300

# Letters, digits, "_" and "-", starting with a letter: nothing that can climb out of the prefix
# ("/", ".."), nothing Secrets Manager treats specially, and a name that fits an environment variable.
# ASCII only and matched whole (fullmatch): "$" alone would also accept a name ending in "\n".
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*", re.ASCII)
# The names of the functions' own AWS credentials and settings: refused outright, even though the
# namespace would never reach them, because a workflow asking for them is an attack or a mistake.
_RESERVED = re.compile(r"^aws([_-]|$)", re.IGNORECASE)


def secret_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a workflow secret, or None when it can."""
    if not isinstance(name, str) or not name:
        return "a secret name must be a non-empty string"
    if len(name) > SECRET_NAME_MAX_CHARS:
        return f"secret name is {len(name)} characters long (at most {SECRET_NAME_MAX_CHARS})"
    if not _NAME.fullmatch(name):
        return (f"'{_printable(name)}' is not a secret name (letters, digits, '_' and '-', "
                "starting with a letter)")
    if _RESERVED.match(name):
        return (f"'{name}' names the functions' own AWS settings, which are never secrets a workflow "
                "can read; store the value as a workflow secret with another name")
    if env_name(name) == SECRET_PREFIX_ENV:
        # Its variable is this module's own setting, not a secret.
        return f"'{name}' is reserved ({SECRET_PREFIX_ENV} is a setting); choose another secret name"
    return None


def secret_prefix() -> str:
    return os.environ.get(SECRET_PREFIX_ENV, "").strip() or DEFAULT_SECRET_PREFIX


def secret_id(name: str) -> str:
    """The Secrets Manager name of workflow secret ``name``."""
    return secret_prefix() + name


def env_name(name: str) -> str:
    """The environment variable that holds workflow secret ``name`` locally."""
    return SECRET_ENV_PREFIX + name.replace("-", "_")


def in_lambda() -> bool:
    # The Lambda runtime always sets this; the local engine runs the handlers in-process without it.
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def lookup_secret(name: str) -> str | None:
    """The value of workflow secret ``name``, or None when there is none (or the name is invalid)."""
    if secret_name_problem(name) is not None:
        return None
    local = not in_lambda()
    if local:
        value = os.environ.get(env_name(name))
        if value is not None:
            return value
    from aws_lambda_powertools.utilities import parameters

    try:
        # Locally nothing is cached, so `boternity secrets set` takes effect on the next step.
        secret = parameters.get_secret(secret_id(name), max_age=0 if local else SECRET_CACHE_SECS)
    except parameters.GetParameterError:
        return None  # not found or not allowed: the caller says which secret is missing
    return secret if isinstance(secret, str) else None


def _printable(name: str) -> str:
    """The name for a message: control characters (terminal escapes) shown escaped, and cut short."""
    shown = name.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= 80 else shown[:77] + "..."
