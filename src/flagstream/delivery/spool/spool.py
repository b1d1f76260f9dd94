"""``EventSpool``: the durable on-disk spool of one process (see ``docs/delivery.md``).

The caller's thread (``append``) turns the event into its visitor JSON, frames
it and makes one ``os.write`` on the active segment's ``O_APPEND`` descriptor:
when ``append`` returns, the bytes are in the kernel and survive the death of
the process. Delivery workers ``take`` windows of events from the segments
(this process's own, oldest first, then adopted ones), deliver them through the
ordinary delivery plan and ``settle`` them; a window's acknowledgement is
appended to the segment's ``.ack`` file, and a sealed segment whose events are
all settled is unlinked. The keeper thread (:mod:`~flagstream.delivery.spool.keeper`)
fsyncs, prepares the next segment, rotates, enforces the caps, adopts the
files of dead processes and re-probes a failed disk.

Nothing here raises into the caller: a failing disk makes ``append`` return
``FALLBACK`` (the processor keeps the event in memory) and the spool
*degraded* until the keeper finds the disk writable again.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import secrets
import threading
import time
import weakref
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from flagstream._logging import get_logger
from flagstream.delivery.spool import format as fmt
from flagstream.delivery.spool import keeper
from flagstream.delivery.spool.files import (
    NETWORK_FILESYSTEMS,
    create_lock,
    filesystem_type,
    list_dir,
    segment_name,
)
from flagstream.delivery.spool.ranges import runs
from flagstream.delivery.spool.segment import Segment, SpooledEvent, context_bytes, read_window
from flagstream.errors import ConfigurationError
from flagstream.events.payload import visitor_bytes
from flagstream.events.user_event import EventContext, UserEvent

__all__ = ["ACCEPTED", "ACCEPTED_WAKE", "DROPPED", "FALLBACK", "EventSpool", "SpoolWindow"]

ACCEPTED = 0
ACCEPTED_WAKE = 1  # accepted, and a batch's worth is waiting: wake a worker
FALLBACK = 2  # not written (disk failing, event unusable): the processor keeps it in memory
DROPPED = 3  # the spool is full and on_full="drop_newest": counted as a spool_cap drop

FSYNC_POLICIES = ("interval", "always", "never")
FULL_POLICIES = ("drop_oldest", "drop_newest")
SPOOL_DROP_REASONS = ("spool_cap", "spool_age", "spool_corrupt", "spool_disk_error")
_MiB = 1024 * 1024

_live: weakref.WeakSet[EventSpool] = weakref.WeakSet()
_MAX_VISITOR = fmt.MAX_RECORD - 64
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO})  # start degraded, not refuse
_GIVEN_BACK_PAUSE = 1.0
_MIRROR_BYTES = 16 * 1024 * 1024  # visitors kept in memory for the workers, at most
_MIRROR_EVENTS = 50_000  # seconds before events whose retries ran out are tried again
_crc32 = zlib.crc32
_getpid = os.getpid
_pack_meta = fmt.META.pack
_pack_head = fmt.HEAD.pack
_MAGIC = fmt.RECORD_MAGIC
_fdatasync = getattr(os, "fdatasync", os.fsync)


@dataclass(eq=False, slots=True)
class SpoolWindow:
    """Events read from one segment together; acknowledged when all of them are settled."""

    segment: Segment
    events: list[SpooledEvent]
    remaining: int = field(init=False)
    released: list[SpooledEvent] = field(default_factory=list)  # kept for a later attempt

    def __post_init__(self) -> None:
        self.remaining = len(self.events)

    @property
    def own(self) -> bool:
        """Whether these are this process's own events (not a dead process's backlog)."""
        return self.segment.own


def _check(name: str, value: object, *, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigurationError(f"spool {name} must be a number, got {value!r}")
    if value < minimum:
        raise ConfigurationError(f"spool {name} must be >= {minimum}, got {value!r}")


class EventSpool:
    """A directory of append-only segment files that holds events until they are settled.

    >>> import tempfile
    >>> spool = EventSpool(tempfile.mkdtemp(), fsync="never")
    >>> spool.healthy, spool.stats().events
    (True, 0)
    >>> spool.close()

    ``max_bytes`` bounds the whole directory, shared by every process that uses
    it; ``max_age`` (seconds) bounds how long an event may wait. When the
    directory is full, ``on_full="drop_oldest"`` deletes the oldest segment and
    ``"drop_newest"`` refuses new events; either way the caller never waits and
    every drop is counted by reason. ``fsync`` is the power-loss knob:
    ``"interval"`` syncs every ``fsync_interval`` seconds on a background thread,
    ``"always"`` after every event on the caller's thread (slow, by choice),
    ``"never"`` leaves it to the OS; rotation and close always sync.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = 256 * _MiB,
        max_age: float = 7 * 24 * 3600.0,
        on_full: str = "drop_oldest",
        fsync: str = "interval",
        fsync_interval: float = 1.0,
        segment_bytes: int = 8 * _MiB,
        reprobe_interval: float = 5.0,
        logger: object | None = None,
    ) -> None:
        if not isinstance(directory, (str, os.PathLike)):
            raise ConfigurationError(f"spool directory must be a path, got {type(directory).__name__}")
        _check("max_bytes", max_bytes, minimum=64 * 1024)
        _check("max_age", max_age, minimum=1.0)
        _check("fsync_interval", fsync_interval, minimum=0.01)
        _check("segment_bytes", segment_bytes, minimum=4096)
        _check("reprobe_interval", reprobe_interval, minimum=0.01)
        if fsync not in FSYNC_POLICIES:
            raise ConfigurationError(f"spool fsync must be one of {FSYNC_POLICIES}, got {fsync!r}")
        if on_full not in FULL_POLICIES:
            raise ConfigurationError(f"spool on_full must be one of {FULL_POLICIES}, got {on_full!r}")
        self.directory = os.path.abspath(os.fspath(directory))
        self.max_bytes = int(max_bytes)
        self.max_age = float(max_age)
        self.on_full = on_full
        self.fsync = fsync
        self.fsync_interval = float(fsync_interval)
        self.segment_bytes = int(min(segment_bytes, max_bytes))
        self.reprobe_interval = float(reprobe_interval)
        self._logger = get_logger(logger)
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"spool directory {self.directory!r} cannot be created: {exc}") from None
        kind = filesystem_type(self.directory)
        if kind in NETWORK_FILESYSTEMS:
            self._logger.warning(
                "flagstream: spool directory %s is on %s; file locks there may not protect it, "
                "use a local disk",
                self.directory,
                kind,
            )
        self._start(construction=True)
        _live.add(self)

    # -- state -------------------------------------------------------------------------

    def _start(self, *, construction: bool) -> None:
        """Fresh state for this process: a new owner id, its lock and first segment."""
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.owner = secrets.token_hex(16)
        self._own: deque[Segment] = deque()  # oldest first; the last one is active while healthy
        self._backlog: deque[Segment] = deque()  # adopted segments, oldest first
        self._adopted: dict[str, int] = {}  # dead owner -> the descriptor of its lock we hold
        self._next: Segment | None = None
        self._number = 0
        self._seq = 0
        self._interned: dict[EventContext, EventContext] = {}
        self._healthy = False
        self._closed = False
        if construction:  # a forked child keeps what its processor attached
            self._batch_size = 500
            self._wake_hook: object = None
        self._unread = 0
        self._windows: set[SpoolWindow] = set()  # taken and not yet settled
        # What the caller just wrote, kept in memory as well while it is small, so that workers
        # take live events from here instead of reading them back (the disk is the truth: on
        # overflow this is emptied, and workers read the disk until they have caught up).
        self._mirror: deque[tuple[Segment, int, int, SpooledEvent]] = deque()  # segment, start, end, event
        self._mirror_bytes = 0
        self._mirroring = True
        self._first_unread_at = 0.0
        self._flush_seq = 0
        self._budget = self._initial_budget()
        self._listing_bytes = 0
        self._listing_segments = 0
        self._oldest_created = 0.0
        self.delivered = 0
        self.replayed = 0
        self.degraded_events = 0
        self.degradations = 0
        self.dropped: dict[str, int] = {}
        self._unreported: dict[str, int] = {}
        self.last_error: str | None = None
        self._last_logged = 0.0
        try:
            self._lock_fd: int | None = create_lock(self.directory, self.owner)
        except OSError as exc:
            self._lock_fd = None
            if construction and exc.errno not in _DISK_FULL:
                raise ConfigurationError(
                    f"spool directory {self.directory!r} cannot be locked ({exc}); "
                    "it must be a writable local directory that supports flock"
                ) from None
            self._degrade(exc)
        if self._lock_fd is not None:
            try:
                self._activate(self._new_segment())
            except OSError as exc:
                if construction and exc.errno not in _DISK_FULL:
                    os.close(self._lock_fd)
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(self.directory, f"{self.owner}.lock"))
                    raise ConfigurationError(f"spool directory {self.directory!r}: {exc}") from None
                self._degrade(exc)
        self._keeper = keeper.Keeper(self)
        self._keeper.start()

    def _initial_budget(self) -> int:
        """This writer's share of the free space, until the keeper's first scan refines it."""
        try:
            listing = list_dir(self.directory)
        except OSError:
            return self.max_bytes
        return (self.max_bytes - listing.total_bytes) // (len(listing.locks) + 1)

    def _new_segment(self) -> Segment:
        """Create and open the next segment file of this owner (not yet active)."""
        self._number += 1
        path = os.path.join(self.directory, segment_name(self.owner, self._number))
        # Written under a temporary name and renamed: a segment never appears without its header,
        # so a crash here leaves a stray temporary file, not a "corrupt" segment.
        temp = os.path.join(self.directory, f".{os.path.basename(path)}.tmp")
        fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        try:
            header = fmt.encode_header(int(time.time() * 1000), bytes.fromhex(self.owner))
            if os.write(fd, header) != len(header):
                raise OSError(errno.ENOSPC, "short write of a segment header", temp)
            os.rename(temp, path)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return Segment(path, self.owner, self._number, True, time.time(), fmt.HEADER_SIZE, fd=fd)

    def _activate(self, segment: Segment) -> None:
        # Caller holds the lock, or is the constructor.
        self._own.append(segment)
        self._healthy = True

    @property
    def accepted(self) -> int:
        """Events written by this process (each has the next sequence number)."""
        return self._seq

    @property
    def healthy(self) -> bool:
        """Whether events are being written to disk (false while degraded to memory)."""
        return self._healthy

    def attach(self, batch_size: int, wake: object) -> None:
        """Called by the processor: its batch size, and a callable that wakes a worker."""
        self._batch_size = batch_size
        self._wake_hook = wake

    # -- the caller's thread -----------------------------------------------------------

    def append(self, event: UserEvent) -> int:
        """Write ``event`` to the active segment; one of the module's result codes. Never raises."""
        try:
            visitor = visitor_bytes(event)
            context = event[0]
        except Exception:
            return FALLBACK  # the memory path counts it when the worker fails to build it
        if len(visitor) > _MAX_VISITOR:
            return FALLBACK  # the memory path refuses it as too_large, as without a spool
        visitor_crc = _crc32(visitor)  # before the lock: only the sequence number needs it
        if self._pid != _getpid():  # forked where at-fork hooks do not run (uWSGI without enable-threads...)
            self._after_fork_in_child()
        with self._lock:
            if not self._healthy:
                self.degraded_events += 1
                return FALLBACK
            if self._budget <= 0 and self.on_full == "drop_newest":
                self._count("spool_cap", 1)
                return DROPPED
            segment = self._own[-1]
            seq = self._seq
            # Events of one client share one context object: identity first (hashing the
            # frozen dataclass costs more than the rest of the framing).
            index = (
                segment.last_index if segment.last_context is context else segment.context_index.get(context)
            )
            if index is None:
                index = len(segment.contexts)
                data = fmt.encode_record(seq, fmt.CONTEXT, index, context_bytes(context))
                data += fmt.encode_record(seq, fmt.EVENT, index, visitor, visitor_crc)
            else:
                meta = _pack_meta(seq, fmt.EVENT, index)
                data = b"".join((_pack_head(_MAGIC, len(visitor), _crc32(meta, visitor_crc)), meta, visitor))
            try:
                written = os.write(segment.fd, data)  # type: ignore[arg-type]
                if self.fsync == "always":
                    _fdatasync(segment.fd)  # type: ignore[arg-type]
            except OSError as exc:
                self._torn(segment, 0)
                self._degrade(exc)
                self.degraded_events += 1
                return FALLBACK
            if written != len(data):
                self._torn(segment, written)
                self._degrade(OSError(errno.ENOSPC, "short write (disk full?)"))
                self.degraded_events += 1
                return FALLBACK
            if index == len(segment.contexts):
                segment.contexts.append(context)
                segment.context_index[context] = index
            segment.last_context, segment.last_index = context, index
            start = segment.end
            if self._mirroring:
                self._mirror_event(
                    segment, start, start + written, SpooledEvent(context, visitor, seq, start)
                )
            segment.end += written
            segment.records += 1
            segment.dirty = True
            self._seq = seq + 1
            self._budget -= written
            if self._unread == 0:
                self._first_unread_at = time.monotonic()
            self._unread += 1
            wake = self._unread == self._batch_size
            if segment.end >= self.segment_bytes or 0 >= self._budget > -written:
                self._rotate_or_kick(segment)
            if self._budget <= 0 and self.on_full == "drop_oldest":
                self._shed_oldest()
        return ACCEPTED_WAKE if wake else ACCEPTED

    def _mirror_event(self, segment: Segment, start: int, end: int, event: SpooledEvent) -> None:
        if self._mirror_bytes + len(event.visitor) > _MIRROR_BYTES or len(self._mirror) >= _MIRROR_EVENTS:
            self._mirror.clear()  # the workers are far behind: they read the disk from here on
            self._mirror_bytes = 0
            self._mirroring = False
            return
        self._mirror.append((segment, start, end, event))
        self._mirror_bytes += len(event.visitor)

    def _take_mirrored(self, segment: Segment, max_events: int, max_bytes: int) -> list[SpooledEvent] | None:
        """Own events just written, from memory, if they are exactly the next ones to read (lock held)."""
        mirror = self._mirror
        while mirror:  # drop what the disk reader already went past
            head, start = mirror[0][0], mirror[0][1]
            if head is segment and start >= segment.read_pos:
                break
            if head is not segment and head.number > segment.number:
                break
            self._mirror_bytes -= len(mirror.popleft()[3].visitor)
        if not mirror or mirror[0][0] is not segment or mirror[0][1] != segment.read_pos:
            return None
        events: list[SpooledEvent] = []
        nbytes = 0
        position = segment.read_pos
        while mirror and len(events) < max_events:
            head, start, end, event = mirror[0]
            if head is not segment or start != position:
                break
            if events and nbytes + len(event.visitor) > max_bytes:
                break
            mirror.popleft()
            self._mirror_bytes -= len(event.visitor)
            events.append(event)
            nbytes += len(event.visitor)
            position = end
        segment.read_pos = position
        segment.handed_out += len(events)
        self._unread -= len(events)
        return events

    def _shed_oldest(self) -> None:
        """Over budget: drop this process's oldest sealed segment now (lock held).

        The keeper does this too, on its scans; doing it here as well bounds the directory
        even while the keeper waits for the interpreter lock or a slow fsync.
        """
        for segment in self._own:
            if segment.sealed and not segment.reading and segment is not self._active():
                self._budget += segment.end
                lost = segment.unread
                self._lose(segment, "spool_cap", lost, f"spool_cap: removed {os.path.basename(segment.path)}")
                return

    def _rotate_or_kick(self, segment: Segment) -> None:
        if segment.end >= self.segment_bytes and self._next is None:
            # The keeper has not prepared the next segment (starved of the interpreter lock):
            # make it here, once per segment (tens of microseconds, no sync), rather than let
            # this one grow past segment_bytes.
            with contextlib.suppress(OSError):
                self._next = self._new_segment()
        if segment.end >= self.segment_bytes and self._next is not None:
            segment.sealed = True  # the keeper syncs it
            self._own.append(self._next)
            self._next = None
        self._keeper.kick()

    def _torn(self, segment: Segment, written: int) -> None:
        """A write failed or was cut short: cut the file back to its last whole record."""
        segment.sealed = True
        if written:  # readers would skip the torn bytes by their checksum anyway
            with contextlib.suppress(OSError):
                os.ftruncate(segment.fd, segment.end)  # type: ignore[arg-type]

    def _degrade(self, exc: OSError) -> None:
        """Switch to memory-only until the keeper's next probe succeeds (lock held)."""
        if self._healthy or self.degradations == 0:
            self.degradations += 1
        self._healthy = False
        self.last_error = f"{type(exc).__name__}: {exc}"
        now = time.monotonic()
        if now - self._last_logged >= 60.0 or self._last_logged == 0.0:
            self._last_logged = now
            self._logger.error(
                "flagstream: spool %s is not writable (%s); keeping events in memory until it is",
                self.directory,
                self.last_error,
            )

    def _count(self, reason: str, count: int) -> None:
        if count > 0:
            self.dropped[reason] = self.dropped.get(reason, 0) + count
            self._unreported[reason] = self._unreported.get(reason, 0) + count

    # -- the workers -------------------------------------------------------------------

    def due(self, now: float, flush_interval: float, closing: bool) -> bool:
        """Whether a worker should take a window now (``now`` is ``time.monotonic()``)."""
        with self._lock:
            return self._due(now, flush_interval, closing)

    def _due(self, now: float, flush_interval: float, closing: bool) -> bool:
        return self._pick(now, flush_interval, closing) is not None

    def _own_due(self, now: float, flush_interval: float, closing: bool) -> bool:
        return self._unread > 0 and (
            closing
            or self._unread >= self._batch_size
            or self._seq_read() < self._flush_seq
            or now - self._first_unread_at >= flush_interval
        )

    def wait_time(self, now: float, flush_interval: float) -> float:
        """How long a worker may sleep before own events become due."""
        with self._lock:
            if self._unread <= 0:
                return flush_interval
            return max(0.001, flush_interval - (now - self._first_unread_at))

    def _seq_read(self) -> int:
        """The sequence number of the first own event not yet read into a window."""
        return self._seq - self._unread

    def take(
        self, max_events: int, max_bytes: int, now: float, flush_interval: float, closing: bool
    ) -> SpoolWindow | None:
        """The next window: due own events first (live traffic), then adopted backlog."""
        with self._lock:
            segment = self._pick(now, flush_interval, closing)
            if segment is None:
                return None
            if segment.own:
                mirrored = self._take_mirrored(segment, max_events, max_bytes)
                if mirrored:
                    return self._lease(segment, mirrored)
            segment.reading = True
            start, end = segment.read_pos, segment.end
            contexts = dict(enumerate(segment.contexts))
            leased = frozenset(segment.leased) if segment.leased else frozenset()
            # Own segments are read through their open descriptor, so events survive even if
            # the directory is removed under us. The keeper clears segment.fd under this lock
            # before it closes it, so the duplicate is of a descriptor that is still open.
            fd: int | None = None
            with contextlib.suppress(OSError):
                fd = os.dup(segment.fd) if segment.fd is not None else None
        try:
            read = read_window(
                segment, fd, start, end, max_events, max_bytes, contexts, self._interned, leased
            )
        except OSError as exc:
            with self._lock:
                segment.reading = False
                lost = segment.unread if segment.own else 1
                self._lose(segment, "spool_disk_error", lost, f"cannot read {segment.path}: {exc}")
            return None
        with self._lock:
            segment.reading = False
            segment.read_pos = read.position
            for index, context in read.learned.items():
                while len(segment.contexts) <= index:
                    segment.contexts.append(None)
                segment.contexts[index] = context
            if segment.own:
                handed = len(read.events) + read.skipped
                segment.handed_out += handed
                self._unread -= handed
                if segment.read_pos >= segment.end and segment.unread > 0:
                    # Own events the reader could not use (the file was damaged under us).
                    self._count("spool_corrupt", segment.unread)
                    self._unread -= segment.unread
                    segment.handed_out = segment.records
            else:
                self._count("spool_corrupt", read.corrupt)
                if read.torn_at is not None:
                    keeper.cut_torn_tail(self, segment, read.torn_at)
            if not read.events:
                self._maybe_remove(segment)
                return None
            return self._lease(segment, read.events)

    def _lease(self, segment: Segment, events: list[SpooledEvent]) -> SpoolWindow:
        """Events read from ``segment`` become a window in flight (lock held)."""
        if self._unread <= 0 and not self._mirroring:
            self._mirror.clear()  # caught up with the disk: keep what is written in memory again
            self._mirror_bytes = 0
            self._mirroring = True
        segment.inflight += 1
        segment.leased.update(event.seq for event in events)
        window = SpoolWindow(segment, events)
        self._windows.add(window)  # in the same step as the unread count drops, for flush()
        return window

    def _pick(self, now: float, flush_interval: float, closing: bool) -> Segment | None:
        """The segment the next window comes from (own events are read by one worker at a time, in order)."""
        if self._own_due(now, flush_interval, closing) and not any(s.reading for s in self._own):
            for segment in self._own:
                if segment.read_pos < segment.end:
                    return segment if now >= segment.not_before else None
        for segment in self._backlog:
            if not segment.reading and segment.read_pos < segment.end and now >= segment.not_before:
                return segment
        return None

    def settle(
        self, window: SpoolWindow, count: int, *, delivered: bool, keep: Sequence[SpooledEvent] = ()
    ) -> bool:
        """Record that ``count`` events of ``window`` are done; True when the whole window is.

        ``keep`` are events whose delivery failed for a reason that a later
        attempt may not meet (retries ran out, the processor is closing): they
        stay in the spool and are read again, instead of being acknowledged.
        """
        with self._lock:
            count = min(count, window.remaining)
            window.remaining -= count
            window.released.extend(keep)
            if delivered:
                if window.own:
                    self.delivered += count
                else:
                    self.replayed += count
            if window.remaining > 0:
                return False
            self._windows.discard(window)
            segment = window.segment
            segment.inflight -= 1
            segment.leased.difference_update(event.seq for event in window.events)
            kept = {event.seq for event in window.released}
            ranges = runs([event.seq for event in window.events if event.seq not in kept])
            for first, n in ranges:
                segment.settled.add(first, n)
            if window.released and not segment.deleted:
                self._give_back(segment, window.released)
            if not segment.deleted:
                if ranges:
                    self._write_acks(segment, ranges)
                self._maybe_remove(segment)
            return True

    def _give_back(self, segment: Segment, events: list[SpooledEvent]) -> None:
        """Read ``events`` again later: rewind the segment to the first of them (lock held)."""
        segment.read_pos = min(segment.read_pos, *(event.offset for event in events))
        segment.not_before = time.monotonic() + _GIVEN_BACK_PAUSE
        if segment.own:
            segment.handed_out -= len(events)
            self._unread += len(events)

    def _write_acks(self, segment: Segment, ranges: list[tuple[int, int]]) -> None:
        if self._closed:
            return  # closed under a late window: its events are replayed (duplicates, not loss)
        try:
            if segment.ack_fd is None:
                segment.ack_fd = os.open(segment.ack_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.write(segment.ack_fd, fmt.encode_acks(ranges))
            segment.ack_dirty = True
        except OSError as exc:
            # Settled in memory all the same: the segment is still removed when drained, and a
            # crash before that only replays these events (duplicates, never loss).
            self.last_error = f"cannot write acknowledgements: {exc}"

    def _maybe_remove(self, segment: Segment) -> None:
        if segment.drained and not segment.deleted and segment is not self._active():
            self._remove(segment)

    def _active(self) -> Segment | None:
        return self._own[-1] if self._own and self._healthy else None

    def _remove(self, segment: Segment) -> None:
        """Unlink a segment and its acknowledgements (lock held); the keeper closes descriptors.

        If the segment cannot be unlinked (a read-only directory), it stays where it is and the
        keeper tries again on its next pass: a settled segment left behind would be replayed.
        """
        try:
            os.unlink(segment.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.last_error = f"cannot remove {segment.path}: {exc}"
            return
        segment.deleted = True
        with contextlib.suppress(OSError):
            os.unlink(segment.ack_path)
        lane = self._own if segment.own else self._backlog
        if segment in lane:
            lane.remove(segment)
        self._keeper.retire(segment)  # it closes the descriptors and syncs the directory

    def _lose(self, segment: Segment, reason: str, count: int, error: str) -> None:
        """A segment cannot be used any more: count its unsettled events and remove it."""
        self.last_error = error
        self._count(reason, count)
        if segment.own:
            self._unread -= segment.unread
            segment.handed_out = segment.records
        segment.read_pos = segment.end
        segment.sealed = True
        self._remove(segment)  # windows still in flight settle without acknowledging

    def take_dropped(self) -> dict[str, int]:
        """Spool drops since the last call, by reason (for one log line and one notification)."""
        with self._lock:
            drops, self._unreported = self._unreported, {}
            return drops

    # -- flush -------------------------------------------------------------------------

    def request_flush(self) -> int:
        """Make every own event written so far due; returns the sequence number flush waits for."""
        with self._lock:
            self._flush_seq = max(self._flush_seq, self._seq)
            return self._seq

    def pending_before(self, target: int) -> int:
        """Own events below ``target`` not yet settled (unread, or in a window in flight)."""
        with self._lock:
            unread = max(0, min(self._unread, target - self._seq_read()))
            flying = sum(w.remaining for w in self._windows if w.own and w.events[0].seq < target)
            return unread + flying

    def unsettled_own(self) -> int:
        """Own events written and not yet settled: unread, or in a window in flight."""
        with self._lock:
            return self._unread + sum(w.remaining for w in self._windows if w.own)

    # -- observability -----------------------------------------------------------------

    def stats(self) -> SpoolStats:
        """Counters and gauges of this spool (directory-wide figures are from the keeper's last scan)."""
        now = time.time()
        with self._lock:
            backlog_known = sum(1 for s in self._backlog if s.read_pos < s.end)
            return SpoolStats(
                accepted=self.accepted,
                delivered=self.delivered,
                replayed=self.replayed,
                events=self._unread + sum(w.remaining for w in self._windows if w.own),
                bytes=self._listing_bytes,
                segments=self._listing_segments,
                backlog_segments=backlog_known,
                oldest_age=max(0.0, now - self._oldest_created) if self._oldest_created else 0.0,
                degraded=not self._healthy,
                degraded_events=self.degraded_events,
                degradations=self.degradations,
                dropped=dict(self.dropped),
                last_error=self.last_error,
            )

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Sync and close every file; what is unsettled stays for the next process. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._healthy = False
        self._keeper.stop()
        self._keeper.release_adopted()
        with self._lock:
            keeper.close_files(self)
        _live.discard(self)

    def _after_fork_in_child(self) -> None:
        # The parent's descriptors are closed without unlocking: flock belongs to the open file
        # description, which the parent still holds, so its locks stay the parent's.
        keeper.forget_inherited(self)
        if not self._closed:
            self._start(construction=False)

    def __enter__(self) -> EventSpool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EventSpool({self.directory!r}, owner={self.owner}, healthy={self._healthy})"


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """A snapshot of one process's spool."""

    accepted: int = 0
    delivered: int = 0
    replayed: int = 0
    events: int = 0
    bytes: int = 0
    segments: int = 0
    backlog_segments: int = 0
    oldest_age: float = 0.0
    degraded: bool = False
    degraded_events: int = 0
    degradations: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    last_error: str | None = None


def _after_fork_in_child() -> None:
    for spool in list(_live):
        spool._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
