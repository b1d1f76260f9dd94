from __future__ import annotations

import pytest

from flagstream.delivery.result import DispatchResult, Verdict, classify


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_delivered(status):
    assert classify(status) is Verdict.DELIVERED


@pytest.mark.parametrize("status", [None, 408, 429, 500, 502, 503, 504, 599])
def test_network_errors_timeouts_408_429_and_5xx_are_retried(status):
    assert classify(status) is Verdict.RETRY


@pytest.mark.parametrize("status", [100, 301, 304, 400, 401, 403, 404, 405, 409, 413, 422, 451, 499])
def test_other_statuses_are_never_retried(status):
    assert classify(status) is Verdict.REJECT


def test_result_from_status_carries_retry_after_and_error():
    result = DispatchResult.from_status(429, retry_after=1.0, elapsed=0.5)
    assert not result.ok
    assert result.retry_after == 1.0
    assert result.error == "HTTP 429"
    assert result.verdict is Verdict.RETRY


def test_failure_without_status_is_retryable_and_success_is_delivered():
    assert DispatchResult.failure("connection refused").verdict is Verdict.RETRY
    assert DispatchResult.success().verdict is Verdict.DELIVERED


def test_result_is_frozen():
    result = DispatchResult.success(204)
    with pytest.raises(AttributeError):
        result.ok = False  # type: ignore[misc]
