"""close() with time running out: what is not delivered stays on disk for the next process.

Found by the multi-process run (workers that finished while the collector was
down reported ``shutdown`` drops and their events left the directory); fixed
in 6410830, kept as its regression test.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.delivery.factories import context, conversion
from tests.spool.crash_helpers import stored_uuids, wait_until

from flagstream.collector import Collector, FaultConfig
from flagstream.delivery.processor import BatchEventProcessor
from flagstream.events.ids import format_uuid


def test_events_in_a_retry_wait_when_close_runs_out_of_time_stay_spooled(tmp_path: Path) -> None:
    directory = str(tmp_path / "spool")
    with Collector() as collector:
        collector.set_faults(FaultConfig(fail_rate=1.0, status=503))
        ctx = context(collector.events_url)
        events = [conversion(ctx, user=f"closing-{i}") for i in range(10)]
        first = BatchEventProcessor(batch_size=10, flush_interval=0.05, spool=directory)
        for event in events:
            first.process(event)
        assert wait_until(lambda: any(status == 503 for status, _, _ in collector.request_log()), 10.0)
        report = first.close(timeout=1.0)  # the batch is between retries when time runs out
        assert report.dropped.get("shutdown", 0) == 0, f"accepted events dropped at close: {report}"
        assert report.spooled == 10, report
        assert any(name.endswith(".seg") for name in os.listdir(directory)), "the events left the disk"

        collector.set_faults(FaultConfig())
        second = BatchEventProcessor(batch_size=10, flush_interval=0.05, spool=directory)
        try:
            want = {format_uuid(event.uuid) for event in events}
            assert wait_until(lambda: want <= set(stored_uuids(collector)), 15.0), "not replayed"
        finally:
            second.close(timeout=5.0)


def test_events_delivered_before_close_runs_out_are_not_sent_again(tmp_path: Path) -> None:
    directory = str(tmp_path / "spool")
    with Collector() as collector:
        ctx = context(collector.events_url)
        first = BatchEventProcessor(batch_size=10, flush_interval=0.05, spool=directory)
        for i in range(25):
            first.process(conversion(ctx, user=f"done-{i}"))
        report = first.close(timeout=10.0)
        assert (first.stats().delivered, report.spooled, report.timed_out) == (25, 0, False), report
        assert os.listdir(directory) == []
        second = BatchEventProcessor(batch_size=10, flush_interval=0.05, spool=directory)
        second.close(timeout=5.0)
        assert (collector.event_count(), collector.duplicate_count()) == (25, 0)
