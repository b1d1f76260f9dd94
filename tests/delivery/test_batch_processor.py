"""The thread driver with in-memory dispatchers that tests control (no sleeps)."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.delivery.factories import RecordingDispatcher, ScriptedDispatcher, conversion, impression, uuids_of

from flagstream.delivery.core import REFUSED, BatchCore
from flagstream.delivery.http import HttpDispatcher
from flagstream.delivery.processor import BatchEventProcessor
from flagstream.delivery.result import DeliveryOutcome, DispatchResult
from flagstream.delivery.retry import RetryPolicy
from flagstream.delivery.settings import BatchSettings
from flagstream.events.log_event import LogEvent
from flagstream.events.payload import estimated_size

FAST_RETRY = RetryPolicy(backoff_base=0.001, backoff_max=0.01, deadline=10.0)


@pytest.fixture
def closing():
    processors = []

    def make(*args, **kw):
        p = BatchEventProcessor(*args, **kw)
        processors.append(p)
        return p

    yield make
    for p in processors:
        p.close(timeout=2.0)


def test_every_event_of_a_tight_loop_burst_is_delivered_exactly_once(closing):
    dispatcher = RecordingDispatcher()
    processor = closing(dispatcher)
    events = [conversion() if i % 2 else impression() for i in range(20_000)]
    for event in events:
        processor.process(event)
    report = processor.flush(timeout=30)
    assert report.completed, report
    assert sorted(dispatcher.uuids) == sorted(e.uuid for e in events)
    stats = processor.stats()
    assert (stats.enqueued, stats.delivered, stats.dropped_total) == (20_000, 20_000, 0)


def test_a_lone_event_is_sent_after_the_flush_interval_without_flush(closing):
    dispatcher = RecordingDispatcher()
    processor = closing(dispatcher, flush_interval=0.2)
    start = time.monotonic()
    processor.process(conversion())
    assert dispatcher.wait_for(1, timeout=5)
    assert time.monotonic() - start < 4.0


def test_flush_reports_pending_when_the_dispatcher_is_stuck_and_returns_by_its_deadline(closing):
    gate = threading.Event()
    dispatcher = RecordingDispatcher(gate=gate)
    processor = closing(dispatcher, batch_size=10)
    for _ in range(25):
        processor.process(conversion())
    start = time.monotonic()
    report = processor.flush(timeout=0.5)
    assert time.monotonic() - start < 1.5
    assert report.pending == 25
    assert report.timed_out
    gate.set()
    assert processor.flush(timeout=10).completed
    assert len(dispatcher.uuids) == 25


def test_close_returns_by_its_deadline_with_the_report_when_the_dispatcher_never_returns(closing):
    gate = threading.Event()
    dispatcher = RecordingDispatcher(gate=gate)
    processor = closing(dispatcher, batch_size=10, max_in_flight=1)
    for _ in range(30):
        processor.process(conversion())
    assert dispatcher.entered.wait(5)  # the first window is in flight
    start = time.monotonic()
    report = processor.close(timeout=0.5)
    elapsed = time.monotonic() - start
    gate.set()
    assert elapsed < 1.5
    assert report.timed_out
    assert report.pending == 10  # the window in flight
    assert report.dropped["shutdown"] == 20  # still queued: dropped and counted
    assert report.pending + report.dropped_total + report.delivered == 30


def test_close_interrupts_a_retry_wait(closing):
    answer = lambda le: DispatchResult.from_status(503, retry_after=60.0)  # noqa: E731
    processor = closing(ScriptedDispatcher(answer), flush_interval=0.05)
    processor.process(conversion())
    processor.flush(timeout=0.3)
    start = time.monotonic()
    report = processor.close(timeout=5.0)
    assert time.monotonic() - start < 1.0
    assert report.dropped["shutdown"] == 1


def test_drop_newest_counts_every_refused_event_exactly(closing):
    gate = threading.Event()
    dispatcher = RecordingDispatcher(gate=gate)
    outcomes: list[DeliveryOutcome] = []
    processor = closing(
        dispatcher, batch_size=5, max_queue_events=20, max_in_flight=1, on_outcome=outcomes.append
    )
    for _ in range(5):
        processor.process(conversion())
    assert dispatcher.entered.wait(5)  # the first window is now stuck in flight
    for _ in range(100):
        processor.process(conversion())
    stats = processor.stats()
    assert stats.dropped["queue_full"] == 80
    assert stats.queued_events == 20
    gate.set()
    assert processor.flush(timeout=10).completed
    stats = processor.stats()
    assert (stats.delivered, stats.dropped_total, stats.enqueued) == (25, 80, 25)
    assert sum(o.events for o in outcomes if o.reason == "queue_full") == 80


def test_drop_oldest_keeps_the_newest_events(closing):
    gate = threading.Event()
    dispatcher = RecordingDispatcher(gate=gate)
    processor = closing(
        dispatcher, batch_size=5, max_queue_events=10, max_in_flight=1, overflow="drop_oldest"
    )
    first = [conversion() for _ in range(5)]
    for event in first:
        processor.process(event)
    assert dispatcher.entered.wait(5)
    later = [conversion() for _ in range(30)]
    for event in later:
        processor.process(event)
    gate.set()
    assert processor.flush(timeout=10).completed
    assert set(dispatcher.uuids) == {e.uuid for e in first + later[-10:]}
    assert processor.stats().dropped["queue_full"] == 20


def test_block_overflow_waits_for_room_then_times_out_with_a_count(closing):
    gate = threading.Event()
    dispatcher = RecordingDispatcher(gate=gate)
    processor = closing(
        dispatcher,
        batch_size=2,
        max_queue_events=2,
        max_in_flight=1,
        overflow="block",
        block_timeout=0.2,
    )
    for _ in range(2):
        processor.process(conversion())
    assert dispatcher.entered.wait(5)  # window of 2 in flight, queue empty
    processor.process(conversion())
    processor.process(conversion())
    start = time.monotonic()
    processor.process(conversion())  # no room: blocks, then gives up
    assert 0.15 < time.monotonic() - start < 1.5
    assert processor.stats().dropped["block_timeout"] == 1
    gate.set()
    processor.process(conversion())  # room comes as the worker takes the next window
    assert processor.flush(timeout=10).completed
    assert processor.stats().delivered == 5


def test_a_plain_dispatcher_exception_is_a_retryable_failure(closing):
    dispatcher = RecordingDispatcher(fail=3)
    processor = closing(dispatcher, retry=FAST_RETRY)
    events = [conversion() for _ in range(10)]
    for event in events:
        processor.process(event)
    assert processor.flush(timeout=10).completed
    assert sorted(dispatcher.uuids) == sorted(e.uuid for e in events)
    stats = processor.stats()
    assert stats.retried == 3
    assert stats.last_error is not None
    assert "simulated failure" in stats.last_error


class Fatal(BaseException):
    pass


def test_a_dead_worker_is_restarted_and_later_events_are_delivered(closing):
    calls = {"n": 0}
    delivered: list[str] = []

    class Dying:
        def dispatch_event(self, log_event):
            calls["n"] += 1
            if calls["n"] == 1:
                raise Fatal("worker killer")
            delivered.extend(uuids_of(log_event.body))

    processor = closing(Dying(), max_in_flight=1)
    processor.process(conversion())
    processor.flush(timeout=5)
    assert processor.stats().dropped == {"internal_error": 1}
    event = conversion()
    processor.process(event)
    assert processor.flush(timeout=5).completed
    assert delivered == [event.uuid]
    assert processor.stats().worker_restarts == 1


def test_callbacks_see_each_log_event_before_it_is_sent_and_each_outcome(closing):
    order: list[str] = []
    seen: list[LogEvent] = []
    outcomes: list[DeliveryOutcome] = []

    class Dispatcher:
        def dispatch_event(self, log_event):
            order.append("send")

    def on_log_event(log_event):
        order.append("log_event")
        seen.append(log_event)

    processor = closing(Dispatcher(), on_log_event=on_log_event, on_outcome=outcomes.append)
    for _ in range(3):
        processor.process(conversion())
    assert processor.flush(timeout=5).completed
    assert order == ["log_event", "send"]
    assert isinstance(seen[0], LogEvent)
    assert len(uuids_of(seen[0].body)) == 3
    assert outcomes == [DeliveryOutcome(True, 3, None, DispatchResult.success())] or (
        outcomes[0].delivered and outcomes[0].events == 3
    )


def test_rejected_events_go_to_the_dead_letter_callback_and_the_rest_are_delivered(closing):
    events = [conversion() for _ in range(9)]
    bad = events[4].uuid
    dead: list[tuple[str, int | None]] = []

    def answer(le):
        return DispatchResult.from_status(400 if bad in uuids_of(le.body) else 204)

    dispatcher = ScriptedDispatcher(answer)
    processor = closing(dispatcher, dead_letter=lambda ev, res: dead.append((ev.uuid, res.status)))
    for event in events:
        processor.process(event)
    assert processor.flush(timeout=5).completed
    assert dead == [(bad, 400)]
    stats = processor.stats()
    assert (stats.delivered, stats.dropped["rejected"]) == (8, 1)


def test_process_after_close_is_counted_and_never_raises(closing):
    processor = closing(RecordingDispatcher())
    processor.close(timeout=1)
    processor.process(conversion())
    processor.process("not an event")  # type: ignore[arg-type]
    stats = processor.stats()
    assert stats.dropped["closed"] == 1
    assert stats.dropped["internal_error"] == 1
    assert processor.close().completed  # idempotent


def test_stats_render_as_prometheus_text(closing):
    processor = closing(RecordingDispatcher())
    processor.process(conversion())
    processor.flush(timeout=5)
    text = processor.prometheus_text()
    assert "flagstream_delivery_delivered_total 1" in text
    assert 'flagstream_delivery_dropped_total{reason="queue_full"} 0' in text
    assert text.endswith("\n")


def test_stop_is_close_with_the_default_timeout(closing):
    dispatcher = RecordingDispatcher()
    processor = closing(dispatcher)
    processor.process(conversion())
    processor.stop()
    assert len(dispatcher.uuids) == 1
    assert not processor.is_running


def test_a_single_event_too_large_for_any_request_is_rejected_with_a_reason(closing):
    outcomes: list[DeliveryOutcome] = []
    dispatcher = RecordingDispatcher()
    processor = closing(dispatcher, on_outcome=outcomes.append)
    processor.process(conversion(tags={"blob": "x" * 3_600_000}))
    processor.process(conversion())
    assert processor.flush(timeout=5).completed
    stats = processor.stats()
    assert stats.dropped == {"too_large": 1}
    assert stats.delivered == 1
    assert DeliveryOutcome(False, 1, "too_large") in outcomes


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=-1, max_value=1_000), max_size=40),
    max_events=st.integers(min_value=1, max_value=20),
    max_bytes=st.integers(min_value=1, max_value=5_000),
    max_request_bytes=st.integers(min_value=1, max_value=1_000),
    batch_size=st.integers(min_value=1, max_value=10),
)
def test_process_admits_exactly_what_the_core_offer_admits(
    lengths, max_events, max_bytes, max_request_bytes, batch_size
):
    # process() sizes the event and offers it to the queue under the lock (delivery/intake.py);
    # its bounds and counts must be BatchCore.offer's. A length of -1 stands for an object that
    # is not a user event (its size cannot be estimated).
    options = {
        "max_queue_events": max_events,
        "max_queue_bytes": max_bytes,
        "max_request_bytes": max_request_bytes,
        "batch_size": batch_size,
        "flush_interval": 3600.0,
    }
    processor = BatchEventProcessor(RecordingDispatcher(), start_on_init=False, **options)
    processor._running = True  # no workers: nothing leaves the queue
    reference = BatchCore(BatchSettings(**options))
    try:
        for length in lengths:
            event = conversion(user="u" * length) if length >= 0 else ("not", "a", "user", "event")
            processor.process(event)
            size = estimated_size(event) if length >= 0 else -1
            if size < 0 or reference.offer(event, size) == REFUSED:
                reason = "internal_error" if size < 0 else (reference.refusal(size) or "queue_full")
                reference.refuse(reason)
        core = processor._core
        seen = (core.enqueued, core.queued_bytes, dict(core.dropped))
    finally:
        processor.close(timeout=0.1)
    assert seen == (reference.enqueued, reference.queued_bytes, reference.dropped)


def test_concurrent_producers_are_counted_exactly(closing):
    gate = threading.Event()
    dispatcher = RecordingDispatcher(gate=gate)
    processor = closing(dispatcher, batch_size=50, max_queue_events=3_000, max_in_flight=2)
    start = threading.Barrier(4)

    def produce():
        start.wait(5)
        for _ in range(5_000):
            processor.process(conversion())

    threads = [threading.Thread(target=produce) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    gate.set()
    assert processor.flush(timeout=20).completed
    stats = processor.stats()
    assert stats.enqueued + stats.dropped["queue_full"] == 20_000
    assert stats.delivered == stats.enqueued == len(dispatcher.uuids) == len(set(dispatcher.uuids))


@pytest.mark.parametrize("in_flight", [1, 4, 8])
def test_an_owned_http_dispatcher_keeps_one_connection_per_request_in_flight(in_flight):
    processor = BatchEventProcessor(max_in_flight=in_flight, start_on_init=False)
    try:
        assert isinstance(processor.event_dispatcher, HttpDispatcher)
        assert processor.event_dispatcher.max_connections == in_flight
    finally:
        processor.close(timeout=1.0)
