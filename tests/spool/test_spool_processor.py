"""The spool inside a BatchEventProcessor and the client: options, bytes, flush/close, restart, stats."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from tests.delivery.factories import (
    RecordingDispatcher,
    ScriptedDispatcher,
    context,
    conversion,
    impression,
    uuids_of,
)

import flagstream
from flagstream.delivery import BatchEventProcessor, EventSpool
from flagstream.delivery.result import DispatchResult
from flagstream.delivery.spool import SpooledEvent
from flagstream.errors import ConfigurationError
from flagstream.events.payload import build_log_event

ROOT = Path(__file__).resolve().parents[2]
DATAFILE = (ROOT / "tests" / "fixtures" / "basic_datafile.json").read_text()


def _files(directory: Path, suffix: str) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(suffix))


def test_the_bytes_sent_are_the_bytes_build_log_event_writes(tmp_path):
    sent = RecordingDispatcher()
    events = [conversion(tags={"n": i}) if i % 2 else impression() for i in range(300)]
    events += [conversion(context(revision="43"))]  # a second context in the same segment
    with BatchEventProcessor(sent, spool=tmp_path, batch_size=50, flush_interval=0.05) as processor:
        for event in events:
            processor.process(event)
        assert processor.flush(10).completed
    by_uuid = {e.uuid: e for e in events}
    assert sorted(sent.uuids) == sorted(by_uuid)
    for log_event in sent.log_events:
        assert log_event.body == build_log_event([by_uuid[u] for u in uuids_of(log_event.body)]).body


def test_close_removes_everything_once_all_is_delivered(tmp_path):
    with BatchEventProcessor(RecordingDispatcher(), spool=tmp_path, flush_interval=0.05) as processor:
        for _ in range(100):
            processor.process(conversion())
        report = processor.flush(10)
        assert report.completed
        assert report.delivered == 100
    assert os.listdir(tmp_path) == []


def test_what_close_cannot_deliver_stays_on_disk_and_the_next_processor_delivers_it(tmp_path):
    down = RecordingDispatcher(fail=10**9)
    processor = BatchEventProcessor(down, spool=tmp_path, flush_interval=0.05)
    events = [conversion() for _ in range(40)]
    for event in events:
        processor.process(event)
    report = processor.close(timeout=0.3)
    assert report.spooled == 40
    assert report.timed_out
    assert report.dropped_total == 0  # on disk, not lost
    assert _files(tmp_path, ".seg")

    up = RecordingDispatcher()
    with BatchEventProcessor(up, spool=tmp_path, flush_interval=0.05) as replaying:
        assert up.wait_for(40, timeout=15)
        assert replaying.stats().replayed == 40
        assert replaying.stats().delivered == 0  # not its own events
    assert sorted(up.uuids) == sorted(e.uuid for e in events)


def test_events_whose_retries_run_out_stay_in_the_spool_until_the_server_returns(tmp_path):
    from flagstream.delivery import RetryPolicy

    up = threading.Event()

    def answer(log_event):
        return DispatchResult.from_status(204 if up.is_set() else 503)

    sent = ScriptedDispatcher(answer)
    policy = RetryPolicy(deadline=0.2, backoff_base=0.01, backoff_max=0.02)
    with BatchEventProcessor(sent, spool=tmp_path, flush_interval=0.05, retry=policy) as processor:
        for _ in range(30):
            processor.process(conversion())
        assert processor.flush(timeout=1.5).pending == 30  # several retry deadlines went by
        stats = processor.stats()
        assert stats.dropped_total == 0
        assert stats.spooled_events == 30
        up.set()
        assert processor.flush(timeout=10).completed
        assert processor.stats().delivered == 30
    delivered = [u for _, log_event, result in sent.sent if result.ok for u in uuids_of(log_event.body)]
    assert len(delivered) == len(set(delivered)) == 30


def test_flush_waits_for_spooled_events_and_reports_them(tmp_path):
    gate = threading.Event()
    sent = RecordingDispatcher(gate=gate)
    with BatchEventProcessor(sent, spool=tmp_path, flush_interval=10.0) as processor:
        for _ in range(20):
            processor.process(conversion())
        early = processor.flush(timeout=0.2)
        assert early.pending == 20
        assert early.timed_out
        gate.set()
        late = processor.flush(timeout=10)
        assert late.completed
        assert processor.stats().delivered == 20
        assert processor.stats().spooled_events == 0


def test_stats_and_prometheus_show_the_spool(tmp_path):
    gate = threading.Event()
    with BatchEventProcessor(
        RecordingDispatcher(gate=gate), spool=tmp_path, flush_interval=10.0
    ) as processor:
        for _ in range(7):
            processor.process(conversion())
        stats = processor.stats()
        assert stats.enqueued == 7
        assert stats.spooled_events == 7
        assert stats.spool_healthy is True
        text = processor.prometheus_text()
        assert "flagstream_delivery_spooled_events 7" in text
        assert "flagstream_delivery_spool_healthy 1" in text
        assert 'flagstream_delivery_dropped_total{reason="spool_cap"} 0' in text
        gate.set()
    assert BatchEventProcessor(RecordingDispatcher(), start_on_init=False).stats().spool_healthy is None


def test_dead_letters_of_a_spooled_processor_are_spooled_events(tmp_path):
    def answer(log_event):
        return DispatchResult.from_status(400 if b"poison" in log_event.body else 204)

    dead: list[tuple[object, DispatchResult]] = []
    processor = BatchEventProcessor(
        ScriptedDispatcher(answer),
        spool=tmp_path,
        flush_interval=0.05,
        dead_letter=lambda e, r: dead.append((e, r)),
    )
    with processor:
        for i in range(10):
            processor.process(conversion(user="poison" if i == 3 else None))
        assert processor.flush(10).completed
        assert processor.stats().dropped == {"rejected": 1}
    ((event, result),) = dead
    assert isinstance(event, SpooledEvent)
    assert b'"visitor_id":"poison"' in event.visitor
    assert result.status == 400


def test_drop_newest_refuses_events_when_the_directory_is_full(tmp_path):
    spool = EventSpool(tmp_path, max_bytes=64 * 1024, segment_bytes=16 * 1024, on_full="drop_newest")
    down = RecordingDispatcher(fail=10**9)
    processor = BatchEventProcessor(down, spool=spool, flush_interval=10.0)
    big = {"pad": "x" * 2000}
    for _ in range(200):
        processor.process(conversion(tags=big))
    # The caller's budget runs out at once; the keeper's scan keeps it honest afterwards.
    stats = processor.stats()
    assert stats.dropped.get("spool_cap", 0) > 0
    assert stats.enqueued + stats.dropped["spool_cap"] == 200
    processor.close(timeout=0.2)
    spool.close()
    size = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert size <= 64 * 1024 + 16 * 1024 + 2 * 2200


def test_spool_options_and_their_errors(tmp_path, monkeypatch):
    processor = BatchEventProcessor(
        RecordingDispatcher(), spool={"directory": tmp_path / "a", "fsync": "never"}
    )
    assert processor.spool is not None
    assert processor.spool.fsync == "never"
    processor.close()
    with pytest.raises(ConfigurationError, match="fsync"):
        BatchEventProcessor(spool={"directory": tmp_path, "fsync": "sometimes"})
    with pytest.raises(ConfigurationError, match="directory"):
        BatchEventProcessor(spool={"fsync": "never"})
    with pytest.raises(ConfigurationError, match="spool options"):
        BatchEventProcessor(spool={"directory": tmp_path, "colour": "red"})
    with pytest.raises(ConfigurationError, match="spool must be"):
        BatchEventProcessor(spool=42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_bytes"):
        EventSpool(tmp_path, max_bytes=float("nan"))  # type: ignore[arg-type]
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigurationError, match="cannot be created"):
        EventSpool(blocker / "spool")
    monkeypatch.setenv("FLAGSTREAM_SPOOL_DIR", str(tmp_path / "env"))
    from_env = BatchEventProcessor(RecordingDispatcher())
    assert from_env.spool is not None
    assert from_env.spool.directory == str(tmp_path / "env")
    from_env.close()
    assert BatchEventProcessor(RecordingDispatcher(), spool=False, start_on_init=False).spool is None


def test_the_client_takes_the_spool_from_event_processor_options(tmp_path):
    sent = RecordingDispatcher()
    client = flagstream.Optimizely(
        DATAFILE, event_dispatcher=sent, event_processor_options={"spool": str(tmp_path)}
    )
    client.track("purchase", "user-1")
    assert _files(tmp_path, ".seg")  # on disk before track() returned
    client.close()
    assert sent.wait_for(1, timeout=5)
    with pytest.raises(ConfigurationError):
        flagstream.Optimizely(
            DATAFILE, event_processor_options={"spool": {"directory": tmp_path, "on_full": "?"}}
        )


def test_a_directory_that_cannot_be_locked_is_refused(tmp_path):
    # /proc does not take files: the clearest "cannot be locked" available without a network mount.
    with pytest.raises(ConfigurationError, match="cannot be"):
        EventSpool("/proc/self/flagstream-spool")


_ABANDON = """
import os, sys
sys.path.insert(0, sys.argv[2])
from flagstream.delivery import BatchEventProcessor
from tests.delivery.factories import RecordingDispatcher, conversion
processor = BatchEventProcessor(RecordingDispatcher(fail=10**9), spool=sys.argv[1], start_on_init=False)
for i in range(25):
    processor.process(conversion())
