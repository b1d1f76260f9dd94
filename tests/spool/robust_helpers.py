"""Shared parts of the spool's format, corruption, disk, outage and model tests.

* events with known visitor bytes, and a result-returning dispatcher whose answers a test sets;
* ``crash()``: abandon a processor and its spool the way SIGKILL would (files as they are,
  locks released, nothing settled, acknowledged or removed afterwards);
* ``KeeperDriver``: the keeper's passes run from the test, on a clock far enough ahead that
  every duty is due, so adoption, rotation and re-probes happen exactly when a test asks;
* ``SegmentWriteFaults``: ENOSPC (or a short write) on segment descriptors only, injected into
  the spool's writer and segment-creation modules' ``os`` (acknowledgements and unlinks keep working);
* the record layout of an *undamaged* template directory, which the corruption tests compare
  byte for byte with the damaged copy to know which records must still be delivered.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import itertools
import logging
import os
import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.delivery.factories import context, conversion

from flagstream import _json
from flagstream.delivery import lifecycle
from flagstream.delivery.processor import BatchEventProcessor
from flagstream.delivery.result import DispatchResult
from flagstream.delivery.spool import EventSpool
from flagstream.delivery.spool import format as fmt
from flagstream.delivery.spool import spool as spool_module
from flagstream.delivery.spool import state as state_module
from flagstream.delivery.spool import writer as writer_module
from flagstream.events.payload import visitor_bytes
from flagstream.events.user_event import ConversionEvent, UserEvent

CTX_A = context(revision="42")
CTX_B = context(revision="43", anonymize_ip=True)


def make_events(n: int, *, pad: int = 0, contexts: tuple[Any, ...] = (CTX_A,)) -> list[ConversionEvent]:
    """``n`` conversions cycling over ``contexts``; ``pad`` bytes of tag text make them larger."""
    out = []
    for i in range(n):
        tags = {"pad": "x" * pad} if pad else None
        out.append(conversion(contexts[i % len(contexts)], tags=tags))
    return out


def uuid_of(event: UserEvent) -> str:
    return str(event.uuid)


def uuids_of(body: bytes) -> list[str]:
    payload = _json.loads(body)
    return [e["uuid"] for v in payload["visitors"] for s in v["snapshots"] for e in s["events"]]


def visitors_of(events: Iterable[UserEvent]) -> dict[str, bytes]:
    """uuid -> the visitor JSON the spool writes for it (what must reach the request body)."""
    return {uuid_of(e): visitor_bytes(e) for e in events}


# -- a dispatcher the test answers for ---------------------------------------------------------


class Ledger:
    """What every incarnation's dispatcher delivered (uuid -> times), and the bodies sent."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.counts: Counter[str] = Counter()
        self.bodies: list[bytes] = []
        self.requests = 0

    def unique(self) -> int:
        with self.lock:
            return len(self.counts)

    def wait_unique(self, n: int, timeout: float) -> bool:
        with self.lock:
            return self.changed.wait_for(lambda: len(self.counts) >= n, timeout)


class Capture:
    """A result-returning dispatcher: ``mode`` is "ok" (200), "fail" (503) or "reject" (400).

    ``dead`` makes it behave like a process that no longer exists: nothing is recorded.
    """

    def __init__(self, ledger: Ledger | None = None, mode: str = "ok") -> None:
        self.ledger = ledger or Ledger()
        self.mode = mode
        self.dead = False
        # When set: a delivered request waits on ``hold`` before its 200 is returned (the moment
        # between the server's answer and the acknowledgement), and ``held`` says one is waiting.
        self.hold: threading.Event | None = None
        self.held = threading.Event()

    def dispatch_event(self, log_event: Any) -> None:
        result = self.send(log_event)
        if not result.ok:
            raise ConnectionError(result.error or f"status {result.status}")

    def send(self, log_event: Any, deadline: float | None = None) -> DispatchResult:
        del deadline
        ledger = self.ledger
        with ledger.lock:
            ledger.requests += 1
            if self.dead:
                return DispatchResult.failure("the process is gone")
            if self.mode == "fail":
                return DispatchResult.from_status(503)
            if self.mode == "reject":
                return DispatchResult.from_status(400)
            body = log_event.body
            ledger.bodies.append(body)
            ledger.counts.update(uuids_of(body))
            ledger.changed.notify_all()
            hold = self.hold
        if hold is not None:
            self.held.set()
            hold.wait(10)
        return DispatchResult.from_status(200)

    def close(self) -> None:
        pass


# -- logs ---------------------------------------------------------------------------------------------


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def quiet_logger() -> tuple[logging.Logger, ListHandler]:
    logger = logging.getLogger(f"flagstream-corruption-{id(object())}")
    logger.propagate = False
    handler = ListHandler()
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    return logger, handler


