"""Webhook authentication: each scheme accepts the genuine request and nothing else."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest

from boternity import webhooks
from boternity.errors import SignatureError, WorkflowError
from boternity.webhooks import (
    Verified,
    execution_name_for_delivery,
    sign_hmac_sha256,
    sign_standard_webhooks,
    verify,
    verify_bearer,
    verify_hmac_sha256,
    verify_standard_webhooks,
)

BODY = b'{"action": "opened", "number": 42}'
SECRET = "It's a Secret to Everybody"
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z

# Standard Webhooks secrets are "whsec_" + base64 of the key bytes.
SW_KEY = b"\x01\x02standard-webhooks-key\xfe\xff"
SW_SECRET = "whsec_" + base64.b64encode(SW_KEY).decode()
SW_KEY_2 = b"the-next-key-after-rotation"
SW_SECRET_2 = "whsec_" + base64.b64encode(SW_KEY_2).decode()


def github_headers(body: bytes = BODY, secret: str = SECRET, **extra: str) -> dict[str, str]:
    return {"X-Hub-Signature-256": sign_hmac_sha256(secret, body), "X-GitHub-Delivery": "d-123", **extra}


def sw_headers(
    *signatures: str, msg_id: str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", timestamp: int | str = NOW
) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }


def sw_signed(
    secret: str = SW_SECRET, body: bytes = BODY, *, timestamp: int = NOW, **kw: str
) -> dict[str, str]:
    msg_id = kw.get("msg_id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")
    return sw_headers(
        sign_standard_webhooks(secret, msg_id, timestamp, body), msg_id=msg_id, timestamp=timestamp
    )


def assert_refused(match: str, fn, *args, **kwargs) -> SignatureError:
    with pytest.raises(SignatureError, match=match) as info:
        fn(*args, **kwargs)
    return info.value


# --------------------------------------------------------------------------- hmac_sha256 (GitHub)


class TestHmacSha256:
    def test_signature_matches_githubs_documented_example(self):
        # From GitHub's "Validating webhook deliveries" docs: secret and payload give this digest.
        assert (
            sign_hmac_sha256("It's a Secret to Everybody", b"Hello, World!")
            == "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        )

    def test_valid_signature_verifies_and_gives_the_delivery_id(self):
        assert verify_hmac_sha256(SECRET, BODY, github_headers()) == Verified("d-123", "hmac_sha256")

    def test_delivery_id_is_none_without_the_delivery_header(self):
        headers = {"X-Hub-Signature-256": sign_hmac_sha256(SECRET, BODY)}
        assert verify_hmac_sha256(SECRET, BODY, headers).delivery_id is None

    @pytest.mark.parametrize("name", ["x-hub-signature-256", "X-HUB-SIGNATURE-256", "x-Hub-Signature-256"])
    def test_header_names_are_case_insensitive(self, name):
        headers = {name: sign_hmac_sha256(SECRET, BODY), "x-github-delivery": "d-9"}
        assert verify_hmac_sha256(SECRET, BODY, headers).delivery_id == "d-9"

    @pytest.mark.parametrize(
        "transform", [str.lower, str.upper, lambda s: s.removeprefix("sha256="), lambda s: "SHA256=" + s[7:]]
    )
    def test_bare_hex_and_any_case_are_accepted(self, transform):
        headers = {"X-Hub-Signature-256": transform(sign_hmac_sha256(SECRET, BODY))}
        verify_hmac_sha256(SECRET, BODY, headers)

    def test_str_body_is_its_utf8_bytes(self):
        text = '{"name": "Zoë"}'
        headers = {"X-Hub-Signature-256": sign_hmac_sha256(SECRET, text.encode())}
        verify_hmac_sha256(SECRET, text, headers)  # type: ignore[arg-type]

    def test_bytes_secret_is_the_same_as_its_str(self):
        verify_hmac_sha256(SECRET.encode(), BODY, github_headers())

    def test_tampered_body_is_refused(self):
        assert_refused("signature does not match", verify_hmac_sha256, SECRET, BODY + b" ", github_headers())

    def test_reserialised_json_is_refused(self):
        # Why the raw body matters: the same document with other whitespace has another signature.
        assert_refused(
            "signature does not match",
            verify_hmac_sha256,
            SECRET,
            b'{"action":"opened","number":42}',
            github_headers(),
        )

    def test_wrong_secret_is_refused(self):
        assert_refused(
            "signature does not match", verify_hmac_sha256, "another secret", BODY, github_headers()
        )

    def test_missing_header_is_refused(self):
        assert_refused("missing X-Hub-Signature-256 header", verify_hmac_sha256, SECRET, BODY, {})

    def test_empty_header_counts_as_missing(self):
        assert_refused(
            "missing X-Hub-Signature-256 header",
            verify_hmac_sha256,
            SECRET,
            BODY,
            {"X-Hub-Signature-256": " "},
        )

    @pytest.mark.parametrize("value", ["sha256=xyz", "sha1=" + "0" * 40, "sha256=" + "0" * 63, "é" * 64])
    def test_malformed_header_is_refused(self, value):
        assert_refused("malformed", verify_hmac_sha256, SECRET, BODY, {"X-Hub-Signature-256": value})

    def test_sha1_header_alone_is_not_enough(self):
        sha1 = "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()
        assert_refused("missing", verify_hmac_sha256, SECRET, BODY, {"X-Hub-Signature": sha1})

    @pytest.mark.parametrize("secret", ["", b"", None])
    def test_an_empty_secret_fails_closed(self, secret):
        # HMAC with an empty key is computable by anyone: never accept it.
        headers = {"X-Hub-Signature-256": "sha256=" + hmac.new(b"", BODY, hashlib.sha256).hexdigest()}
        assert_refused("not configured", verify_hmac_sha256, secret, BODY, headers)


# --------------------------------------------------------------------------- standard webhooks


class TestStandardWebhooks:
    def test_signature_matches_the_specs_reference_vector(self):
        # The test vector used by the standard-webhooks reference libraries.
        secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        signature = sign_standard_webhooks(
            secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
        )
        assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

    def test_valid_signature_verifies_and_gives_the_message_id(self):
        result = verify_standard_webhooks(SW_SECRET, BODY, sw_signed(), now=NOW)
        assert result == Verified("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "standard_webhooks")

    def test_header_names_are_case_insensitive(self):
        headers = {k.upper(): v for k, v in sw_signed().items()}
        verify_standard_webhooks(SW_SECRET, BODY, headers, now=NOW)

    def test_secret_without_prefix_is_base64_decoded_as_the_spec_says(self):
        bare = base64.b64encode(SW_KEY).decode()
        headers = sw_signed(bare)
        verify_standard_webhooks(bare, BODY, headers, now=NOW)
        verify_standard_webhooks(SW_SECRET, BODY, headers, now=NOW)  # the same key either way
        expected = base64.b64encode(
            hmac.new(SW_KEY, f"msg_2KWPBgLlAfxdpx2AI54pPJ85f4W.{NOW}.".encode() + BODY, "sha256").digest()
        ).decode()
        assert headers["webhook-signature"] == "v1," + expected

    @pytest.mark.parametrize("secret", ["plain-shared-secret!", "whsec_not base64", "whsec_", "   "])
    def test_a_secret_that_is_not_base64_is_a_configuration_error(self, secret):
        with pytest.raises(SignatureError) as info:
            verify_standard_webhooks(secret, BODY, sw_signed(SW_SECRET), now=NOW)
        assert "configured" in str(info.value) or "not valid base64" in str(info.value)
        assert not secret.strip() or secret.strip() not in str(info.value)

    def test_tampered_body_is_refused(self):
        assert_refused(
            "signature does not match", verify_standard_webhooks, SW_SECRET, BODY + b"x", sw_signed(), now=NOW
        )

    def test_tampered_timestamp_is_refused(self):
        headers = sw_signed() | {"webhook-timestamp": str(NOW + 1)}
        assert_refused(
            "signature does not match", verify_standard_webhooks, SW_SECRET, BODY, headers, now=NOW
        )

    def test_tampered_id_is_refused(self):
        headers = sw_signed() | {"webhook-id": "msg_other"}
        assert_refused(
            "signature does not match", verify_standard_webhooks, SW_SECRET, BODY, headers, now=NOW
        )

    def test_wrong_secret_is_refused(self):
        assert_refused(
            "signature does not match", verify_standard_webhooks, SW_SECRET_2, BODY, sw_signed(), now=NOW
        )

    @pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
    def test_each_missing_header_is_named(self, missing):
        headers = {k: v for k, v in sw_signed().items() if k != missing}
        assert_refused(
            f"missing {missing} header", verify_standard_webhooks, SW_SECRET, BODY, headers, now=NOW
        )

    def test_rotated_keys_any_secret_matching_any_signature_passes(self):
        # During rotation the sender signs with old and new key; we may hold either or both.
        old = sign_standard_webhooks(SW_SECRET, "m1", NOW, BODY)
        new = sign_standard_webhooks(SW_SECRET_2, "m1", NOW, BODY)
        headers = sw_headers(old, new, msg_id="m1")
        for secrets in ([SW_SECRET], [SW_SECRET_2], [SW_SECRET, SW_SECRET_2], [SW_SECRET_2, SW_SECRET]):
            assert verify_standard_webhooks(secrets, BODY, headers, now=NOW).delivery_id == "m1"
        # One signature, two secrets held: the second secret matches.
        only_new = sw_headers(new, msg_id="m1")
        verify_standard_webhooks([SW_SECRET, SW_SECRET_2], BODY, only_new, now=NOW)

    def test_rotated_keys_refused_when_no_secret_matches(self):
        headers = sw_headers(
            sign_standard_webhooks("whsec_" + base64.b64encode(b"third").decode(), "m1", NOW, BODY),
            msg_id="m1",
        )
        assert_refused(
            "signature does not match",
            verify_standard_webhooks,
            [SW_SECRET, SW_SECRET_2],
            BODY,
            headers,
            now=NOW,
        )

    def test_other_signature_versions_are_ignored(self):
        good = sign_standard_webhooks(SW_SECRET, "m1", NOW, BODY)
        v1a_with_right_bytes = "v1a," + good.removeprefix("v1,")
        # A v1a entry is skipped even when its bytes are the right HMAC...
        assert_refused(
            "no v1 signature",
            verify_standard_webhooks,
            SW_SECRET,
            BODY,
            sw_headers(v1a_with_right_bytes, msg_id="m1"),
            now=NOW,
        )
        # ...and does not stop a v1 entry beside it from verifying.
        verify_standard_webhooks(SW_SECRET, BODY, sw_headers("v1a,AAAA", good, msg_id="m1"), now=NOW)

    @pytest.mark.parametrize("offset", [-299, -300, 0, 299, 300])
    def test_timestamps_within_five_minutes_are_accepted(self, offset):
        verify_standard_webhooks(SW_SECRET, BODY, sw_signed(timestamp=NOW + offset), now=NOW)

    @pytest.mark.parametrize("offset", [-301, 301, -86_400, 86_400])
    def test_timestamps_beyond_five_minutes_are_refused(self, offset):
        # Too old (a replay) and too new (a forged future) get the same message.
        assert_refused(
            "timestamp outside the 5-minute tolerance",
            verify_standard_webhooks,
            SW_SECRET,
            BODY,
            sw_signed(timestamp=NOW + offset),
            now=NOW,
        )

    def test_tolerance_is_configurable(self):
        headers = sw_signed(timestamp=NOW - 90)
        assert_refused(
            "outside the 1-minute tolerance",
            verify_standard_webhooks,
            SW_SECRET,
            BODY,
            headers,
            now=NOW,
            tolerance_secs=60,
        )

    def test_default_now_is_the_clock(self, monkeypatch):
        monkeypatch.setattr(webhooks.time, "time", lambda: NOW + 1000)
        assert_refused("outside", verify_standard_webhooks, SW_SECRET, BODY, sw_signed())
        monkeypatch.setattr(webhooks.time, "time", lambda: NOW + 10)
        verify_standard_webhooks(SW_SECRET, BODY, sw_signed())

    @pytest.mark.parametrize("timestamp", ["1767225600.5", "abc", "-1767225600", "1e9", "", "0x10", "1" * 40])
    def test_non_integer_timestamps_are_refused(self, timestamp):
        headers = sw_signed() | {"webhook-timestamp": timestamp}
        with pytest.raises(SignatureError, match="webhook-timestamp header"):
            verify_standard_webhooks(SW_SECRET, BODY, headers, now=NOW)

    def test_ids_with_dots_are_refused(self):
        # "a.1" + "." + ts would be ambiguous with id "a" and another timestamp layout.
        headers = sw_signed(msg_id="a.b")
        assert_refused(
            "invalid webhook-id header", verify_standard_webhooks, SW_SECRET, BODY, headers, now=NOW
        )

    def test_malformed_signature_entries_are_refused(self):
        headers = sw_signed() | {"webhook-signature": "v1 garbage ,,, v1,"}
        assert_refused("no v1 signature", verify_standard_webhooks, SW_SECRET, BODY, headers, now=NOW)

    @pytest.mark.parametrize("secret", ["whsec_***not base64***", "whsec_", [], ""])
    def test_bad_secrets_fail_closed(self, secret):
        with pytest.raises(SignatureError) as info:
            verify_standard_webhooks(secret, BODY, sw_signed(), now=NOW)
        assert "not base64" not in str(info.value)


# --------------------------------------------------------------------------- bearer token


class TestBearer:
    TOKEN = "tok_4f8a2b9c1d"

    @pytest.mark.parametrize(
        "value", [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER   {TOKEN}", TOKEN, f"  Bearer {TOKEN}  "]
    )
    def test_token_with_or_without_prefix_verifies(self, value):
        assert verify_bearer(self.TOKEN, {"Authorization": value}) == Verified(None, "bearer_token")

    def test_header_name_is_case_insensitive(self):
        verify_bearer(self.TOKEN, {"authorization": f"Bearer {self.TOKEN}"})

    @pytest.mark.parametrize(
        "headers", [{}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Bearer  "}]
    )
    def test_missing_token_is_refused(self, headers):
        assert_refused("missing bearer token", verify_bearer, self.TOKEN, headers)

    @pytest.mark.parametrize(
        "value", ["Bearer tok_4f8a2b9c1", "Bearer tok_4f8a2b9c1dX", "Basic dG9rZW4=", "Bearer TOK_4F8A2B9C1D"]
    )
    def test_wrong_token_is_refused(self, value):
        assert_refused("token does not match", verify_bearer, self.TOKEN, {"Authorization": value})

    def test_empty_configured_token_fails_closed(self):
        assert_refused("not configured", verify_bearer, "", {"Authorization": "Bearer "})


# --------------------------------------------------------------------------- dispatch


class TestVerifyDispatch:
    def test_hmac_sha256(self):
        assert verify("hmac_sha256", SECRET, BODY, github_headers()).scheme == "hmac_sha256"

    def test_standard_webhooks(self):
        assert (
            verify("standard_webhooks", SW_SECRET, BODY, sw_signed(), now=NOW).scheme == "standard_webhooks"
        )

    def test_standard_webhooks_with_several_secrets(self):
        headers = sw_signed(SW_SECRET_2)
        assert verify("standard_webhooks", [SW_SECRET, SW_SECRET_2], BODY, headers, now=NOW).delivery_id

    def test_bearer_token(self):
        assert verify("bearer_token", "t", BODY, {"Authorization": "Bearer t"}).scheme == "bearer_token"

    def test_none_accepts_anything(self):
        assert verify("none", None, b"whatever", {}) == Verified(None, "none")

    @pytest.mark.parametrize("auth_type", ["hmac_sha256", "standard_webhooks", "bearer_token"])
    def test_a_missing_secret_fails_closed(self, auth_type):
        with pytest.raises(SignatureError, match="not configured"):
            verify(
                auth_type, None, BODY, github_headers() | sw_signed() | {"Authorization": "Bearer x"}, now=NOW
            )

    def test_a_list_of_secrets_is_only_for_standard_webhooks(self):
        with pytest.raises(SignatureError, match="exactly one secret"):
            verify("hmac_sha256", [SECRET], BODY, github_headers())

    def test_unknown_auth_type_is_a_workflow_error(self):
        with pytest.raises(WorkflowError) as info:
            verify("md5", SECRET, BODY, {})
        assert info.value.code == "invalid_auth_type"
        assert info.value.field == "auth.type"


# --------------------------------------------------------------------------- timing and secrecy


class TestConstantTimeAndSecrecy:
    @pytest.fixture
    def compare_calls(self, monkeypatch):
        calls: list[tuple[object, object]] = []
        real = hmac.compare_digest

        def recording(a, b):
            calls.append((a, b))
            return real(a, b)

        monkeypatch.setattr(webhooks.hmac, "compare_digest", recording)
        return calls

    def test_hmac_sha256_compares_with_compare_digest(self, compare_calls):
        verify_hmac_sha256(SECRET, BODY, github_headers())
        with pytest.raises(SignatureError):
            verify_hmac_sha256("wrong", BODY, github_headers())
        assert len(compare_calls) == 2

    def test_standard_webhooks_compares_every_pair_with_compare_digest(self, compare_calls):
        headers = sw_headers(
            sign_standard_webhooks(SW_SECRET, "m1", NOW, BODY),
            sign_standard_webhooks(SW_SECRET_2, "m1", NOW, BODY),
            msg_id="m1",
        )
        verify_standard_webhooks([SW_SECRET, SW_SECRET_2], BODY, headers, now=NOW)
        assert len(compare_calls) == 4  # 2 secrets x 2 signatures, no early exit

    def test_bearer_compares_with_compare_digest_on_equal_length_digests(self, compare_calls):
        with pytest.raises(SignatureError):
            verify_bearer("a-long-secret-token", {"Authorization": "Bearer x"})
        ((a, b),) = compare_calls
        assert len(a) == len(b) == 32  # the token's length is not what gets compared

    def test_hmac_failure_message_reveals_neither_secret_nor_expected_signature(self):
        expected_hex = sign_hmac_sha256(SECRET, BODY).removeprefix("sha256=")
        error = assert_refused(
            "does not match", verify_hmac_sha256, SECRET, BODY, {"X-Hub-Signature-256": "0" * 64}
        )
        for text in (str(error), repr(error), repr(error.args)):
            assert expected_hex not in text
            assert expected_hex[:8] not in text
            assert SECRET not in text

    def test_standard_webhooks_failure_message_reveals_nothing(self):
        expected = sign_standard_webhooks(SW_SECRET, "m1", NOW, BODY).removeprefix("v1,")
        headers = sw_headers("v1," + base64.b64encode(b"\0" * 32).decode(), msg_id="m1")
        error = assert_refused("does not match", verify_standard_webhooks, SW_SECRET, BODY, headers, now=NOW)
        text = str(error) + repr(error.args)
        assert expected not in text and expected[:8] not in text
        assert SW_SECRET not in text and SW_SECRET.removeprefix("whsec_")[:8] not in text

    def test_bearer_failure_message_reveals_nothing(self):
        error = assert_refused(
            "token does not match", verify_bearer, "s3cr3t-token", {"Authorization": "Bearer s3cr3t"}
        )
        assert "s3cr3t" not in str(error) + repr(error.args)

    def test_bad_whsec_secret_message_does_not_echo_it(self):
        error = assert_refused(
            "not valid", verify_standard_webhooks, "whsec_SUPER$SECRET", BODY, sw_signed(), now=NOW
        )
        assert "SUPER" not in str(error)


# --------------------------------------------------------------------------- execution names


class TestExecutionNames:
    VALID = re.compile(r"[A-Za-z0-9_-]{1,80}")

    def test_same_delivery_same_name(self):
        assert execution_name_for_delivery("deploy-bot", "d-123") == execution_name_for_delivery(
            "deploy-bot", "d-123"
        )

    def test_different_deliveries_different_names(self):
        assert execution_name_for_delivery("deploy-bot", "d-123") != execution_name_for_delivery(
            "deploy-bot", "d-124"
        )

    def test_name_is_readable_prefix_plus_hash(self):
        name = execution_name_for_delivery("deploy-bot", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        assert re.fullmatch(r"deploy-bot-wh-[a-z2-7]{32}", name)

    @pytest.mark.parametrize(
        ("workflow", "delivery"),
        [
            ("deploy-bot", "x" * 10_000),
            ("w" * 200, "d"),
            ("odd name/with:chars*", "id with spaces/and:colons?"),
            ("", "msg_ü🙂\n\t"),
            ("---", "d"),
        ],
    )
    def test_names_are_valid_for_step_functions(self, workflow, delivery):
        name = execution_name_for_delivery(workflow, delivery)
        assert self.VALID.fullmatch(name), name
        assert name == execution_name_for_delivery(workflow, delivery)

    def test_empty_delivery_id_is_a_programming_error(self):
        with pytest.raises(ValueError):
            execution_name_for_delivery("deploy-bot", "")

