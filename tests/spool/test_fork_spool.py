"""os.fork() with a spool opened before it: the child becomes a new owner, the parent's files stay the parent's.

The fork happens in the test process itself. The child only uses flagstream,
reports its events' uuids over a pipe and leaves with ``os._exit`` (an alarm
ends it if it ever hangs); the parent checks what reached the collector.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import signal
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.delivery.factories import context, conversion
from tests.spool.crash_helpers import stored_uuids, visitor_spans, wait_until

from flagstream.collector import Collector, FaultConfig
from flagstream.delivery.processor import BatchEventProcessor
from flagstream.delivery.spool import EventSpool
from flagstream.delivery.spool import format as fmt
from flagstream.delivery.spool.closing import fork_mark
from flagstream.events.ids import format_uuid
from flagstream.events.user_event import EventContext


def _fork(child: Callable[[int], int], fork: Callable[[], int] = os.fork) -> tuple[int, int]:
    """Run ``child(write_fd)`` in a forked child; returns (pid, read end of its pipe)."""
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: forking a threaded process
        pid = fork()
    if pid == 0:  # pragma: no cover - the child
        code = 70
        try:
            signal.alarm(30)
            os.close(read)
            code = child(write)
        except BaseException:
            code = 71
        finally:
            os._exit(code)
    os.close(write)
    return pid, read


def _reap(pid: int, read: int) -> tuple[int, list[str]]:
    """The child's exit code and the lines it wrote."""
    chunks = []
    while data := os.read(read, 1 << 16):
        chunks.append(data)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode().split()


def _produce(processor: BatchEventProcessor, ctx: EventContext, prefix: str, n: int) -> list[str]:
    uuids = []
    for i in range(n):
        event = conversion(ctx, user=f"{prefix}-{i}")
        processor.process(event)
        uuids.append(format_uuid(event.uuid))
    return uuids


