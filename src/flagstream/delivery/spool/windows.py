"""The workers' side of the spool: windows of events taken, settled, acknowledged or given back."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from flagstream.delivery.spool import adoption
from flagstream.delivery.spool import format as fmt
from flagstream.delivery.spool.mirror import seq_span
from flagstream.delivery.spool.ranges import runs
from flagstream.delivery.spool.segment import Leased, Segment, SpooledEvent, read_window
from flagstream.delivery.spool.state import SpoolState

__all__ = ["SpoolWindow", "SpoolWindows"]

_GIVEN_BACK_PAUSE = 1.0  # seconds before events whose retries ran out are tried again


@dataclass(eq=False, slots=True)
class SpoolWindow:
    """Events read from one segment together; acknowledged when all of them are settled."""

    segment: Segment
    events: list[SpooledEvent]
    remaining: int = field(init=False)
    released: list[SpooledEvent] = field(default_factory=list)  # kept for a later attempt
    seqs: range | None = None  # the events' sequence numbers when they are consecutive (mirrored)

    def __post_init__(self) -> None:
        self.remaining = len(self.events)

    @property
    def own(self) -> bool:
        """Whether these are this process's own events (not a dead process's backlog)."""
        return self.segment.own


class SpoolWindows(SpoolState):
    """Which events go out next, and what happens once they are settled."""

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
                mirrored = self._mirror.take(segment, max_events, max_bytes)
                if mirrored is not None:
                    events, segment.read_pos = mirrored
                    segment.handed_out += len(events)
                    self._unread -= len(events)
                    return self._lease(segment, events, seq_span(events))
            segment.reading = True
            start, end = segment.read_pos, segment.end
            contexts = dict(enumerate(segment.contexts))
            leased = Leased(frozenset(segment.leased), tuple(segment.leased_runs))
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
                # Settled and leased records were handed out when first read: a stretch read
                # again after a window was given back counts only the given-back events (it
                # counted the settled ones too, and the unread count drifted below zero:
                # flush() returned early and new events waited; tests/spool/test_mirror.py).
                handed = len(read.events)
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
                    adoption.cut_torn_tail(self, segment, read.torn_at)
            if not read.events:
                self._maybe_remove(segment)
                return None
            return self._lease(segment, read.events)

    def _lease(self, segment: Segment, events: list[SpooledEvent], seqs: range | None = None) -> SpoolWindow:
        """Events read from ``segment`` become a window in flight (lock held)."""
        if self._unread <= 0:
            self._mirror.restart()  # caught up with the disk: keep what is written in memory again
        segment.inflight += 1
        if seqs is not None:  # mirrored: one range, however many events
            segment.leased_runs.append(seqs)
        else:
            segment.leased.update([event.seq for event in events])
        window = SpoolWindow(segment, events, seqs=seqs)
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
            if window.seqs is not None:
                segment.leased_runs.remove(window.seqs)
            else:
                segment.leased.difference_update([event.seq for event in window.events])
            if window.seqs is not None and not window.released:  # a mirrored window: no loop
                ranges = [(window.seqs.start, len(window.seqs))]
            else:
                kept = {event.seq for event in window.released}
                ranges = runs([event.seq for event in window.events if event.seq not in kept])
            for first, n in ranges:
                segment.settled.add(first, n)
            if window.released and segment.removed_for is not None:
                # Nowhere to keep them: the segment was dropped while they were in flight (its
                # count covered only the events not handed out).
                self._count(segment.removed_for, len(window.released))
            elif window.released and not segment.deleted:
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

    def take_dropped(self) -> dict[str, int]:
        """Spool drops since the last call, by reason (for one log line and one notification)."""
        with self._lock:
            drops, self._unreported = self._unreported, {}
            return drops

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