# -- waiting, keeper passes ----------------------------------------------------------------------


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds; fail the test with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        pause.wait(0.005)


class KeeperDriver:
    """Runs keeper passes from the test; each pass is on a clock 10 s after the previous one."""

    _clock = itertools.count(1)

    def __init__(self, spool: EventSpool) -> None:
        self.spool = spool
        spool._keeper.stop()  # no background passes: this test decides when they happen

    def run(self, passes: int = 1) -> None:
        for _ in range(passes):
            self.spool._keeper.run_pass(time.monotonic() + 1_000.0 + 10.0 * next(self._clock))


def spool_options(directory: str, **changes: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "directory": directory,
        "fsync": "never",
        "reprobe_interval": 0.02,
        "segment_bytes": 64 * 1024,
    }
    options.update(changes)
    return options


def windows_in_flight(spool: EventSpool) -> int:
    """Windows taken from this spool's segments and not yet settled."""
    with spool._lock:
        return sum(s.inflight for s in (*spool._own, *spool._backlog))


def backlog_drained(processor: BatchEventProcessor) -> bool:
    """No adopted segment left to deliver (one is removed only once no window of it is in flight)
    and no own window in flight."""
    spool = processor.spool
    assert spool is not None
    with spool._lock:
        backlog = len(spool._backlog)
    return backlog == 0 and windows_in_flight(spool) == 0


def drain_backlog(processor: BatchEventProcessor, keeper: KeeperDriver, timeout: float = 20.0) -> None:
    """Wait until the adopted backlog is delivered, running keeper passes as its thread would
    (segments with nothing left to read are removed by a pass, not by a worker)."""

    def done() -> bool:
        keeper.run()
        return backlog_drained(processor)

    wait_until(done, timeout, "the adopted backlog to drain")
    keeper.run()  # releases adopted owners whose files are all gone (their locks and leftovers)


# -- a simulated SIGKILL -------------------------------------------------------------------------


def crash(
    processor: BatchEventProcessor, dispatcher: Capture | None = None, then: Callable[[], None] | None = None
) -> None:
    """Abandon ``processor`` as SIGKILL would: no close, no acknowledgement or unlink afterwards.

    The kernel would release its flocks and descriptors; here they are closed by hand
    (never unlocked explicitly), the keeper stopped, and the workers stopped without their
    late settlements touching the disk: every segment is marked deleted in memory only.
    ``then`` runs once the process is "dead" and before its threads are joined.
    """
    if dispatcher is not None:
        with dispatcher.ledger.lock:  # a send that already recorded its events was delivered
            dispatcher.dead = True
    lifecycle.unregister(processor)
    spool = processor.spool
    fds: list[int | None] = []
    if spool is not None:
        spool._keeper.stop()
        with spool._lock:
            spool._closed = True
            spool._healthy = False
            fds.append(spool._lock_fd)
            spool._lock_fd = None
            fds.extend(spool._adopted.values())
            spool._adopted.clear()
            segments = [*spool._own, *spool._backlog]
            if spool._next is not None:
                segments.append(spool._next)
                spool._next = None
            for segment in segments:
                fds.extend((segment.fd, segment.ack_fd))
                segment.fd = segment.ack_fd = None
                segment.deleted = True
            spool._own.clear()
            spool._backlog.clear()
        spool_module._live.discard(spool)
    with processor._lock:
        processor._stop = True
        processor._close_deadline = 0.0
        processor._wake.notify_all()
    processor._closing.set()
    processor._stopping.set()
    if then is not None:
        then()  # e.g. let a held request return its 200: too late, the process is gone
    for thread in processor._workers:
        thread.join(5.0)
    for fd in fds:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


# -- injected disk faults --------------------------------------------------------------------------


class _OsProxy:
    def __init__(self, faults: SegmentWriteFaults) -> None:
        self._faults = faults

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def write(self, fd: int, data: Any) -> int:
        return self._faults.write(fd, data)


def is_segment_fd(fd: int) -> bool:
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return False
    # A segment, or one being created under its temporary name, maybe already unlinked.
    return re.search(r"\.seg(\.tmp)?( \(deleted\))?$", target) is not None


