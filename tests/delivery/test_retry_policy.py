from __future__ import annotations

import email.utils
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flagstream.delivery.result import DispatchResult
from flagstream.delivery.retry import RetryPolicy, parse_retry_after
from flagstream.errors import ConfigurationError

FAIL = DispatchResult.from_status(503)


def test_increment_returns_a_new_policy_and_never_mutates():
    policy = RetryPolicy(max_attempts=3)
    after = policy.increment(FAIL)
    assert policy.attempts == 0
    assert after.attempts == 1
    assert after is not policy


def test_policy_is_exhausted_after_max_attempts():
    policy = RetryPolicy(max_attempts=2)
    policy = policy.increment(FAIL)
    assert not policy.is_exhausted()
    assert policy.increment(FAIL).is_exhausted()


def test_policy_is_exhausted_at_once_after_a_non_retryable_status():
    assert RetryPolicy().increment(DispatchResult.from_status(400)).is_exhausted()
    assert not RetryPolicy().increment(DispatchResult.from_status(429)).is_exhausted()


def test_backoff_is_full_jitter_under_an_exponential_cap():
    policy = RetryPolicy(backoff_base=0.1, backoff_max=1.0)
    rng = random.Random(7)
    for retries, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (30, 1.0)]:
        p = policy
        for _ in range(retries):
            p = p.increment(FAIL)
        delays = [p.get_backoff(rng) for _ in range(300)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # jitter spans the range
        assert min(delays) < ceiling * 0.2


def test_retry_after_is_a_floor_on_the_backoff():
    policy = RetryPolicy(backoff_base=0.01, backoff_max=0.02).increment(
        DispatchResult.from_status(429, retry_after=1.0)
    )
    assert all(policy.get_backoff() >= 1.0 for _ in range(50))
    ignoring = policy.new(respect_retry_after=False)
    assert all(ignoring.get_backoff() <= 0.02 for _ in range(50))


def test_first_attempt_has_no_backoff_and_reset_forgets_history():
    policy = RetryPolicy()
    assert policy.get_backoff() == 0.0
    assert policy.increment(FAIL).reset().attempts == 0


@pytest.mark.parametrize(
    "changes", [{"max_attempts": 0}, {"deadline": 0}, {"backoff_base": -1.0}, {"backoff_max": -1.0}]
)
def test_invalid_policy_values_raise_configuration_error(changes):
    with pytest.raises(ConfigurationError):
        RetryPolicy(**changes)


def test_parse_retry_after_reads_seconds_and_http_dates():
    assert parse_retry_after("1") == 1.0
    assert parse_retry_after("  30 ") == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0 - 60) == 60.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0 + 60) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("-1") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("") is None


@given(st.text(max_size=60))
def test_parse_retry_after_never_raises_and_never_returns_negative(text):
    value = parse_retry_after(text, now=1_700_000_000.0)
    assert value is None or value >= 0.0


@given(st.integers(min_value=0, max_value=10**9))
def test_parse_retry_after_round_trips_delta_seconds(seconds):
    assert parse_retry_after(str(seconds)) == float(seconds)


@given(st.integers(min_value=0, max_value=4_000_000_000), st.integers(min_value=0, max_value=86_400))
def test_parse_retry_after_round_trips_http_dates(when, ahead):
    header = email.utils.formatdate(when, usegmt=True)
    assert parse_retry_after(header, now=float(when - ahead)) == float(ahead)
