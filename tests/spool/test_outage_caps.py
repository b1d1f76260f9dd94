"""A long Event API outage under steady traffic, with small caps: the spool directory stays within
``max_bytes`` plus one segment, memory stays flat, the overflow is counted (``spool_cap``), and
after recovery every event that was not counted as dropped arrives."""

from __future__ import annotations

import os
import secrets
import threading
import time

import psutil
import pytest
from tests.delivery.factories import context, conversion
from tests.spool.robust_helpers import Capture, KeeperDriver, dir_bytes, make_events, spool_options, uuid_of

from flagstream.collector import Collector, FaultConfig
from flagstream.delivery.processor import BatchEventProcessor
from flagstream.delivery.retry import RetryPolicy
from flagstream.delivery.spool import EventSpool
from flagstream.delivery.spool import format as fmt
from flagstream.delivery.spool.files import segment_name
from flagstream.delivery.spool.segment import context_bytes
from flagstream.events.payload import visitor_bytes

MiB = 1024 * 1024


class DirectorySampler:
    """Samples the directory's size on a thread until stopped (the largest size seen is kept)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.largest = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.largest = max(self.largest, dir_bytes(self.directory))
            self.samples += 1

    def __enter__(self) -> DirectorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def run_outage(tmp_path, *, events: int, max_bytes: int, segment_bytes: int, rate: float | None) -> dict:
    """``rate``: events per second offered (steady traffic), or None for a burst as fast as possible."""
    directory = str(tmp_path / "spool")
    me = psutil.Process()
    with Collector() as collector:
        collector.set_faults(FaultConfig(fail_rate=1.0, status=503))
        ctx = context(collector.events_url)
        processor = BatchEventProcessor(
            spool=spool_options(
                directory, max_bytes=max_bytes, segment_bytes=segment_bytes, fsync="interval"
            ),
            batch_size=100,
            flush_interval=0.1,
            max_in_flight=2,
            retry=RetryPolicy(backoff_base=0.02, backoff_max=0.2, max_attempts=1_000_000, deadline=600),
        )
        spool = processor.spool
        assert spool is not None
        pace = threading.Event()
        rss: list[int] = []
        try:
            with DirectorySampler(directory) as sampler:
                started = time.monotonic()
                for i, event in enumerate(make_events(events, pad=300, contexts=(ctx,))):
                    processor.process(event)
                    if rate is not None and i % 50 == 49:
                        # Steady traffic: shapes the load, synchronises nothing.
                        pace.wait(max(0.0, started + (i + 1) / rate - time.monotonic()))
                    if i % 2_000 == 1_999:
                        rss.append(me.memory_info().rss)
                outage = time.monotonic() - started
                stats = processor.stats()
            assert stats.spool_degraded == 0
            collector.set_faults(FaultConfig())  # the API is back
            report = processor.flush(timeout=60)
            assert report.pending == 0, report
            final = processor.stats()
        finally:
            processor.close(timeout=10)
        accepted = spool.accepted
        dropped = dict(final.dropped)
        assert collector.wait_for_events(accepted - dropped.get("spool_cap", 0), timeout=30)
        return {
            "accepted": accepted,
            "dropped": dropped,
            "arrived": collector.event_count(),
            "duplicates": collector.duplicate_count(),
            "largest": sampler.largest,
            "samples": sampler.samples,
            "rss": rss,
            "outage": outage,
            "requests": len(collector.request_log()),
        }


def check_outage(result: dict, *, max_bytes: int, disk_slack: int) -> None:
    # Everything within the bounds arrived; the rest is counted, by reason.
    assert set(result["dropped"]) <= {"spool_cap"}, result["dropped"]
    assert result["dropped"].get("spool_cap", 0) > 0
    assert result["arrived"] == result["accepted"] - result["dropped"]["spool_cap"], result
    assert result["duplicates"] == 0
    assert result["largest"] <= max_bytes + disk_slack, result
    # Memory stays flat while the backlog is on disk (RSS after warm-up against the end).
    rss = result["rss"]
    assert rss[-1] - rss[1] < 16 * MiB, [r // MiB for r in rss]


def test_a_long_outage_under_steady_traffic_drops_by_cap_keeps_memory_flat_and_the_rest_arrives(tmp_path):
    # 2 000 events/s of ~600 bytes for 3 s, through a 1 MiB directory that holds ~1 700 of them.
    result = run_outage(tmp_path, events=6_000, max_bytes=1 * MiB, segment_bytes=64 * 1024, rate=2_000)
    # The bound the issue asks for: max_bytes + one segment (the active one, which ends with the
    # record that crosses segment_bytes). The caller sheds its oldest segment as soon as it is
    # over budget, so this holds with real threads even while the keeper lags.
    check_outage(result, max_bytes=1 * MiB, disk_slack=64 * 1024 + 4096)


def cap_run(
    tmp_path, *, keeper_every: int | None, events: int, on_full: str = "drop_oldest"
) -> tuple[int, dict, Capture, list]:
    directory = str(tmp_path / "spool")
    capture = Capture(mode="fail")
    processor = BatchEventProcessor(
        capture,
        spool=spool_options(directory, max_bytes=1 * MiB, segment_bytes=64 * 1024, on_full=on_full),
        batch_size=100,
        flush_interval=0.05,
        max_in_flight=2,
        retry=RetryPolicy(backoff_base=0.005, backoff_max=0.02, max_attempts=1_000_000, deadline=600),
    )
    keeper = KeeperDriver(processor.spool)
    keeper.run()
    largest = 0
    sent = make_events(events, pad=300)
    try:
        for i, event in enumerate(sent):
            processor.process(event)
            if keeper_every is not None and i % keeper_every == keeper_every - 1:
                keeper.run()
            if i % 10 == 0:
                largest = max(largest, dir_bytes(directory))
        largest = max(largest, dir_bytes(directory))
        keeper.run()
        capture.mode = "ok"
        assert processor.flush(timeout=30).pending == 0
    finally:
        processor.close(timeout=10)
    return largest, dict(processor.stats().dropped), capture, sent


def test_the_cap_holds_to_one_segment_when_the_keeper_keeps_up(tmp_path):
    # A keeper pass every 50 events (~30 KiB written), as its 0.2 s tick and kicks give an idle machine.
    largest, dropped, capture, sent = cap_run(tmp_path, keeper_every=50, events=8_000)
    assert largest <= 1 * MiB + 64 * 1024, largest
    assert set(dropped) == {"spool_cap"}
    assert capture.ledger.unique() == len(sent) - dropped["spool_cap"]
    assert set(capture.ledger.counts) <= {uuid_of(e) for e in sent}
    assert max(capture.ledger.counts.values()) == 1


def test_drop_newest_refuses_events_at_the_cap_and_delivers_the_oldest(tmp_path):
    largest, dropped, capture, sent = cap_run(tmp_path, keeper_every=50, events=8_000, on_full="drop_newest")
    assert largest <= 1 * MiB + 64 * 1024, largest
    assert set(dropped) == {"spool_cap"}
    delivered = set(capture.ledger.counts)
    assert len(delivered) == len(sent) - dropped["spool_cap"]
    # The events kept are the first ones: nothing accepted is removed to make room.
    order = [uuid_of(e) for e in sent]
    assert set(order[: len(delivered) // 2]) <= delivered
    assert max(capture.ledger.counts.values()) == 1


def test_drop_newest_holds_the_cap_even_when_the_keeper_lags(tmp_path):
    # The caller itself refuses once this process's share of the headroom is spent.
    largest, dropped, capture, sent = cap_run(
        tmp_path, keeper_every=None, events=8_000, on_full="drop_newest"
    )
    assert largest <= 1 * MiB + 64 * 1024, largest
    assert capture.ledger.unique() == len(sent) - dropped["spool_cap"]


def test_the_cap_holds_to_one_segment_even_when_the_keeper_lags(tmp_path):
    # 8 000 events (~4.6 MiB) while the keeper is held off, as a busy machine holds it off for a
    # while: nothing on the caller's path stops the directory at max_bytes + one segment.
    largest, _, _, _ = cap_run(tmp_path, keeper_every=None, events=8_000)
    assert largest <= 1 * MiB + 64 * 1024, f"the directory reached {largest / MiB:.2f} MiB"


@pytest.mark.soak
def test_a_much_longer_outage_stays_within_the_caps(tmp_path):
    result = run_outage(tmp_path, events=300_000, max_bytes=2 * MiB, segment_bytes=128 * 1024, rate=2_000)
    check_outage(result, max_bytes=2 * MiB, disk_slack=2 * MiB)


def test_a_writer_learns_of_a_peer_that_started_after_it_within_a_segment(tmp_path):
    # A writer alone may spend all of max_bytes. A peer that starts later takes its share from
    # what is free, but the first writer learns of it only at its keeper's next scan; it
    # scans after each segment it fills, so its stale share costs at most about a segment
    # (not the 1 s between periodic scans). Seen in CI as 5 % over the shared cap at start.
    options = {"max_bytes": 4 * MiB, "segment_bytes": 64 * 1024, "fsync": "never"}
    first = EventSpool(tmp_path, **options)
    second = None
    try:
        deadline = time.monotonic() + 5
        while first._keeper._last_scan == 0.0 and time.monotonic() < deadline:
            time.sleep(0.01)  # until the first writer's keeper has scanned: its share is everything
        assert first._budget > 3 * MiB
        second = EventSpool(tmp_path, **options)
        event = conversion(context())

        def stale() -> bool:  # more left to spend than half of what is free now
            return first._budget > (options["max_bytes"] - dir_bytes(tmp_path)) // 2 + 64 * 1024

        start = time.monotonic()
        while stale() and time.monotonic() - start < 0.6:
            for _ in range(50):  # about 25 KB: a segment every third round
                first.append(event)
            time.sleep(0.01)  # let the keeper run its pass
        assert not stale(), f"the first writer still had {first._budget} bytes to spend"
    finally:
        first.close()
        if second is not None:
            second.close()


def _dead_owner(directory, records: int) -> str:
    """Files a SIGKILLed process left: its unlocked lock file and a segment untouched for a minute."""
    owner = secrets.token_hex(16)
    (directory / f"{owner}.lock").write_bytes(b"")
    data = fmt.encode_header(int(time.time() * 1000), bytes.fromhex(owner))
    data += b"".join(fmt.encode_record(seq, fmt.EVENT, 0, b"{}") for seq in range(records))
    segment = directory / segment_name(owner, 1)
    segment.write_bytes(data)
    old = time.time() - 60
    os.utime(segment, (old, old))
    return owner


def test_dead_owners_lock_files_do_not_shrink_a_live_writers_share_of_max_bytes(tmp_path):
    # After a crash loop, the lock files of dead owners stay until their backlog is drained.
    # Counted as writers, 40 of them left a live writer 1/41 of the free space, and it dropped
    # its own events (spool_cap) with the directory almost empty: the kill -9 soak lost them.
    for _ in range(40):
        _dead_owner(tmp_path, records=3)
    spool = EventSpool(tmp_path, max_bytes=8 * MiB, segment_bytes=64 * 1024, fsync="never")
    keeper = KeeperDriver(spool)  # no workers either: the dead owners' backlog stays
    try:
        event = conversion(context(), tags={"pad": "x" * 1000})
        for _ in range(2_000):  # about 2.3 MiB, well under the 8 MiB free
            spool.append(event)
        assert spool.stats().dropped == {}
        keeper.run()  # adopts the dead owners: their lock files stay, now held by this process
        assert len([n for n in os.listdir(tmp_path) if n.endswith(".lock")]) == 41
        for _ in range(2_000):
            spool.append(event)
        assert spool.stats().dropped == {}
        assert spool._budget > 2 * MiB
    finally:
        spool.close()


def test_a_window_in_flight_when_its_segment_is_dropped_is_counted_if_it_cannot_be_kept(tmp_path):
    # The drop counts the events not handed out yet. Those in a window then in flight are counted
    # when the window settles: if it fails in a way that would keep them in the spool (retries ran
    # out, closing), there is no segment left to keep them in, so they are dropped for its reason.
    spool = EventSpool(tmp_path, segment_bytes=4096, fsync="never")
    KeeperDriver(spool)
    try:
        events = make_events(40, pad=200)
        for event in events:
            spool.append(event)
        assert len(spool._own) > 1  # the first segment is sealed
        window = spool.take(1_000, 1 << 30, 0.0, 1.0, True)
        assert window is not None
        assert window.segment.number == 1
        assert spool._keeper._drop_file(spool.owner, 1, "spool_cap")
        spool.settle(window, len(window.events), delivered=False, keep=window.events)
        dropped = spool.stats().dropped
        assert dropped == {"spool_cap": len(window.events)}
        assert spool.unsettled_own() + dropped["spool_cap"] == len(events)
    finally:
        spool.close()


def test_a_dead_owners_window_in_flight_when_its_segment_is_dropped_is_not_also_counted_as_dropped(
    tmp_path,
):
    owner = secrets.token_hex(16)
    events = make_events(10)
    records = [fmt.encode_record(0, fmt.CONTEXT, 0, context_bytes(events[0].context))]
    records += [fmt.encode_record(seq, fmt.EVENT, 0, visitor_bytes(e)) for seq, e in enumerate(events)]
    header = fmt.encode_header(int(time.time() * 1000), bytes.fromhex(owner))
    (tmp_path / segment_name(owner, 1)).write_bytes(header + b"".join(records))
    (tmp_path / f"{owner}.lock").write_bytes(b"")  # free: its owner is dead
    spool = EventSpool(tmp_path, fsync="never")
    keeper = KeeperDriver(spool)
    try:
        keeper.run()  # adopts it
        first = spool.take(4, 1 << 30, 0.0, 1.0, True)
        second = spool.take(3, 1 << 30, 0.0, 1.0, True)
        assert first is not None
        assert second is not None
        assert (second.own, [e.seq for e in second.events]) == (False, [4, 5, 6])
        spool.settle(first, 4, delivered=False, keep=first.events)  # retries ran out: read again later
        assert spool._keeper._drop_file(owner, 1, "spool_age")
        spool.settle(second, 3, delivered=True)
        stats = spool.stats()
        # The 3 in flight were delivered; the 7 others (4 given back, 3 never read) dropped.
        assert (stats.replayed, stats.dropped) == (3, {"spool_age": 7})
    finally:
        spool.close()
