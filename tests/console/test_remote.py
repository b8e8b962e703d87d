"""`boternity console --api`: the console on 127.0.0.1 in front of an IAM-only API. A stand-in API
on 127.0.0.1 plays the deployed one: it recomputes every request's SigV4 signature from the
credentials the test gave the console and refuses (403, as API Gateway does) any request whose
signature, scope or signed headers are wrong."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from boternity.cli.console import console_server
from boternity.console.app import CSRF_HEADER, ConsoleApp
from boternity.console.remote import SignedApi
from boternity.errors import BoternityError

KEY, SECRET = "AKIDCONSOLETEST", "console-test-secret"
REGION = "eu-west-3"
AUTH = re.compile(r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/execute-api/"
                  r"aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$")
DEFINITION = {"name": "remote", "steps": [{"id": "only", "type": "wait", "config": {"seconds": 0}}]}


def expected_signature(method: str, url: str, headers: dict[str, str], body: bytes, signed: str, amz_date: str) -> str:
    """The signature API Gateway would compute: the same canonical request over the signed headers."""
    names = signed.split(";")
    req = AWSRequest(method=method, url=url, data=body,
                     headers={k: v for k, v in headers.items() if k.lower() in names and k.lower() != "host"})
    req.context["timestamp"] = amz_date
    auth = SigV4Auth(Credentials(KEY, SECRET), "execute-api", REGION)
    canonical = auth.canonical_request(req)
    return auth.signature(auth.string_to_sign(req, canonical), req)


class StandInApi(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = dict(self.headers.items())
        m = AUTH.match(headers.get("Authorization", ""))
        url = f"http://{headers['Host']}{self.path}"
        ok = bool(m) and m["key"] == KEY and m["region"] == REGION and "host" in m["signed"].split(";") and \
            m["sig"] == expected_signature(self.command, url, headers, body, m["signed"], headers.get("X-Amz-Date", ""))
        self.seen.append({"method": self.command, "path": self.path, "ok": ok, "body": body,
                          "has_cookie": "Cookie" in headers})
        if not ok:
            status, data = 403, {"message": "The request signature we calculated does not match the signature you provided."}
        elif self.command == "POST":
            status, data = 202, {"run_id": "r9", "status": "RUNNING", "workflow": "remote", "links": {}}
        else:
            status, data = {
                "/workflows?limit=100": (200, {"workflows": [{"name": "remote"}]}),
                "/workflows/remote": (200, {"name": "remote", "definition": DEFINITION, "triggers": []}),
            }.get(self.path.removeprefix("/prod"), (404, {"error": {"code": "not_found", "message": "no such thing", "details": None}}))
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = _answer


@pytest.fixture
def stand_in() -> Any:
    StandInApi.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandInApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/prod"
    server.shutdown()
    server.server_close()


@pytest.fixture
def console(stand_in: str) -> Any:
    session = boto3.Session(aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name=REGION)
    app = ConsoleApp(SignedApi(stand_in, session=session), api_label=stand_in)
    server = console_server(app, port=0, quiet=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def browser_like() -> tuple[urllib.request.OpenerDirector, http.cookiejar.CookieJar]:
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar)), jar


def test_every_api_call_of_the_console_is_signed_with_sigv4(console):
    opener, _ = browser_like()
    with opener.open(console + "/console/data/home") as resp:
        home = json.loads(resp.read())
    assert [w["name"] for w in home["workflows"]] == ["remote"]
    assert [n["id"] for n in home["workflows"][0]["graph"]["nodes"]] == ["only"]
    paths = [(s["path"], s["ok"]) for s in StandInApi.seen]
    assert ("/prod/workflows?limit=100", True) in paths and ("/prod/workflows/remote", True) in paths
    assert all(ok for _, ok in paths), paths


def test_an_action_is_signed_over_its_body_and_carries_no_browser_cookie(console):
    opener, _ = browser_like()
    with opener.open(console + "/console/workflows/remote") as resp:
        token = re.search(rb'name="csrf-token" content="([^"]+)"', resp.read()).group(1).decode()
    req = urllib.request.Request(console + "/console/api/workflows/remote/runs", data=b'{"topic": "signed"}',
                                 method="POST", headers={"Content-Type": "application/json", CSRF_HEADER: token})
    with opener.open(req) as resp:
        assert (resp.status, json.loads(resp.read())["run_id"]) == (202, "r9")
    [posted] = [s for s in StandInApi.seen if s["method"] == "POST"]
    assert (posted["path"], posted["ok"], posted["body"], posted["has_cookie"]) == \
        ("/prod/workflows/remote/runs", True, b'{"topic": "signed"}', False)


def test_a_wrong_secret_is_refused_by_the_api_and_the_refusal_reaches_the_page(stand_in):
    session = boto3.Session(aws_access_key_id=KEY, aws_secret_access_key="not-the-secret", region_name=REGION)
    app = ConsoleApp(SignedApi(stand_in, session=session))
    status, _, body = app.handle("GET", "/console/data/home", {"Host": "127.0.0.1"}, b"")
    assert status == 403
    assert "signature" in json.loads(body)["message"]


def test_the_region_comes_from_the_api_host_name():
    session = boto3.Session(aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name="us-east-1")
    api = SignedApi("https://a1b2c3.execute-api.ap-south-2.amazonaws.com/prod/", session=session)
    assert (api.region, api.base) == ("ap-south-2", "https://a1b2c3.execute-api.ap-south-2.amazonaws.com/prod")


def test_a_deployed_api_without_credentials_is_refused_before_serving(monkeypatch):
    class NoCredentials:
        region_name = None

        def get_credentials(self) -> None:
            return None

    with pytest.raises(BoternityError, match="no AWS credentials"):
        SignedApi("https://a1b2c3.execute-api.eu-west-1.amazonaws.com/prod", session=NoCredentials())


def test_the_console_server_answers_nothing_but_the_console(console):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(console + "/workflows")
    assert err.value.code == 404
    assert StandInApi.seen == []


def test_an_unreachable_api_is_a_502_naming_it():
    session = boto3.Session(aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name=REGION)
    app = ConsoleApp(SignedApi("http://127.0.0.1:9/prod", session=session))
    status, _, body = app.handle("GET", "/console/data/home", {"Host": "127.0.0.1"}, b"")
    assert status == 502
    assert "http://127.0.0.1:9/prod" in json.loads(body)["error"]["message"]


def test_boternity_console_serves_on_loopback_and_signs_with_the_environments_credentials(stand_in, tmp_path):
    """The command as a user runs it: credentials from the environment, the API from --api."""
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": REGION,
           "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "PYTHONUNBUFFERED": "1"}
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)
    proc = subprocess.Popen([sys.executable, "-m", "boternity.cli.main", "console", "--api", stand_in, "--port", "0"],
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        m = re.search(r"Boternity console on (http://127\.0\.0\.1:\d+)/console/ for " + re.escape(stand_in), line)
        assert m, line
        with urllib.request.urlopen(m.group(1) + "/console/data/home", timeout=30) as resp:
            assert [w["name"] for w in json.loads(resp.read())["workflows"]] == ["remote"]
        assert StandInApi.seen and all(s["ok"] for s in StandInApi.seen)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
