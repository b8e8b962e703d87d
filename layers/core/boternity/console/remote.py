"""The console's upstream for a deployed stack (`boternity console --api <ApiUrl>`, in
``boternity.cli.console``).

The deployed API takes IAM auth only, so every call the console makes is signed here with SigV4
(botocore's ``SigV4Auth``, service ``execute-api``) from the user's usual AWS credentials; the
browser never sees them and the stack gains no public route. The region is the one in the API's
host name (``<id>.execute-api.<region>.amazonaws.com``), else the session's.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit

from boternity.console.app import error_answer
from boternity.errors import BoternityError

_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
# What the console may wait for one API call (API Gateway's own integration limit is 29 s).
UPSTREAM_TIMEOUT_SECS = 30


class SignedApi:
    """The console's upstream: HTTP calls to ``base`` signed with SigV4, or with an API key."""

    def __init__(self, base: str, *, api_key: str | None = None, session: Any = None, region: str | None = None) -> None:
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BoternityError(f"--api must be the API's URL (https://<id>.execute-api.<region>.amazonaws.com/<stage>), "
                                 f"not {base!r}")
        self.base = base.rstrip("/")
        self.api_key = api_key
        self._credentials: Any = None
        self.region = region
        if api_key:
            return
        import boto3  # here, not above: boto3 costs ~0.3 s to import and `boternity serve` never needs it

        session = session or boto3.Session()
        self._credentials = session.get_credentials()
        local = parts.hostname in _LOCAL_HOSTS
        if self._credentials is None and not local:
            raise BoternityError("no AWS credentials to sign the console's API calls with (IAM auth): configure "
                                 "them as for the AWS CLI, or pass --api-key")
        m = _API_HOST.match(parts.hostname)
        self.region = region or (m.group(1) if m else None) or session.region_name or \
            os.environ.get("AWS_REGION") or "us-east-1"

    def __call__(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        import requests  # here, not above: only a console for a deployed API calls over HTTP

        url = self.base + target
        hdrs = dict(headers)
        if self.api_key:
            hdrs["x-api-key"] = self.api_key
        elif self._credentials is not None:
            hdrs = self._sign(method, url, hdrs, body)
        try:
            resp = requests.request(method, url, data=body or None, headers=hdrs, timeout=UPSTREAM_TIMEOUT_SECS,
                                    allow_redirects=False)
        except requests.RequestException as exc:
            return error_answer(502, "api_unreachable", f"cannot reach the API at {self.base}: {type(exc).__name__}")
        return resp.status_code, dict(resp.headers.items()), resp.content

    def _sign(self, method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        from botocore.auth import SigV4Auth  # with boto3 above: only when signing
        from botocore.awsrequest import AWSRequest

        req = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
        # Frozen per call: refreshable credentials (SSO, assumed roles) renew while the console runs.
        SigV4Auth(self._credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(req)
        return dict(req.headers.items())
