"""The spool under AsyncBatchEventProcessor: the same guarantee as with threads.

A real collector on 127.0.0.1 (through the default aiohttp dispatcher), a real
directory, and a producer on an event loop killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.delivery.factories import RecordingDispatcher, context, conversion, impression, uuids_of
from tests.spool.crash_helpers import stored_uuids

from flagstream.collector import Collector, FaultConfig
from flagstream.delivery import BatchEventProcessor
from flagstream.delivery.aio import AsyncBatchEventProcessor
from flagstream.delivery.retry import RetryPolicy
from flagstream.delivery.spool.options import SPOOL_ENV
from flagstream.events.payload import build_log_event

ROOT = Path(__file__).resolve().parents[2]
FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_max=0.05, deadline=0.3)


def test_spooled_events_reach_the_collector_with_the_bytes_build_log_event_writes(tmp_path):
    with Collector(keep_raw_bodies=True) as collector:
        ctx = context(collector.events_url)
        events = [conversion(ctx) if i % 3 else impression(ctx) for i in range(2_000)]

        async def main():
            processor = AsyncBatchEventProcessor(spool=tmp_path, batch_size=100, flush_interval=0.05)
            for event in events:
                processor.process(event)
            assert processor.spool is not None
            assert processor.spool.accepted == len(events)  # all on disk, none in memory
            flushed = await processor.aflush(timeout=20)
            closed = await processor.aclose(timeout=5)
            return flushed, closed, processor.stats()

        flushed, closed, stats = asyncio.run(main())
        assert flushed.completed
        assert flushed.delivered == len(events)
        assert closed.spooled == 0
        assert (stats.delivered, stats.dropped_total, stats.spooled_events) == (len(events), 0, 0)
        assert collector.event_count() == len(events)
        by_uuid = {e.uuid: e for e in events}
        for body in collector.raw_bodies():
            assert body == build_log_event([by_uuid[u] for u in uuids_of(body)]).body
    assert os.listdir(tmp_path) == []


def test_what_aclose_cannot_deliver_stays_on_disk_and_the_next_processor_delivers_it(tmp_path):
    down = RecordingDispatcher(fail=10**9)
    events = [conversion() for _ in range(60)]

    async def first():
        processor = AsyncBatchEventProcessor(down, spool=tmp_path, flush_interval=0.05, retry=FAST_RETRY)
        for event in events:
            processor.process(event)
        return await processor.aclose(timeout=0.5)  # its flush sends; every attempt fails

    report = asyncio.run(first())
    assert report.spooled == 60
    assert report.timed_out
    assert report.dropped_total == 0  # on disk, not lost
    assert down.calls > 0

    up = RecordingDispatcher()

    async def second():
        processor = AsyncBatchEventProcessor(up, spool=tmp_path, flush_interval=0.05)
        processor.start()
        deadline = time.monotonic() + 15
        while len(up.uuids) < 60 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stats = processor.stats()
        await processor.aclose(timeout=5)
        return stats

    stats = asyncio.run(second())
    assert sorted(up.uuids) == sorted(e.uuid for e in events)
    assert stats.replayed == 60
    assert stats.delivered == 0  # not its own events
    assert os.listdir(tmp_path) == []


_PRODUCER = textwrap.dedent(
    """
    import asyncio, os, sys
    from flagstream.delivery.aio import AsyncBatchEventProcessor
    from flagstream.delivery.retry import RetryPolicy
    from tests.delivery.factories import context, conversion

    async def main():
        ctx = context(sys.argv[2])
        retry = RetryPolicy(backoff_base=0.05, backoff_max=0.2, deadline=60.0)
        processor = AsyncBatchEventProcessor(spool=sys.argv[1], batch_size=50, flush_interval=0.05, retry=retry)
        n = 0
        while True:
            event = conversion(ctx, user=f"async-{n}")
            processor.process(event)
            os.write(1, (event.uuid + "\\n").encode())  # returned: the event is accepted
            n += 1
            if n % 20 == 0:
                await asyncio.sleep(0.001)

    asyncio.run(main())
    """
)


def test_an_asyncio_producer_killed_with_sigkill_loses_no_accepted_event(tmp_path):
    spool_dir = tmp_path / "spool"
    with Collector() as collector:
        collector.set_faults(FaultConfig(latency=0.2))  # so that windows are in flight at the kill
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
        env.pop(SPOOL_ENV, None)
        producer = subprocess.Popen(
            [sys.executable, "-c", _PRODUCER, str(spool_dir), collector.events_url],
            stdout=subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
        assert producer.stdout is not None
        accepted: list[str] = []
        while len(accepted) < 3_000:
            line = producer.stdout.readline()
            assert line, "the producer exited"
            accepted.append(line.decode().strip())
        os.kill(producer.pid, signal.SIGKILL)  # mid-run: windows in flight, events unsent
        rest = producer.stdout.read().decode().split()
        producer.stdout.close()
        producer.wait(10)
        accepted += [u for u in rest if len(u) == 36]

        collector.set_faults(FaultConfig())
        before = len(stored_uuids(collector))

        async def replay():
            processor = AsyncBatchEventProcessor(spool=spool_dir, flush_interval=0.05)
            processor.start()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not set(accepted) <= set(stored_uuids(collector)):
                await asyncio.sleep(0.1)
            replayed = processor.stats().replayed
            await processor.aclose(timeout=5)
            return replayed

        replayed = asyncio.run(replay())
        assert replayed > 0, "nothing was left on disk at the kill: the test proved nothing"
        delivered = stored_uuids(collector)
        assert set(accepted) <= set(delivered), f"{len(set(accepted) - set(delivered))} accepted events lost"
        assert set(delivered) <= set(accepted), "an event nobody reported arrived"
        assert collector.duplicate_count() <= 4 * 50  # at most the windows in flight at the kill
        print(f"async SIGKILL: {len(accepted)} accepted, {before} stored by then, {replayed} replayed")
    assert [p for p in os.listdir(spool_dir) if p.endswith(".seg")] == []


def test_the_environment_gives_async_processors_a_spool_and_spool_false_opts_out(tmp_path, monkeypatch):
    monkeypatch.setenv(SPOOL_ENV, str(tmp_path))

    async def main():
        with_env = AsyncBatchEventProcessor(RecordingDispatcher())
        opted_out = AsyncBatchEventProcessor(RecordingDispatcher(), spool=False)
        threaded = BatchEventProcessor(RecordingDispatcher(), start_on_init=False)
        try:
            return with_env.spool is not None, opted_out.spool is None, threaded.spool is not None
        finally:
            await with_env.aclose(timeout=1)
            await opted_out.aclose(timeout=1)
            threaded.close(timeout=1)

    assert asyncio.run(main()) == (True, True, True)


def test_stats_of_an_async_spooled_processor_show_the_spool(tmp_path):
    async def main():
        # Nothing is due (a 10 s interval, batches of 1 000): all 25 stay on disk.
        processor = AsyncBatchEventProcessor(
            RecordingDispatcher(), spool=tmp_path, flush_interval=10.0, batch_size=1000, retry=FAST_RETRY
        )
        for _ in range(25):
            processor.process(conversion())
        stats = processor.stats()
        text = processor.prometheus_text()
        await processor.aclose(timeout=0.2)
        return stats, text

    stats, text = asyncio.run(main())
    assert stats.spooled_events == 25
    assert stats.spool_healthy
    assert stats.enqueued == 25
    assert "spooled_events" in text
