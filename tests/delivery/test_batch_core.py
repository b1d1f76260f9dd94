"""The pure core, driven by hand: no threads, no clock."""

from __future__ import annotations

import pytest
from tests.delivery.factories import conversion

from flagstream.delivery.core import ACCEPTED, ACCEPTED_WAKE, REFUSED, BatchCore
from flagstream.delivery.settings import BatchSettings
from flagstream.errors import ConfigurationError

NOW = 2_000_000_000.0


def core(**kw):
    return BatchCore(BatchSettings(**kw))


def test_offer_wakes_a_worker_exactly_when_a_batch_fills():
    c = core(batch_size=3)
    codes = [c.offer(conversion(), 100) for _ in range(4)]
    assert codes == [ACCEPTED, ACCEPTED, ACCEPTED_WAKE, ACCEPTED]


def test_offer_wakes_a_worker_when_a_requests_worth_of_bytes_is_queued():
    c = core(batch_size=100, max_request_bytes=1000)
    assert [c.offer(conversion(), 400) for _ in range(4)] == [ACCEPTED, ACCEPTED, ACCEPTED_WAKE, ACCEPTED]


def test_event_bound_refuses_and_counts_nothing_until_the_driver_decides():
    c = core(max_queue_events=2)
    assert [c.offer(conversion(), 10) for _ in range(3)] == [ACCEPTED, ACCEPTED, REFUSED]
    assert c.refusal(10) is None  # only room is missing: the overflow policy decides
    c.refuse("queue_full")
    assert c.dropped == {"queue_full": 1}
    assert c.enqueued == 2


def test_byte_bound_refuses_events_that_do_not_fit():
    c = core(max_queue_bytes=1000)
    assert c.offer(conversion(), 600) == ACCEPTED
    assert c.offer(conversion(), 600) == REFUSED
    assert c.offer(conversion(), 400) == ACCEPTED
    assert c.queued_bytes == 1000


def test_an_event_larger_than_a_request_is_refused_as_too_large():
    c = core(max_request_bytes=1000)
    assert c.offer(conversion(), 1001) == REFUSED
    assert c.refusal(1001) == "too_large"


def test_drop_oldest_evicts_from_the_head_and_counts_exactly():
    c = core(max_queue_events=3)
    events = [conversion() for _ in range(3)]
    for e in events:
        c.offer(e, 10)
    assert c.evict_for(10) == 1
    c.force_append(conversion(), 10)
    assert c.queue[0] is events[1]
    assert c.dropped == {"queue_full": 1}
    assert c.head_seq == 1


def test_window_closes_on_count():
    c = core(batch_size=2, flush_interval=100)
    for _ in range(5):
        c.offer(conversion(timestamp=int(NOW * 1000)), 10)
    assert len(c.take(NOW).events) == 2
    assert len(c.take(NOW).events) == 2
    assert c.take(NOW) is None  # one left, not due yet


def test_window_closes_on_age():
    c = core(batch_size=100, flush_interval=1.0)
    c.offer(conversion(timestamp=int(NOW * 1000)), 10)
    assert c.take(NOW + 0.5) is None
    assert c.wait_time(NOW + 0.5) == pytest.approx(0.5)
    assert len(c.take(NOW + 1.0).events) == 1


def test_window_is_bounded_by_request_bytes():
    c = core(batch_size=100, max_request_bytes=1000, flush_interval=100)
    for _ in range(5):
        c.offer(conversion(timestamp=int(NOW * 1000)), 400)
    c.request_flush()
    sizes = [len(c.take(NOW).events) for _ in range(3)]
    assert sizes == [2, 2, 1]


def test_flush_waits_only_for_events_accepted_before_it_even_with_windows_out_of_order():
    c = core(batch_size=2, flush_interval=100)
    for _ in range(4):
        c.offer(conversion(timestamp=int(NOW * 1000)), 10)
    target = c.request_flush()
    first, second = c.take(NOW), c.take(NOW)
    c.offer(conversion(timestamp=int(NOW * 1000)), 10)  # after the flush: not covered
    assert c.pending_before(target) == 4
    c.settle(second, 2, delivered=True)
    assert c.pending_before(target) == 2  # the earlier window is still in flight
    c.settle(first, 1, delivered=True)
    c.settle(first, 1, delivered=False, reason="rejected")
    assert c.pending_before(target) == 0
    assert (c.delivered, c.dropped, c.in_flight_events) == (3, {"rejected": 1}, 0)


def test_every_accepted_event_is_exactly_one_of_delivered_dropped_queued_or_in_flight():
    c = core(batch_size=2, max_queue_events=3, flush_interval=100)
    for i in range(8):
        if c.offer(conversion(timestamp=int(NOW * 1000)), 10) == REFUSED:
            c.refuse("queue_full")
        if i == 4:
            w = c.take(NOW)
            c.settle(w, 2, delivered=True)
    s = c.snapshot(NOW)
    refused = 8 - s.enqueued
    assert refused == 3
    assert s.dropped["queue_full"] == refused
    assert s.enqueued == s.delivered + s.queued_events + s.in_flight


def test_discard_queue_counts_shutdown_drops_and_unreported_drops_are_reported_once():
    c = core()
    for _ in range(3):
        c.offer(conversion(), 10)
    assert c.discard_queue("shutdown") == 3
    assert c.take_unreported() == {"shutdown": 3}
    assert c.take_unreported() == {}
    assert c.snapshot(NOW).queued_bytes == 0


def test_the_sizes_stay_beside_their_events_through_every_change_of_the_queue():
    c = core(batch_size=2, max_queue_events=4, max_request_bytes=1000)
    sizes = iter(range(10, 1000, 37))

    def consistent() -> None:
        assert len(c.sizes) == len(c.queue)
        assert sum(c.sizes) == c.queued_bytes

    for _ in range(4):
        c.offer(conversion(), next(sizes))
    consistent()
    c.evict_for(900)
    c.force_append(conversion(), next(sizes))
    consistent()
    before = list(c.sizes)
    window = c.take(NOW)
    assert window is not None
    assert window.nbytes == sum(before[: len(window.events)])
    consistent()
    c.discard_queue("shutdown")
    consistent()
    c.offer(conversion(), 55)
    assert c.take(NOW + 10).nbytes == 55
    consistent()


@pytest.mark.parametrize(
    "changes",
    [
        {"batch_size": 0},
        {"flush_interval": 0},
        {"flush_interval": float("nan")},
        {"max_queue_bytes": -1},
        {"overflow": "spill"},
        {"max_request_bytes": 3_500_001},
        {"batch_size": 1.5},
    ],
)
def test_bad_settings_raise_configuration_error(changes):
    with pytest.raises(ConfigurationError):
        BatchSettings(**changes)
