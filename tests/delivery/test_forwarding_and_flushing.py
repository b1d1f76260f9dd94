from __future__ import annotations

import contextlib
import threading

from tests.delivery.factories import RecordingDispatcher, conversion, impression

from flagstream.delivery.flushing import flushing
from flagstream.delivery.forwarding import ForwardingEventProcessor
from flagstream.delivery.processor import BatchEventProcessor
from flagstream.events.payload import build_log_event


def test_forwarding_sends_one_request_per_event_on_the_callers_thread():
    threads = []

    class Dispatcher(RecordingDispatcher):
        def dispatch_event(self, log_event):
            threads.append(threading.get_ident())
            super().dispatch_event(log_event)

    dispatcher = Dispatcher()
    seen = []
    processor = ForwardingEventProcessor(dispatcher, on_log_event=seen.append)
    events = [conversion(), impression()]
    for event in events:
        processor.process(event)
    assert threads == [threading.get_ident()] * 2
    assert [le.body for le in dispatcher.log_events] == [build_log_event([e]).body for e in events]
    assert seen == dispatcher.log_events


def test_forwarding_catches_and_logs_dispatcher_exceptions(caplog):
    processor = ForwardingEventProcessor(RecordingDispatcher(fail=1))
    processor.process(conversion())  # does not raise
    assert any("error dispatching event" in r.getMessage() for r in caplog.records)
    processor.process("not an event")  # type: ignore[arg-type]
    processor.stop()


def test_flushing_context_manager_delivers_before_the_block_ends():
    dispatcher = RecordingDispatcher()
    processor = BatchEventProcessor(dispatcher, flush_interval=60, batch_size=1000)
    try:
        with flushing(processor, timeout=5) as done:
            for _ in range(10):
                processor.process(conversion())
        assert len(dispatcher.uuids) == 10
        assert done.report.delivered == 10
    finally:
        processor.close(timeout=1)


def test_flushing_decorator_flushes_after_the_call_even_when_it_raises():
    dispatcher = RecordingDispatcher()
    processor = BatchEventProcessor(dispatcher, flush_interval=60, batch_size=1000)

    class Client:
        event_processor = processor

    @flushing(Client(), timeout=5)
    def handler(fail):
        processor.process(conversion())
        if fail:
            raise RuntimeError("task failed")

    try:
        handler(False)
        with contextlib.suppress(RuntimeError):
            handler(True)
        assert len(dispatcher.uuids) == 2
    finally:
        processor.close(timeout=1)


def test_flushing_a_target_without_flush_only_logs(caplog):
    with flushing(object(), timeout=0.1) as done:
        pass
    assert done.report is None
    assert any("has no flush" in r.getMessage() for r in caplog.records)