print("written", flush=True)
os._exit(0)  # no close, no exit hook: what a SIGKILL leaves, minus the signal
"""


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], check=False, capture_output=True, text=True, timeout=timeout
    )


def _abandon(directory: Path) -> None:
    """25 events left in ``directory`` by a process that died without closing its spool."""
    done = _run("-c", _ABANDON, str(directory), str(ROOT))
    assert "written" in done.stdout, done.stderr


def test_cli_status_verify_and_drain(tmp_path):
    from flagstream.collector import Collector

    _abandon(tmp_path)
    status = _run("-m", "flagstream", "spool", "status", str(tmp_path))
    assert status.returncode == 0, status.stderr
    assert "dead (adoptable)" in status.stdout
    assert "25 events waiting" in status.stdout
    verify = _run("-m", "flagstream", "spool", "verify", str(tmp_path))
    assert verify.returncode == 0
    assert "25 intact events, 0 damaged" in verify.stdout
    with Collector() as collector:
        drain = _run(
            "-m", "flagstream", "spool", "drain", str(tmp_path), "--endpoint", collector.events_url,
            "--timeout", "30", timeout=90,
        )  # fmt: skip
        assert drain.returncode == 0, drain.stdout + drain.stderr
        assert collector.wait_for_events(25, timeout=5)
    assert "delivered 25 of 25" in drain.stdout
    assert not _files(tmp_path, ".seg")


def test_cli_verify_reports_damage(tmp_path):
    _abandon(tmp_path)
    (segment,) = [p for p in tmp_path.iterdir() if p.name.endswith("00000001.seg")]
    data = bytearray(segment.read_bytes())
    data[200] ^= 0xFF
    segment.write_bytes(bytes(data))
    verify = _run("-m", "flagstream", "spool", "verify", str(tmp_path))
    assert verify.returncode == 1
    assert "damaged stretch" in verify.stdout
    missing = _run("-m", "flagstream", "spool", "status", str(tmp_path / "nope"))
    assert missing.returncode == 2


def test_an_event_after_close_is_the_processors_closed_drop_not_a_degraded_spool(tmp_path):
    from tests.delivery.factories import RecordingDispatcher

    from flagstream.delivery import BatchEventProcessor

    processor = BatchEventProcessor(RecordingDispatcher(), spool=tmp_path, flush_interval=0.05)
    processor.process(conversion(context()))
    assert processor.close(timeout=5).completed
    processor.process(conversion(context()))
    stats = processor.stats()
    assert stats.dropped.get("closed") == 1
    assert stats.spool_degraded == 0


class _WakesAtOnce(EventSpool):
    """As a keeper that adopts a dead process's files just as the processor attaches."""

    def attach(self, batch_size: int, wake: object) -> None:
        super().attach(batch_size, wake)
        wake()  # type: ignore[operator]


def test_the_spool_may_wake_the_workers_as_soon_as_it_is_attached(tmp_path: Path) -> None:
    # The keeper calls the wake hook from its own thread when it adopts files, which can be
    # before the processor's constructor returns (found by the corruption soak as a keeper error).
    spool = _WakesAtOnce(tmp_path, fsync="never")
    processor = BatchEventProcessor(RecordingDispatcher(), spool=spool, start_on_init=False)
    try:
        assert processor.spool is spool
    finally:
        processor.close(timeout=5)
        spool.close()
