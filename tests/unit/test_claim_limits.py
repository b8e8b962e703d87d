"""The start-claim limits (boternity.store.idempotency): defaults, overrides, and bad values
that must fail loudly, naming the variable, instead of silently disabling the dedupe."""

from __future__ import annotations

import pytest

from boternity.store.idempotency import (
    CLAIM_IN_PROGRESS_SECS,
    DELIVERY,
    IDEMPOTENCY_KEY,
    LocalContext,
    claim_in_progress_secs,
)


def test_defaults_without_the_variables(monkeypatch):
    for name in ("BOTERNITY_CLAIM_IN_PROGRESS_SECS", "BOTERNITY_IDEMPOTENCY_KEY_TTL_SECS",
                 "BOTERNITY_DELIVERY_TTL_SECS"):
        monkeypatch.delenv(name, raising=False)
    assert (claim_in_progress_secs(), IDEMPOTENCY_KEY.ttl(), DELIVERY.ttl()) == (CLAIM_IN_PROGRESS_SECS, 86_400,
                                                                                 604_800)


def test_the_variables_override_the_defaults(monkeypatch):
    monkeypatch.setenv("BOTERNITY_CLAIM_IN_PROGRESS_SECS", "5")
    monkeypatch.setenv("BOTERNITY_IDEMPOTENCY_KEY_TTL_SECS", "60")
    monkeypatch.setenv("BOTERNITY_DELIVERY_TTL_SECS", "120")
    assert (claim_in_progress_secs(), IDEMPOTENCY_KEY.ttl(), DELIVERY.ttl()) == (5, 60, 120)


@pytest.mark.parametrize("raw,message", [
    pytest.param("soon", "BOTERNITY_IDEMPOTENCY_KEY_TTL_SECS must be a whole number of seconds, not 'soon'",
                 id="not-a-number"),
    pytest.param("0", "BOTERNITY_IDEMPOTENCY_KEY_TTL_SECS must be at least 1 second, not 0", id="zero"),
    pytest.param("-5", "BOTERNITY_IDEMPOTENCY_KEY_TTL_SECS must be at least 1 second, not -5", id="negative"),
    pytest.param("1" * 5000, "BOTERNITY_IDEMPOTENCY_KEY_TTL_SECS must be a whole number of seconds, not "
                 f"'{'1' * 32}...'", id="5000-digits"),
])
def test_a_bad_value_is_an_error_naming_the_variable(monkeypatch, raw, message):
    monkeypatch.setenv("BOTERNITY_IDEMPOTENCY_KEY_TTL_SECS", raw)
    with pytest.raises(ValueError) as info:
        IDEMPOTENCY_KEY.ttl()
    assert str(info.value) == message


def test_a_local_context_counts_down_from_its_budget_and_stops_at_zero():
    assert 0 < LocalContext(10).get_remaining_time_in_millis() <= 10_000
    assert LocalContext(-1).get_remaining_time_in_millis() == 0
