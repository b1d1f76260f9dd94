"""A full, vanished or read-only disk under a running spool: ``process()`` never raises, events
fall back to memory (counted ``spool_degraded``) and are still delivered, acknowledgements and
removals keep working, and the spool resumes writing once the disk is usable again."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile

import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.delivery.factories import context
from tests.spool.robust_helpers import (
    CTX_A,
    CTX_B,
    Capture,
    KeeperDriver,
    SegmentWriteFaults,
    backlog_drained,
    make_events,
    spool_options,
    tmpfs,
    uuid_of,
    wait_until,
)

from flagstream.collector import Collector, FaultConfig
from flagstream.delivery.processor import BatchEventProcessor
from flagstream.delivery.retry import RetryPolicy
from flagstream.delivery.spool import format as fmt

PATIENT = RetryPolicy(backoff_base=0.005, backoff_max=0.05, max_attempts=1_000_000, deadline=300)


def processor_for(dispatcher, directory, **spool_changes) -> BatchEventProcessor:
    return BatchEventProcessor(
        dispatcher,
        spool=spool_options(directory, **spool_changes),
        batch_size=20,
        flush_interval=0.05,
        max_in_flight=2,
        retry=PATIENT,
    )


@pytest.fixture
def faults():
    injected = SegmentWriteFaults()
    injected.install()
    yield injected
    injected.uninstall()


def own_files(directory: str, suffix: str) -> list[str]:
    return sorted(f for f in os.listdir(directory) if f.endswith(suffix))


def test_enospc_on_segments_falls_back_to_memory_and_resumes_when_space_frees(tmp_path, faults):
    directory = str(tmp_path / "spool")
    capture = Capture()
    processor = processor_for(capture, directory)
    spool = processor.spool
    keeper = KeeperDriver(spool)
    try:
        before = make_events(20)
        for event in before:
            processor.process(event)
        assert spool.accepted == 20
        assert spool.healthy

        faults.full = True
        during = make_events(30)
        for event in during:
            processor.process(event)  # never raises
        stats = processor.stats()
        assert stats.spool_healthy is False
        assert stats.spool_degraded == 30
        assert spool.accepted == 20
        keeper.run(3)  # re-probes fail while the disk is full
        assert not spool.healthy

        # Delivery, acknowledgements and removal of settled segments work on a full disk.
        assert processor.flush(timeout=10).pending == 0
        assert capture.ledger.unique() == 50
        keeper.run()
        assert own_files(directory, ".ack") == []
        assert len(own_files(directory, ".seg")) <= 1  # the sealed segment is gone (maybe a probe's)

        faults.full = False
        keeper.run()  # the probe succeeds
        assert spool.healthy
        assert processor.stats().spool_healthy is True
        after = make_events(20)
        for event in after:
            processor.process(event)
        assert spool.accepted == 40  # on disk again
        assert processor.stats().spool_degraded == 30
        assert processor.flush(timeout=10).pending == 0
    finally:
        report = processor.close(timeout=5)
    assert set(capture.ledger.counts) == {uuid_of(e) for e in before + during + after}
    assert max(capture.ledger.counts.values()) == 1
    assert processor.stats().dropped == {}
    assert report.spooled == 0


def test_a_short_write_is_cut_back_to_the_last_whole_record_and_the_event_kept_in_memory(tmp_path, faults):
    directory = str(tmp_path / "spool")
    capture = Capture()
    processor = processor_for(capture, directory)
    spool = processor.spool
    keeper = KeeperDriver(spool)
    try:
        events = make_events(6, pad=300)
        for event in events[:5]:
            processor.process(event)
        (segment,) = own_files(directory, ".seg")
        whole = os.path.getsize(os.path.join(directory, segment))
        faults.short_next = 37  # the kernel takes part of the record: a torn write
        processor.process(events[5])
        assert not spool.healthy
        assert processor.stats().spool_degraded == 1
        with open(os.path.join(directory, segment), "rb") as f:
            data = f.read()
        assert len(data) == whole  # the torn bytes were cut off at once
        items = list(fmt.scan(data, fmt.HEADER_SIZE, len(data), at_end=True))
        assert all(isinstance(i, fmt.Record) for i in items)
        keeper.run()
        assert spool.healthy  # the disk was fine after all: the next probe resumes
        assert processor.flush(timeout=10).pending == 0
    finally:
        processor.close(timeout=5)
    assert set(capture.ledger.counts) == {uuid_of(e) for e in events}
    assert processor.stats().dropped == {}


def test_a_real_full_tmpfs_degrades_acknowledges_frees_space_and_resumes(tmp_path):
    with tmpfs(str(tmp_path / "fs"), "512k") as mounted:
        if mounted is None:
            pytest.skip("mounting a tmpfs is not permitted here (the injected ENOSPC tests cover this)")
        directory = os.path.join(mounted, "spool")
        os.makedirs(directory)
        st = os.statvfs(mounted)
        filler = os.path.join(mounted, "filler")
        with open(filler, "wb") as f:  # leave about 200 KiB for the spool
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 200 * 1024))
        with Collector() as collector:
            collector.set_faults(FaultConfig(fail_rate=1.0, status=503))  # nothing leaves the disk yet
            ctx = context(collector.events_url)
            processor = BatchEventProcessor(
                spool=spool_options(directory, segment_bytes=32 * 1024, max_bytes=64 << 20),
                batch_size=50,
                flush_interval=0.05,
                max_in_flight=2,
                retry=PATIENT,
            )
            spool = processor.spool
            sent = 0
            try:
                for event in make_events(2_000, pad=600, contexts=(ctx,)):
                    processor.process(event)  # never raises, full disk or not
                    sent += 1
                    if not spool.healthy:
                        break
                assert not spool.healthy, "the 512 KiB file system never filled"
                on_disk = spool.accepted
                for event in make_events(100, pad=600, contexts=(ctx,)):
                    processor.process(event)
                    sent += 1
                stats = processor.stats()
                assert stats.spool_degraded >= 100
                assert stats.spool_healthy is False

                collector.set_faults(FaultConfig())  # the API is back: delivery frees the disk
                assert collector.wait_for_events(sent, timeout=30)  # from disk and from memory
                wait_until(lambda: spool.healthy, 30, "the spool to resume after space was freed")
                wait_until(
                    lambda: len(own_files(directory, ".seg")) <= 2, 30, "settled segments to be removed"
                )
                resumed_at = spool.accepted
                for event in make_events(100, pad=600, contexts=(ctx,)):
                    processor.process(event)
                    sent += 1
                assert spool.accepted == resumed_at + 100  # written to disk again
                assert processor.flush(timeout=30).pending == 0
                assert collector.wait_for_events(sent, timeout=30)
                KeeperDriver(spool).run()
                # Settled segments were removed (acknowledgements could fail on the full disk,
                # removal could not): what is left is the active segment and the next one.
                segments = own_files(directory, ".seg")
                assert len(segments) <= 2
                assert {a[:-4] for a in own_files(directory, ".ack")} <= {s[:-4] for s in segments}
            finally:
                processor.close(timeout=10)
            assert collector.event_count() == sent
            assert processor.stats().dropped == {}
            assert on_disk > 100


def test_a_directory_removed_under_a_running_spool_degrades_then_comes_back(tmp_path):
    directory = str(tmp_path / "spool")
    capture = Capture()
    processor = processor_for(capture, directory)
    spool = processor.spool
    keeper = KeeperDriver(spool)
    batches = [make_events(10) for _ in range(5)]
    try:
        for event in batches[0]:
            processor.process(event)
        assert processor.flush(timeout=10).pending == 0
        for event in batches[1]:
            processor.process(event)  # on disk, not yet delivered
        shutil.rmtree(directory)
        for event in batches[2]:
            processor.process(event)  # the keeper has not noticed yet: into the open segment
        keeper.run()  # notices: degraded
        assert not spool.healthy
        for event in batches[3]:
            processor.process(event)  # memory
        assert processor.stats().spool_degraded == 10
        keeper.run()  # the probe re-creates the directory
        assert spool.healthy
        assert os.path.isdir(directory)
        for event in batches[4]:
            processor.process(event)
        assert spool.accepted == 40
        assert processor.flush(timeout=10).pending == 0
    finally:
        processor.close(timeout=5)
    assert set(capture.ledger.counts) == {uuid_of(e) for b in batches for e in b}
    assert processor.stats().dropped == {}


@contextlib.contextmanager
def read_only_over(directory: str):
    """Mount a read-only bind of ``directory`` over itself (open descriptors keep writing below)."""
    done = subprocess.run(
        ["mount", "--bind", "-o", "ro", directory, directory], capture_output=True, check=False
    )
    if done.returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", directory], capture_output=True, check=False)


def test_a_directory_made_read_only_under_a_running_spool_loses_nothing(tmp_path):
    directory = str(tmp_path / "spool")
    capture = Capture()
    processor = processor_for(capture, directory, segment_bytes=8 * 1024)
    spool = processor.spool
    keeper = KeeperDriver(spool)
    first, during, after = make_events(10), make_events(60, pad=200), make_events(10)
    try:
        keeper.run()
        for event in first:
            processor.process(event)
        with read_only_over(directory) as mounted:
            if not mounted:
                pytest.skip("bind mounts are not permitted here")
            with pytest.raises(OSError), open(os.path.join(directory, "probe"), "wb"):
                pass
            for event in during:
                processor.process(event)  # never raises; rotation cannot create files now
                keeper.run()
            assert processor.flush(timeout=10).pending == 0  # acknowledgements cannot be written
            keeper.run(2)
        keeper.run(2)  # writable again
        assert spool.healthy
        for event in after:
            processor.process(event)
        assert processor.flush(timeout=10).pending == 0
    finally:
        processor.close(timeout=5)
    assert set(capture.ledger.counts) == {uuid_of(e) for e in first + during + after}
    assert processor.stats().dropped == {}


def test_segments_settled_while_read_only_are_removed_once_writable_and_never_replayed(tmp_path):
    directory = str(tmp_path / "spool")
    capture = Capture()
    processor = processor_for(capture, directory, segment_bytes=8 * 1024)
    keeper = KeeperDriver(processor.spool)
    events = make_events(60, pad=200)
    try:
        keeper.run()  # the next segment exists before the directory turns read-only
        with read_only_over(directory) as mounted:
            if not mounted:
                pytest.skip("bind mounts are not permitted here")
            for event in events:
                processor.process(event)  # the first segment fills and rotates into the next
            assert processor.flush(timeout=10).pending == 0  # settled: unlink fails (EROFS)
        keeper.run(3)  # writable again
    finally:
        processor.close(timeout=5)
    assert set(capture.ledger.counts) == {uuid_of(e) for e in events}
    leftovers = own_files(directory, ".seg")
    # Everything was delivered and the processor closed cleanly: the next one must find nothing.
    successor = processor_for(capture, directory)
    try:
        KeeperDriver(successor.spool).run()
        successor.flush(timeout=5)
        wait_until(lambda: backlog_drained(successor), 10, "the successor's backlog to drain")
    finally:
        successor.close(timeout=5)
    assert max(capture.ledger.counts.values()) == 1, f"replayed after a clean close; left: {leftovers}"
    assert leftovers == []


def fill(path: str) -> None:
    """Write ``path`` until the file system holding it has no block left."""
    with open(path, "wb", buffering=0) as f:
        chunk = b"\0" * 65536
        for _ in range(100_000):  # bounded: 6 GiB at most
            try:
                f.write(chunk)
            except OSError:
                break
        for _ in range(65536):
            try:
                f.write(b"\0")
            except OSError:
                break


def test_a_processor_started_on_a_full_disk_starts_degraded_and_resumes_when_space_frees(tmp_path):
    with tmpfs(str(tmp_path / "fs"), "256k") as mounted:
        if mounted is None:
            pytest.skip("mounting a tmpfs is not permitted here")
        directory = os.path.join(mounted, "spool")
        os.makedirs(directory)
        fill(os.path.join(mounted, "filler"))
        capture = Capture()
        # A restart while the disk is full (the common case: the disk filled, the process died).
        processor = processor_for(capture, directory)
        spool = processor.spool
        events = make_events(20)
        try:
            for event in events[:10]:
                processor.process(event)
            assert not spool.healthy
            assert processor.stats().spool_degraded == 10
            os.unlink(os.path.join(mounted, "filler"))
            KeeperDriver(spool).run()
            assert spool.healthy
            for event in events[10:]:
                processor.process(event)
            assert spool.accepted == 10
            assert processor.flush(timeout=10).pending == 0
        finally:
            processor.close(timeout=5)
        assert set(capture.ledger.counts) == {uuid_of(e) for e in events}


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(before=st.integers(0, 12), cut=st.integers(1, 2_000), new_context=st.booleans())
def test_a_short_write_anywhere_leaves_a_clean_segment_and_loses_nothing(faults, before, cut, new_context):
    """A torn write at any byte of any record (including a context record written with its event)."""
    with tempfile.TemporaryDirectory() as directory:
        capture = Capture()
        processor = processor_for(capture, directory)
        spool = processor.spool
        keeper = KeeperDriver(spool)
        events = make_events(before, pad=100) + make_events(
            1, pad=100, contexts=(CTX_B if new_context else CTX_A,)
        )
        events += make_events(5, pad=100, contexts=(CTX_B,))
        try:
            for user_event in events[:before]:
                processor.process(user_event)
            faults.short_next = cut
            processor.process(events[before])  # torn, unless cut is past the record's end
            hypothesis.event("torn" if not spool.healthy else "cut past the end: written whole")
            with open(os.path.join(directory, own_files(directory, ".seg")[0]), "rb") as f:
                data = f.read()
            items = list(fmt.scan(data, fmt.HEADER_SIZE, len(data), at_end=True))
            assert all(isinstance(i, fmt.Record) for i in items), items[-1]
            keeper.run()  # re-probe: healthy again on a fresh segment
            for user_event in events[before + 1 :]:
                processor.process(user_event)
            assert processor.flush(timeout=10).pending == 0
        finally:
            processor.close(timeout=5)
        assert set(capture.ledger.counts) == {uuid_of(e) for e in events}
        assert max(capture.ledger.counts.values()) == 1