class SegmentWriteFaults:
    """``full``: every write to a segment descriptor fails with ENOSPC; ``short_next``: the next
    one writes only that many bytes (a torn record on disk) and reports it."""

    def __init__(self) -> None:
        self.full = False
        self.short_next: int | None = None
        self.failed = 0
        self._held: Any = None

    # The modules of the spool that write segments: the caller's append and segment creation.
    _MODULES = (writer_module, state_module)

    def install(self) -> None:
        for module in self._MODULES:
            assert module.os is os, "another SegmentWriteFaults is still installed"
            module.os = _OsProxy(self)  # type: ignore[assignment]
        # The append's write with the interpreter lock held (writer.held_write) fails the same way.
        writer_module.load_held_write()
        self._held = writer_module.held_write
        if self._held is not None:
            writer_module.held_write = self.write_held

    def uninstall(self) -> None:
        for module in self._MODULES:
            module.os = os
        writer_module.held_write = self._held

    def write(self, fd: int, data: Any) -> int:
        return self._write(fd, data, os.write)

    def write_held(self, fd: int, data: bytes, size: Any) -> int:
        # writer.held_write's contract: -1 and ctypes' errno on failure.
        assert self._held is not None
        try:
            return self._write(fd, data, lambda fd, data: self._held(fd, data, type(size)(len(data))))
        except OSError as exc:
            ctypes.set_errno(exc.errno or errno.EIO)
            return -1

    def _write(self, fd: int, data: Any, write: Any) -> int:
        if (self.full or self.short_next is not None) and is_segment_fd(fd):
            if self.short_next is not None:
                cut, self.short_next = self.short_next, None
                return int(write(fd, bytes(data)[:cut]))
            self.failed += 1
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        return int(write(fd, data))


@contextlib.contextmanager
def tmpfs(path: str, size: str) -> Any:
    """A tmpfs of ``size`` mounted at ``path`` (None when mounting is not permitted here)."""
    os.makedirs(path, exist_ok=True)
    import subprocess

    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        yield None
        return
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], capture_output=True, check=False)


def dir_bytes(directory: str) -> int:
    total = 0
    with contextlib.suppress(FileNotFoundError), os.scandir(directory) as entries:
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat().st_size
    return total


# -- an independent reader of the layout (the corruption oracle) -------------------------------------

HEADER = fmt.HEADER_SIZE


@dataclass(frozen=True)
class Slot:
    """One record of an undamaged segment: where it is and what it says."""

    offset: int
    end: int
    seq: int
    kind: int
    context: int
    data: bytes


def slots_of(segment: bytes) -> list[Slot]:
    """The records of an undamaged segment (written by the spool, before any damage is done)."""
    out = []
    for item in fmt.scan(segment, HEADER, len(segment), at_end=True):
        assert isinstance(item, fmt.Record), "the template segment is damaged"
        out.append(Slot(item.offset, item.end, item.seq, item.kind, item.context, item.data))
    assert not out or out[-1].end == len(segment)
    return out


def acked_seqs(data: bytes) -> set[int]:
    """Sequence numbers an acknowledgement file's intact records cover."""
    seqs: set[int] = set()
    for first, count in fmt.parse_acks(data)[0]:
        if count < 1_000_000:
            seqs.update(range(first, first + count))
    return seqs


@dataclass
class Template:
    """A spool directory written by a real EventSpool, kept as bytes so each example can copy it."""

    files: dict[str, bytes]
    visitors: dict[str, bytes]  # uuid -> visitor JSON
    uuid_by_seq: dict[int, str] = field(default_factory=dict)

    def write_to(self, directory: str) -> None:
        for name, data in self.files.items():
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)

    @property
    def segments(self) -> list[str]:
        return sorted(n for n in self.files if n.endswith(".seg"))


def write_template(
    directory: str, n_events: int, *, segment_bytes: int = 4096, settle_first: int = 0, pad: int = 0
) -> Template:
    """Spool ``n_events`` (two contexts, so every segment has two context records) with a real
    EventSpool, settle the first ``settle_first`` (acknowledged on disk), close, read the files."""
    events = make_events(n_events, pad=pad, contexts=(CTX_A, CTX_B))
    spool = EventSpool(directory, fsync="never", segment_bytes=segment_bytes, max_bytes=64 << 20)
    keeper = KeeperDriver(spool)
    keeper.run()
    uuid_by_seq = {}
    for event in events:
        seq = spool._seq
        assert spool.append(event) in (spool_module.ACCEPTED, spool_module.ACCEPTED_WAKE)
        uuid_by_seq[seq] = uuid_of(event)
        keeper.run()  # prepares the next segment, so the spool rotates at segment_bytes
    if settle_first:
        window = spool.take(settle_first, 1 << 30, time.monotonic(), 1.0, True)
        assert window is not None
        assert len(window.events) == settle_first
        assert spool.settle(window, settle_first, delivered=True)
    spool.close()
    files = {}
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            files[name] = f.read()
    return Template(files, visitors_of(events), uuid_by_seq)


def copy_tree(src: str, dst: str) -> None:
    for name in os.listdir(src):
        shutil.copy2(os.path.join(src, name), os.path.join(dst, name))