def _lock_is_held(directory: str, owner: str) -> bool:
    fd = os.open(os.path.join(directory, f"{owner}.lock"), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _sent_by_prefix(collector: Collector) -> dict[str, int]:
    counts: dict[str, int] = {}
    for body in collector.raw_bodies():
        for _uuid, visitor, _data in visitor_spans(body):
            prefix = visitor.split("-")[0]
            counts[prefix] = counts.get(prefix, 0) + 1
    return counts


def test_parent_and_child_events_after_fork_are_each_delivered_once(tmp_path: Path) -> None:
    directory = str(tmp_path / "spool")
    with Collector(keep_raw_bodies=True) as collector:
        ctx = context(collector.events_url)
        # Nothing becomes due before close: the parent's events are on disk, unsent, at fork time.
        processor = BatchEventProcessor(batch_size=10_000, flush_interval=60.0, spool=directory)
        try:
            spool = processor.spool
            assert spool is not None
            parent_owner = spool.owner
            parent = _produce(processor, ctx, "parent", 50)

            def child(out: int) -> int:
                assert spool.owner != parent_owner, "the child must be a new owner"
                mine = _produce(processor, ctx, "child", 60)
                parent_files = [n for n in os.listdir(directory) if n.startswith(parent_owner)]
                report = processor.close(timeout=10.0)
                still_there = all(os.path.exists(os.path.join(directory, n)) for n in parent_files)
                os.write(out, " ".join(mine).encode())
                ok = report.delivered == 60 and not report.timed_out and still_there
                return 0 if ok else 3

            pid, read = _fork(child)
            parent += _produce(processor, ctx, "parent2", 40)
            code, child_uuids = _reap(pid, read)
            assert code == 0, "the child did not deliver its own 60 events (or touched the parent's files)"
            assert _lock_is_held(directory, parent_owner), "the child's exit released the parent's lock"
            assert collector.wait_for_events(60, timeout=10.0)
            assert set(stored_uuids(collector)) == set(child_uuids), "the child sent the parent's events"
            report = processor.close(timeout=10.0)
            assert (report.delivered, report.spooled) == (90, 0), report
        finally:
            processor.close(timeout=5.0)
        stored = stored_uuids(collector)
        assert set(stored) == set(parent) | set(child_uuids)
        assert collector.duplicate_count() == 0
        assert _sent_by_prefix(collector) == {"parent": 50, "parent2": 40, "child": 60}, (
            "something went twice"
        )
    assert os.listdir(directory) == []


def test_windows_in_flight_at_fork_are_sent_by_the_parent_only(tmp_path: Path) -> None:
    directory = str(tmp_path / "spool")
    with Collector(keep_raw_bodies=True) as collector:
        collector.set_faults(FaultConfig(latency=0.2))  # the parent's windows are on the wire at fork
        ctx = context(collector.events_url)
        processor = BatchEventProcessor(batch_size=10, flush_interval=0.01, spool=directory)
        try:
            parent = _produce(processor, ctx, "parent", 200)
            assert wait_until(
                lambda: len(collector.request_log()) > 0 or len(collector.raw_bodies()) > 0, 10.0
            )

            def child(out: int) -> int:
                mine = _produce(processor, ctx, "child", 30)
                report = processor.close(timeout=10.0)
                os.write(out, " ".join(mine).encode())
                return 0 if report.delivered == 30 and report.spooled == 0 else 3

            pid, read = _fork(child)
            code, child_uuids = _reap(pid, read)
            assert code == 0
            report = processor.close(timeout=15.0)
            assert report.spooled == 0, report
        finally:
            processor.close(timeout=5.0)
        assert set(stored_uuids(collector)) == set(parent) | set(child_uuids)
        assert collector.duplicate_count() == 0
        assert _sent_by_prefix(collector) == {"parent": 200, "child": 30}
    assert os.listdir(directory) == []


def test_a_child_that_exits_without_close_leaves_its_events_to_the_parent(tmp_path: Path) -> None:
    directory = str(tmp_path / "spool")
    with Collector(keep_raw_bodies=True) as collector:
        ctx = context(collector.events_url)
        processor = BatchEventProcessor(batch_size=10_000, flush_interval=60.0, spool=directory)
        try:
            spool = processor.spool
            assert spool is not None
            parent = _produce(processor, ctx, "parent", 20)

            def child(out: int) -> int:
                mine = _produce(processor, ctx, "child", 25)
                os.write(out, " ".join(mine).encode() + b" " + spool.owner.encode())
                return 0  # os._exit without close: like a crash, the events stay on disk

            pid, read = _fork(child)
            code, words = _reap(pid, read)
            assert code == 0
            child_owner, child_uuids = words[-1], words[:-1]
            assert any(n.startswith(child_owner) for n in os.listdir(directory)), "the child wrote nothing"
            # The parent's keeper adopts the dead child's files (every 2 s) and delivers them.
            assert wait_until(lambda: set(child_uuids) <= set(stored_uuids(collector)), 15.0)
            assert wait_until(lambda: not any(n.startswith(child_owner) for n in os.listdir(directory)), 10.0)
            report = processor.close(timeout=10.0)
            assert report.spooled == 0
            assert processor.stats().replayed == 25
        finally:
            with contextlib.suppress(Exception):
                processor.close(timeout=5.0)
        assert set(stored_uuids(collector)) == set(parent) | set(child_uuids)
        assert collector.duplicate_count() == 0
    assert os.listdir(directory) == []


def _c_fork() -> int:
    """fork() straight from libc, as uWSGI forks its workers: no at-fork hook of Python runs."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fork.restype = ctypes.c_int
    pid = int(libc.fork())
    if pid < 0:
        raise OSError(ctypes.get_errno(), "fork failed")
    return pid


def _visitors_by_owner(directory: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".seg"):
            data = (Path(directory) / name).read_bytes()
            records = fmt.scan(data, fmt.HEADER_SIZE, len(data), at_end=True)
            ids = [
                json.loads(r.data)["visitor_id"]
                for r in records
                if isinstance(r, fmt.Record) and r.kind == fmt.EVENT
            ]
            out.setdefault(name.split("-")[0], []).extend(ids)
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="MADV_WIPEONFORK is Linux's")
def test_a_fork_that_runs_no_at_fork_hook_still_gives_the_child_its_own_files(tmp_path: Path) -> None:
    # The spool notices the fork by a page the kernel zeroes in the child, not by getpid().
    assert fork_mark() is not None, "this kernel has no MADV_WIPEONFORK (Linux 4.14+)"
    directory = str(tmp_path / "spool")
    ctx = context()
    spool = EventSpool(directory, fsync="never")
    try:
        parent_owner = spool.owner
        for i in range(3):
            spool.append(conversion(ctx, user=f"parent-{i}"))

        def child(out: int) -> int:
            mark_zeroed = spool._fork_mark is not None and spool._fork_mark[0] == 0
            spool.append(conversion(ctx, user="child-0"))
            os.write(out, f"{spool.owner} {int(mark_zeroed)}".encode())
            spool.close()
            return 0

        pid, read = _fork(child, _c_fork)
        code, (child_owner, mark_zeroed) = _reap(pid, read)
        assert code == 0
        assert mark_zeroed == "1", "the kernel did not empty the fork mark in the child"
        spool.append(conversion(ctx, user="parent-3"))
        assert spool.owner == parent_owner
        assert child_owner != parent_owner, "the child kept writing as the parent"
        by_owner = _visitors_by_owner(directory)
        assert by_owner[parent_owner] == ["parent-0", "parent-1", "parent-2", "parent-3"]
        assert by_owner[child_owner] == ["child-0"]
    finally:
        spool.close()
