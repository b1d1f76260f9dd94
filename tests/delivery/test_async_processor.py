"""The asyncio driver: same core and plan, asyncio waits, aiohttp transport."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from tests.delivery.factories import RecordingDispatcher, context, conversion, impression
from tests.servers.raw import RawServer
from tests.servers.sink import Sink

from flagstream.collector import Collector
from flagstream.delivery.aio import AsyncBatchEventProcessor
from flagstream.delivery.aio_http import AsyncHttpDispatcher
from flagstream.delivery.result import Verdict
from flagstream.delivery.retry import RetryPolicy
from flagstream.errors import ConfigurationError
from flagstream.events.payload import build_log_event

FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_max=0.05, deadline=10.0)


def test_events_processed_on_the_loop_are_all_delivered_with_the_exact_bytes():
    with Collector(keep_raw_bodies=True) as collector:
        ctx = context(collector.events_url)
        events = [conversion(ctx) if i % 2 else impression(ctx) for i in range(5_000)]
        sent: list[bytes] = []

        async def main():
            processor = AsyncBatchEventProcessor(on_log_event=lambda le: sent.append(le.body))
            for event in events:
                processor.process(event)
            report = await processor.aflush(timeout=20)
            await processor.aclose(timeout=5)
            return report, processor.stats()

        report, stats = asyncio.run(main())
        assert report.completed
        assert (stats.delivered, stats.dropped_total) == (5_000, 0)
        assert collector.event_count() == 5_000
        assert sorted(collector.raw_bodies()) == sorted(sent)


def test_retryable_answers_are_retried_and_429_waits_for_retry_after():
    with Sink(
        lambda body, n: (429, {"Retry-After": "1"}) if n == 0 else (503, {}) if n == 1 else (204, {})
    ) as sink:
        ctx = context(sink.url)

        async def main():
            processor = AsyncBatchEventProcessor(retry=FAST_RETRY)
            processor.process(conversion(ctx))
            return await processor.aclose(timeout=10)

        report = asyncio.run(main())
        times = [t for t, _, _, _ in sink.log]
        statuses = [s for _, s, _, _ in sink.log]
    assert report.delivered == 1
    assert statuses == [429, 503, 204]
    assert times[1] - times[0] >= 1.0


def test_aclose_against_a_server_that_never_answers_returns_by_its_deadline():
    with RawServer("hung") as server:
        ctx = context(server.url)

        async def main():
            processor = AsyncBatchEventProcessor(batch_size=10)
            for _ in range(30):
                processor.process(conversion(ctx))
            await asyncio.sleep(0)  # let the workers take their windows
            start = time.monotonic()
            report = await processor.aclose(timeout=1.0)
            return time.monotonic() - start, report

        elapsed, report = asyncio.run(main())
    assert elapsed < 1.6
    assert report.timed_out
    assert report.delivered == 0
    assert report.pending + report.dropped_total == 30


def test_a_plain_dispatcher_runs_in_the_executor_and_process_works_from_other_threads():
    dispatcher = RecordingDispatcher()

    async def main():
        processor = AsyncBatchEventProcessor(dispatcher, batch_size=100)
        processor.start()
        events = [conversion() for _ in range(300)]
        thread = threading.Thread(target=lambda: [processor.process(e) for e in events])
        thread.start()
        await asyncio.get_running_loop().run_in_executor(None, thread.join)
        report = await processor.aclose(timeout=10)
        return events, report, processor.stats()

    events, report, stats = asyncio.run(main())
    assert report.completed
    assert stats.delivered == 300  # some may have been delivered before aclose() began
    assert sorted(dispatcher.uuids) == sorted(e.uuid for e in events)


def test_a_malformed_event_is_dead_lettered_by_bisection_on_the_asyncio_driver_too():
    with Collector() as collector:
        ctx = context(collector.events_url)
        events = [conversion(ctx) for _ in range(64)]
        events[10] = events[10]._replace(revenue="ten")
        dead = []

        async def main():
            processor = AsyncBatchEventProcessor(dead_letter=lambda e, r: dead.append(e.uuid))
            for event in events:
                processor.process(event)
            return await processor.aclose(timeout=10)

        report = asyncio.run(main())
        assert collector.event_count() == 63
    assert dead == [events[10].uuid]
    assert report.dropped == {"rejected": 1}


def test_block_overflow_is_refused_for_the_asyncio_processor():
    with pytest.raises(ConfigurationError):
        AsyncBatchEventProcessor(RecordingDispatcher(), overflow="block")


def test_async_http_dispatcher_sends_the_payload_bytes_and_reports_failures():
    with Sink() as sink, RawServer("reset") as reset:
        event = build_log_event([conversion(context(sink.url))])

        async def main():
            async with AsyncHttpDispatcher(timeout=2.0) as dispatcher:
                ok = await dispatcher.asend(event)
                bad = await dispatcher.asend(build_log_event([conversion(context(reset.url))]))
                return ok, bad

        ok, bad = asyncio.run(main())
        assert ok.status == 204
        assert sink.log[0][2] == event.body
        assert sink.log[0][3]["User-Agent"].startswith("flagstream/")
        assert not bad.ok
        assert bad.verdict is Verdict.RETRY


class Fatal(BaseException):
    pass


def test_a_dead_delivery_task_is_replaced_and_later_events_are_delivered():
    delivered: list[int] = []

    class Dying:
        calls = 0

        async def asend(self, log_event, deadline=None):
            Dying.calls += 1
            if Dying.calls == 1:
                raise Fatal("task killer")
            delivered.append(len(log_event.params["visitors"]))
            from flagstream.delivery.result import DispatchResult

            return DispatchResult.success(204)

    async def main():
        processor = AsyncBatchEventProcessor(Dying(), max_in_flight=1)
        processor.process(conversion())
        first = await processor.aflush(timeout=5)
        processor.process(conversion())
        second = await processor.aflush(timeout=5)
        stats = processor.stats()
        await processor.aclose(timeout=2)
        return first, second, stats

    first, second, stats = asyncio.run(main())
    assert first.dropped == {"internal_error": 1}
    assert second.completed
    assert second.delivered == 1
    assert delivered == [1]
    assert stats.worker_restarts == 1


def test_an_owned_async_dispatcher_keeps_one_connection_per_request_in_flight():
    processor = AsyncBatchEventProcessor(max_in_flight=6)
    assert isinstance(processor.event_dispatcher, AsyncHttpDispatcher)
    assert processor.event_dispatcher.max_connections == 6
