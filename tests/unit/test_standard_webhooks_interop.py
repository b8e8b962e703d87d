"""Standard Webhooks interop: signatures made by the reference library verify here, and ours
verify there, with and without the whsec_ prefix, unpadded, and across a key rotation."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from boternity.errors import SignatureError
from boternity.webhooks import sign_standard_webhooks, verify_standard_webhooks

KEY = bytes(range(32))
OLD_KEY = b"the key before the rotation....."
BODY = b'{"type":"invoice.paid","data":{"id":"in_1"}}'
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"

FORMS = {
    "prefixed": "whsec_" + base64.b64encode(KEY).decode(),
    "bare": base64.b64encode(KEY).decode(),
    "unpadded": "whsec_" + base64.b64encode(KEY).decode().rstrip("="),
}


def headers(signature: str, ts: int) -> dict[str, str]:
    return {"webhook-id": MSG_ID, "webhook-timestamp": str(ts), "webhook-signature": signature}


@pytest.mark.parametrize("ours", FORMS, ids=lambda f: f"ours-{f}")
@pytest.mark.parametrize("theirs", FORMS, ids=lambda f: f"theirs-{f}")
def test_the_reference_library_signs_and_we_verify(theirs, ours):
    ts = int(time.time())
    signature = Webhook(FORMS[theirs]).sign(MSG_ID, datetime.fromtimestamp(ts, UTC), BODY.decode())
    verify_standard_webhooks(FORMS[ours], BODY, headers(signature, ts), now=ts)


@pytest.mark.parametrize("ours", FORMS, ids=lambda f: f"ours-{f}")
@pytest.mark.parametrize("theirs", FORMS, ids=lambda f: f"theirs-{f}")
def test_we_sign_and_the_reference_library_verifies(ours, theirs):
    ts = int(time.time())
    signature = sign_standard_webhooks(FORMS[ours], MSG_ID, ts, BODY)
    assert Webhook(FORMS[theirs]).verify(BODY, headers(signature, ts)) == {
        "type": "invoice.paid", "data": {"id": "in_1"}}


def test_rotated_keys_either_signature_verifies_in_both_libraries():
    ts = int(time.time())
    new, old = FORMS["prefixed"], "whsec_" + base64.b64encode(OLD_KEY).decode()
    # A sender mid-rotation signs with both keys; a receiver holding either key accepts.
    both = " ".join(sign_standard_webhooks(s, MSG_ID, ts, BODY) for s in (old, new))
    for secret in (new, old):
        Webhook(secret).verify(BODY, headers(both, ts))
        verify_standard_webhooks(secret, BODY, headers(both, ts), now=ts)
    # A receiver holding both keys accepts a sender that has only one of them.
    for secret in (new, old):
        signed = Webhook(secret).sign(MSG_ID, datetime.fromtimestamp(ts, UTC), BODY.decode())
        verify_standard_webhooks([old, new], BODY, headers(signed, ts), now=ts)


def test_a_wrong_key_fails_in_both_libraries():
    ts = int(time.time())
    wrong = "whsec_" + base64.b64encode(b"x" * 32).decode()
    signature = sign_standard_webhooks(wrong, MSG_ID, ts, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(FORMS["prefixed"]).verify(BODY, headers(signature, ts))
    with pytest.raises(SignatureError):
        verify_standard_webhooks(FORMS["prefixed"], BODY, headers(signature, ts), now=ts)
