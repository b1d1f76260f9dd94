"""The sans-IO plan, driven by a scripted loop: what gets sent, retried, bisected, dropped."""

from __future__ import annotations

import random

from tests.delivery.factories import context, conversion, uuids_of

from flagstream import _json
from flagstream.delivery.plan import Send, Settle, Wait, delivery_plan, group_by_context
from flagstream.delivery.result import DispatchResult
from flagstream.delivery.retry import RetryPolicy
from flagstream.events.payload import build_log_event


def run(events, answer, *, policy=None, limit=3_500_000, wait=lambda action: None):
    """Carry a plan out; returns (sends, settles)."""
    clock = [0.0]
    plan = delivery_plan(events, policy or RetryPolicy(), limit, lambda: clock[0], random.Random(1))
    sends, settles, reply = [], [], None
    try:
        while True:
            action = plan.send(reply)
            if isinstance(action, Send):
                sends.append(action)
                reply = answer(action.log_event)
            elif isinstance(action, Wait):
                clock[0] += action.delay
                reply = wait(action)
            else:
                settles.append(action)
                reply = None
    except StopIteration:
        pass
    return sends, settles


def test_events_of_one_context_go_in_one_request_with_exactly_the_factory_bytes():
    events = [conversion() for _ in range(5)]
    sends, settles = run(events, lambda le: DispatchResult.success(204))
    assert len(sends) == 1
    assert sends[0].log_event.body == build_log_event(events).body
    assert settles == [Settle(5, True, None, DispatchResult.success(204))]


def test_batch_is_split_when_revision_or_anonymize_ip_changes():
    a, b, c = context(), context(revision="43"), context(anonymize_ip=True)
    events = [conversion(a), conversion(b), conversion(a), conversion(c)]
    groups = group_by_context(events)
    assert [len(g) for g in groups] == [2, 1, 1]
    sends, _ = run(events, lambda le: DispatchResult.success(204))
    assert [_json.loads(s.log_event.body)["revision"] for s in sends] == ["42", "43", "42"]


def test_request_above_the_byte_limit_is_split_in_halves():
    events = [conversion() for _ in range(8)]
    one = len(build_log_event(events[:1]).body)
    sends, settles = run(events, lambda le: DispatchResult.success(204), limit=one * 3)
    assert all(len(s.log_event.body) <= one * 3 for s in sends)
    assert sum(s.events for s in settles if s.delivered) == 8


def test_a_single_event_above_the_limit_is_rejected_as_too_large():
    big = conversion(tags={"blob": "x" * 5000})
    small = conversion()
    sends, settles = run([big, small], lambda le: DispatchResult.success(204), limit=2000)
    assert [(s.events, s.delivered, s.reason) for s in settles] == [(1, False, "too_large"), (1, True, None)]
    assert settles[0].dead == (big,)
    assert len(sends) == 1


def test_a_400_batch_is_bisected_so_only_the_bad_event_is_dead_lettered():
    events = [conversion() for _ in range(16)]
    bad = events[11].uuid

    def answer(le):
        return DispatchResult.from_status(400 if bad in uuids_of(le.body) else 204)

    sends, settles = run(events, answer)
    delivered = sum(s.events for s in settles if s.delivered)
    dead = [e for s in settles for e in s.dead]
    assert delivered == 15
    assert [e.uuid for e in dead] == [bad]
    assert len(sends) <= 2 * 4 + 1  # about 2 log2(n) requests


def test_retryable_failures_are_retried_until_success_with_increasing_attempts():
    answers = iter(
        [DispatchResult.from_status(500), DispatchResult.failure("reset"), DispatchResult.success(204)]
    )
    sends, settles = run([conversion()], lambda le: next(answers))
    assert [s.attempt for s in sends] == [1, 2, 3]
    assert settles[-1].delivered


def test_retries_stop_after_max_attempts_with_retry_exhausted():
    sends, settles = run(
        [conversion()], lambda le: DispatchResult.from_status(503), policy=RetryPolicy(max_attempts=3)
    )
    assert len(sends) == 3
    assert (settles[0].delivered, settles[0].reason) == (False, "retry_exhausted")


def test_a_wait_the_driver_refuses_drops_the_group_with_the_drivers_reason():
    sends, settles = run(
        [conversion(), conversion()], lambda le: DispatchResult.from_status(503), wait=lambda a: "shutdown"
    )
    assert len(sends) == 1
    assert (settles[0].events, settles[0].reason) == (2, "shutdown")


def test_retry_after_from_a_429_is_the_floor_of_the_wait():
    answers = iter([DispatchResult.from_status(429, retry_after=1.0), DispatchResult.success(204)])
    waits = []

    def wait(action):
        waits.append(action.delay)

    run([conversion()], lambda le: next(answers), policy=RetryPolicy(backoff_base=0.001), wait=wait)
    assert waits
    assert waits[0] >= 1.0


def test_a_server_that_refuses_everything_gets_a_bounded_number_of_bisection_requests():
    events = [conversion() for _ in range(500)]
    sends, settles = run(events, lambda le: DispatchResult.from_status(400))
    assert len(sends) <= 2 * 32 + 1
    assert sum(s.events for s in settles) == 500
    assert all(s.reason == "rejected" for s in settles)
    assert sum(len(s.dead) for s in settles) == 500


def test_the_settled_result_counts_every_attempt():
    answers = iter(
        [DispatchResult.from_status(503), DispatchResult.from_status(503), DispatchResult.success(204)]
    )
    _, settles = run([conversion()], lambda le: next(answers))
    assert settles[-1].result.attempts == 3
