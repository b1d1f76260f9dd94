"""``EventSpool``: the durable on-disk spool of one process (see ``docs/delivery.md``).

The caller's thread (``append``) turns the event into its visitor JSON, frames
it and makes one ``write()`` on the active segment's ``O_APPEND`` descriptor:
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
from collections import deque
from dataclasses import dataclass, field

from flagstream._logging import get_logger
from flagstream.delivery.spool import closing, keeper
from flagstream.delivery.spool.files import (
    LOCAL_FILESYSTEMS,
    NETWORK_FILESYSTEMS,
    create_lock,
    filesystem_type,
    list_dir,
)
from flagstream.delivery.spool.mirror import Mirror
from flagstream.delivery.spool.windows import SpoolWindow, SpoolWindows
from flagstream.delivery.spool.writer import (
    ACCEPTED,
    ACCEPTED_WAKE,
    DROPPED,
    FALLBACK,
    SpoolWriter,
    load_held_write,
)
from flagstream.errors import ConfigurationError

__all__ = ["ACCEPTED", "ACCEPTED_WAKE", "DROPPED", "FALLBACK", "EventSpool", "SpoolStats", "SpoolWindow"]

FSYNC_POLICIES = ("interval", "always", "never")
FULL_POLICIES = ("drop_oldest", "drop_newest")
_MiB = 1024 * 1024
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO})  # start degraded, not refuse

_live: weakref.WeakSet[EventSpool] = weakref.WeakSet()


def _check(name: str, value: object, *, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigurationError(f"spool {name} must be a number, got {value!r}")
    if value < minimum:
        raise ConfigurationError(f"spool {name} must be >= {minimum}, got {value!r}")


class EventSpool(SpoolWriter, SpoolWindows):
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
        # Only where a write lands in the page cache: a network or FUSE file system can
        # block a write for as long as its server takes, and every thread would wait.
        self._write_held = kind in LOCAL_FILESYSTEMS and load_held_write()
        self._start(construction=True)
        _live.add(self)

    # -- state -------------------------------------------------------------------------

    def _start(self, *, construction: bool) -> None:
        """Fresh state for this process: a new owner id, its lock and first segment."""
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._fork_mark = closing.fork_mark()
        self.owner = secrets.token_hex(16)
        self._own = deque()  # oldest first; the last one is active while healthy
        self._backlog = deque()  # adopted segments, oldest first
        self._adopted = {}  # dead owner -> the descriptor of its lock we hold
        self._next = None
        self._number = 0
        self._seq = 0
        self._interned = {}
        self._healthy = False
        self._closed = False
        if construction:  # a forked child keeps what its processor attached
            self._batch_size = 500
            self._wake_hook = None
        self._unread = 0
        self._windows = set()  # taken and not yet settled
        self._mirror = Mirror()  # what the caller just wrote, for the workers
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
        self.dropped = {}
        self._unreported = {}
        self.last_error = None
        self._last_logged = 0.0
        try:
            self._lock_fd = create_lock(self.directory, self.owner)
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
                self._activate(self._new_segment(self._reserve_number()))
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
        return (self.max_bytes - listing.total_bytes) // listing.writers(self.owner, time.time())

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
            closing.close_files(self)
        _live.discard(self)

    def _after_fork_in_child(self) -> None:
        # The parent's descriptors are closed without unlocking: flock belongs to the open file
        # description, which the parent still holds, so its locks stay the parent's.
        closing.forget_inherited(self)
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
