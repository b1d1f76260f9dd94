"""The spool's background thread: sync, rotate, cap, expire, adopt, re-probe.

Everything that may block on the disk for long (fsync, creating files,
scanning the directory, reading a dead owner's files) happens here, never on
the caller's thread. Each pass:

* syncs what was written since the last sync (``fsync="interval"``), and
  every segment sealed by rotation, then the directory;
* prepares the next segment, so that rotation on the caller's thread is a swap;
* scans the directory: the shared ``max_bytes`` budget, drops by age, and, with
  ``drop_oldest``, removes the oldest segments until the directory fits. Only
  segments this process owns or has adopted are removed; a live peer removes
  its own when its keeper sees the same listing;
* adopts the files of dead owners (their lock is free) and hands them to the
  workers as backlog; releases an adopted owner once its files are gone;
* while degraded, re-probes the disk every ``reprobe_interval`` seconds.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import TYPE_CHECKING

from flagstream.delivery.spool.adoption import Adoption, count_unsettled
from flagstream.delivery.spool.files import create_lock, fsync_dir, list_dir
from flagstream.delivery.spool.segment import Leased, Segment

if TYPE_CHECKING:
    from flagstream.delivery.spool.files import Listing
    from flagstream.delivery.spool.spool import EventSpool

__all__ = ["Keeper"]

_TICK = 0.2
_SCAN_EVERY = 1.0
_ADOPT_EVERY = 2.0


class Keeper(Adoption):
    """The background thread of one :class:`EventSpool` (its state is guarded by the spool's lock)."""

    def __init__(self, spool: EventSpool) -> None:
        self._spool = spool
        self._kick = threading.Event()
        self._stopped = threading.Event()
        self._retired: list[Segment] = []
        self._dir_dirty = False
        self._last_sync = time.monotonic()
        self._last_scan = 0.0
        # A segment was sealed since the last scan: scan on this pass. A peer that started
        # after our last scan shrank our share of max_bytes; scanning once per segment written
        # keeps what we spend on a stale share to about a segment (tests/spool/test_outage_caps.py).
        self._rotated = False
        self._last_adopt = 0.0
        self._last_probe = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="flagstream-spool", daemon=True)

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if not self._thread.is_alive() and not self._stopped.is_set():
            self._thread.start()

    def kick(self) -> None:
        """Run a pass now (a segment filled up, or the directory is over its budget)."""
        self._kick.set()

    def retire(self, segment: Segment) -> None:
        """Close a removed or sealed segment's descriptors on the next pass (lock held)."""
        self._retired.append(segment)
        self._kick.set()

    def stop(self, timeout: float = 2.0) -> None:
        """End the thread after its current pass."""
        self._stopped.set()
        self._kick.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        spool = self._spool
        while not self._stopped.is_set():
            self._kick.wait(_TICK)
            self._kick.clear()
            if self._stopped.is_set():
                return
            try:
                self.run_pass(time.monotonic())
            except Exception as exc:  # the keeper must outlive any surprise
                spool._logger.error("flagstream: spool keeper error: %r", exc)

    def run_pass(self, now: float) -> None:
        """One pass of the duties in the module docstring."""
        spool = self._spool
        self._sync(now)
        self._prepare_next()
        if not spool._healthy and now - self._last_probe >= spool.reprobe_interval:
            self._last_probe = now
            self._probe()
        if now - self._last_scan >= _SCAN_EVERY or self._over_budget() or self._rotated:
            self._last_scan = now
            self._rotated = False
            try:
                listing = list_dir(spool.directory)
                if spool._healthy and not os.path.exists(
                    os.path.join(spool.directory, f"{spool.owner}.lock")
                ):
                    raise FileNotFoundError(f"the lock file of this process vanished from {spool.directory}")
            except OSError as exc:
                self._lost_directory(exc)
                return
            self._touch_active()
            if now - self._last_adopt >= _ADOPT_EVERY:
                self._last_adopt = now
                self._adopt(listing)
            self._enforce(listing)
        self.release_adopted()
        if self._dir_dirty:
            self._dir_dirty = False
            with contextlib.suppress(OSError):
                fsync_dir(spool.directory)

    # -- sync and rotation -------------------------------------------------------------

    def _sync(self, now: float) -> None:
        spool = self._spool
        interval_due = spool.fsync == "interval" and now - self._last_sync >= spool.fsync_interval
        with spool._lock:
            retired, self._retired = self._retired, []
            # Rotation always syncs: a sealed segment with unsynced writes, whatever the policy.
            # Its descriptor stays open until it is removed, so it can be read even if the
            # directory disappears under us.
            dirty = [s for s in spool._own if s.sealed and s.dirty]
            if interval_due:
                self._last_sync = now
                dirty = [s for s in (*spool._own, *spool._backlog) if s.dirty or s.ack_dirty]
            fds = [fd for s in dirty for fd in (s.fd, s.ack_fd) if fd is not None]
            for segment in dirty:
                segment.dirty = segment.ack_dirty = False
            sealed = any(s.sealed for s in dirty)
            self._rotated = self._rotated or sealed
        for fd in fds:
            with contextlib.suppress(OSError):
                os.fsync(fd)
        for segment in retired:
            self._close(segment)
        if sealed or retired:
            self._dir_dirty = True
        with spool._lock:  # segments sealed after their last window settled (degraded, rotated)
            for segment in [*spool._own, *spool._backlog]:
                spool._maybe_remove(segment)

    def _close(self, segment: Segment) -> None:
        """Close the descriptors of a removed segment."""
        with self._spool._lock:
            fds = [fd for fd in (segment.fd, segment.ack_fd) if fd is not None]
            segment.fd = segment.ack_fd = None
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _prepare_next(self) -> None:
        spool = self._spool
        with spool._lock:
            if spool._next is not None or not spool._healthy or spool._closed:
                return
            number = spool._reserve_number()
        try:
            segment = spool._new_segment(number)
        except OSError as exc:
            with spool._lock:
                spool.last_error = f"cannot create a segment: {exc}"
            return
        self._dir_dirty = True
        with spool._lock:
            spare: Segment | None = None
            if spool._next is not None or spool._closed:  # the caller made one meanwhile
                spare = segment
            else:
                spool._next = segment
            active = spool._own[-1] if spool._own else None
            if active is not None and active.end >= spool.segment_bytes and not active.sealed:
                spool._rotate_or_kick(active)
        if spare is not None and spare.fd is not None:
            with contextlib.suppress(OSError):
                os.close(spare.fd)
                os.unlink(spare.path)

    def _touch_active(self) -> None:
        """Mark the active segment as alive, so that peers never take it for an abandoned one."""
        spool = self._spool
        with spool._lock:
            active = spool._active()
            fd = os.dup(active.fd) if active is not None and active.fd is not None else None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.utime(fd)
            os.close(fd)

    def _lost_directory(self, exc: OSError) -> None:
        """The directory (or our lock in it) is gone or unreadable: degrade and re-create on probe."""
        spool = self._spool
        with spool._lock:
            if not spool._healthy:
                spool.last_error = f"{type(exc).__name__}: {exc}"
                return
            for segment in spool._own:
                segment.sealed = True  # still read through their open descriptors
            spool._degrade(exc)
            lock_fd, spool._lock_fd = spool._lock_fd, None
            next_segment, spool._next = spool._next, None
        for fd in (lock_fd, next_segment.fd if next_segment else None):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _probe(self) -> None:
        """Degraded: try to write a new segment; success makes the spool healthy again."""
        spool = self._spool
        try:
            if spool._lock_fd is None:
                os.makedirs(spool.directory, exist_ok=True)
                spool._lock_fd = create_lock(spool.directory, spool.owner)
            with spool._lock:
                number = spool._reserve_number()
            segment = spool._new_segment(number)
            os.fsync(segment.fd)  # type: ignore[arg-type]
        except OSError as exc:
            with spool._lock:
                spool.last_error = f"{type(exc).__name__}: {exc}"
            return
        self._dir_dirty = True
        with spool._lock:
            if spool._closed:
                return
            for old in spool._own:
                old.sealed = True
            spool._activate(segment)
        spool._logger.warning("flagstream: spool %s is writable again", spool.directory)

    # -- caps and age ------------------------------------------------------------------

    def _over_budget(self) -> bool:
        return self._spool._budget <= 0

    def _enforce(self, listing: Listing) -> None:
        spool = self._spool
        now = time.time()
        total = listing.total_bytes - self._remove_set_aside(listing, now)
        writers = listing.writers(spool.owner, now)
        for entry in sorted(listing.segments, key=lambda e: e.mtime):
            if now - entry.mtime < spool.max_age:
                break
            if self._drop_file(entry.owner, entry.number, "spool_age"):
                total -= entry.size
        if spool.on_full == "drop_oldest" and total > spool.max_bytes:
            # Every writer's keeper sees the same listing and removes only what it owns or has
            # adopted, oldest first, down to what it may keep: its share of max_bytes, or all
            # that the others leave free if that is more. So several writers do not all free
            # the whole excess at once, and one busy writer beside idle ones keeps the space.
            mine = [e for e in listing.segments if e.owner == spool.owner or e.owner in spool._adopted]
            used = sum(e.size for e in mine)
            keep = max(spool.max_bytes // writers, spool.max_bytes - (total - used))
            for entry in sorted(mine, key=lambda e: e.mtime):
                if total <= spool.max_bytes or used <= keep:
                    break
                if self._drop_file(entry.owner, entry.number, "spool_cap"):
                    total -= entry.size
                    used -= entry.size
        with spool._lock:
            spool._listing_bytes = total
            spool._listing_segments = len(listing.segments)
            # Every writer spends the same headroom until the next scan: give each its share,
            # so that together they overshoot by a scan's worth of one writer at most.
            spool._budget = (spool.max_bytes - total) // writers
            created = [s.created for s in (*spool._own, *spool._backlog) if s.read_pos < s.end or s.inflight]
            spool._oldest_created = min(created) if created else 0.0

    def _remove_set_aside(self, listing: Listing, now: float) -> int:
        """Remove ``*.corrupt`` files past ``max_age``, or oldest first while over ``max_bytes``.

        They were counted when set aside and belong to no process; any of them may remove them.
        """
        spool = self._spool
        aged = []
        for name, size in listing.corrupt.items():
            with contextlib.suppress(OSError):
                aged.append((os.stat(os.path.join(spool.directory, name)).st_mtime, name, size))
        freed = 0
        over = listing.total_bytes - spool.max_bytes
        for mtime, name, size in sorted(aged):
            if now - mtime < spool.max_age and over - freed <= 0:
                break
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(spool.directory, name))
                freed += size
                self._dir_dirty = True
        return freed

    def _drop_file(self, owner: str, number: int, reason: str) -> bool:
        """Drop one of our segments with its unsettled events counted; False if it is not ours."""
        spool = self._spool
        with spool._lock:
            lane = spool._own if owner == spool.owner else spool._backlog
            segment = next((s for s in lane if s.owner == owner and s.number == number), None)
            if segment is None or segment.deleted or segment.reading:
                return False  # a worker is reading it: the next pass tries again
            if segment is spool._active():
                if spool._next is None:
                    return False
                segment.sealed = True
                spool._own.append(spool._next)
                spool._next = None
            start, end, settled = segment.read_pos, segment.end, segment.settled
            leased = Leased(frozenset(segment.leased), tuple(segment.leased_runs))
            # An adopted segment's unsettled events are counted from its file, without the
            # lock: marked as being read, no window is taken from it meanwhile. A window taken
            # then would be sent and also counted as dropped.
            segment.reading = not segment.own
        # Never raises; own segments are counted below, under the lock.
        lost = 0 if segment.own else count_unsettled(segment.path, start, end, settled, leased)
        with spool._lock:
            segment.reading = False
            if segment.deleted:
                return False
            if segment.own:  # counted now, under the lock _lose runs under
                lost = segment.unread
            spool._lose(segment, reason, lost, f"{reason}: removed {os.path.basename(segment.path)}")
        self._dir_dirty = True
        return True
