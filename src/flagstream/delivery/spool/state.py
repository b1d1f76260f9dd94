"""What every part of an ``EventSpool`` shares: its state, and the bookkeeping they all use.

:class:`~flagstream.delivery.spool.spool.EventSpool` is assembled from
:class:`~flagstream.delivery.spool.writer.SpoolWriter` (the caller's append)
and :class:`~flagstream.delivery.spool.windows.SpoolWindows` (the workers'
windows); the keeper thread works on the same state. Every attribute is
guarded by ``_lock``.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from flagstream._logging import LoggerLike
from flagstream.delivery.spool import format as fmt
from flagstream.delivery.spool.files import segment_name
from flagstream.delivery.spool.mirror import Mirror
from flagstream.delivery.spool.segment import Segment
from flagstream.events.user_event import EventContext

if TYPE_CHECKING:
    from flagstream.delivery.spool.keeper import Keeper
    from flagstream.delivery.spool.windows import SpoolWindow

__all__ = ["SpoolState"]


class SpoolState:
    """The state of one process's spool (set up by ``EventSpool._start``)."""

    directory: str
    max_bytes: int
    max_age: float
    on_full: str
    fsync: str
    fsync_interval: float
    segment_bytes: int
    reprobe_interval: float
    _write_held: bool  # append writes with the interpreter lock held (writer.held_write)
    owner: str
    _logger: LoggerLike
    _lock: threading.Lock
    _pid: int
    _fork_mark: mmap.mmap | None  # zeroed by the kernel in a forked child (closing.fork_mark)
    _own: deque[Segment]  # oldest first; the last one is active while healthy
    _backlog: deque[Segment]  # adopted segments, oldest first
    _adopted: dict[str, int]  # dead owner -> the descriptor of its lock we hold
    _next: Segment | None  # prepared by the keeper, so rotation is a swap
    _number: int
    _seq: int
    _interned: dict[EventContext, EventContext]
    _healthy: bool
    _closed: bool
    _batch_size: int
    _wake_hook: object
    _unread: int
    _windows: set[SpoolWindow]
    _mirror: Mirror
    _first_unread_at: float
    _flush_seq: int
    _budget: int
    _listing_bytes: int
    _listing_segments: int
    _oldest_created: float
    delivered: int
    replayed: int
    degraded_events: int
    degradations: int
    dropped: dict[str, int]
    _unreported: dict[str, int]
    last_error: str | None
    _last_logged: float
    _lock_fd: int | None
    _keeper: Keeper

    def _after_fork_in_child(self) -> None:
        """Start over as a new owner in a forked child (``EventSpool`` defines it)."""
        raise NotImplementedError

    def _reserve_number(self) -> int:
        """The number of this owner's next segment (lock held)."""
        self._number += 1
        return self._number

    def _new_segment(self, number: int) -> Segment:
        """Create and open segment ``number`` of this owner (not yet active); no lock needed.

        It is written under a temporary name and linked into place: a segment never appears
        without its header (a crash leaves a stray temporary file instead), and an existing
        segment is never replaced.
        """
        path = os.path.join(self.directory, segment_name(self.owner, number))
        temp = os.path.join(self.directory, f".{os.path.basename(path)}.tmp")
        fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        try:
            header = fmt.encode_header(int(time.time() * 1000), bytes.fromhex(self.owner))
            if os.write(fd, header) != len(header):
                raise OSError(errno.ENOSPC, "short write of a segment header", temp)
            os.link(temp, path)  # fails, rather than replaces, if the name exists
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        os.unlink(temp)
        return Segment(path, self.owner, number, True, time.time(), fmt.HEADER_SIZE, fd=fd)

    def _activate(self, segment: Segment) -> None:
        # Caller holds the lock, or is the constructor.
        self._own.append(segment)
        self._healthy = True

    def _count(self, reason: str, count: int) -> None:
        if count > 0:
            self.dropped[reason] = self.dropped.get(reason, 0) + count
            self._unreported[reason] = self._unreported.get(reason, 0) + count

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
        segment.removed_for = reason  # windows in flight that fail later count their events too
        segment.read_pos = segment.end
        segment.sealed = True
        self._remove(segment)  # windows still in flight settle without acknowledging
