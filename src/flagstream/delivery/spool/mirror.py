"""What the caller just wrote, kept in memory as well, so workers need not read it back.

The disk is the truth: the mirror holds copies of the newest events of this
process's own segments while they are few (at most :data:`MIRROR_BYTES` of
records), and a worker takes a window from it only when its events are exactly
the next ones a disk read would return. When the workers fall that far behind,
the mirror is emptied and switched off; they read the disk until they have
caught up, and the mirror starts again from there.

A window is one slice of a list: the stall probe (``bench/stall_probe.py
--spool``) found that taking 500 events one by one, under the spool's lock,
held the application's threads for half a millisecond.

Every method runs under the spool's lock. The writer appends to
``Mirror.tail`` itself (inlined in ``SpoolWriter.append``, the caller's path).
"""

from __future__ import annotations

import operator
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass

from flagstream.delivery.spool.segment import Segment, SpooledEvent

__all__ = ["MIRROR_BYTES", "Mirror", "MirrorRun", "seq_span"]

MIRROR_BYTES = 16 * 1024 * 1024  # bytes of records mirrored, at most

_offset = operator.attrgetter("offset")


@dataclass(eq=False, slots=True)
class MirrorRun:
    """Events written to one segment and not taken yet, in order; they run to the segment's end."""

    segment: Segment
    events: list[SpooledEvent]  # not yet taken, oldest first

    def end_of(self, index: int) -> int:
        """Where the record of ``events[index]`` starts (the segment's end past the last)."""
        return self.events[index].offset if index < len(self.events) else self.segment.end


class Mirror:
    """Runs of mirrored events, oldest segment first; the last run is the writer's ``tail``."""

    __slots__ = ("bytes", "on", "runs", "tail", "tail_segment")

    def __init__(self) -> None:
        self.runs: deque[MirrorRun] = deque()
        self.tail: list[SpooledEvent] = []
        self.tail_segment: Segment | None = None
        self.bytes = 0  # of records, framing included
        self.on = True

    def start_run(self, segment: Segment) -> None:
        """The writer moved to ``segment``: its events go into a new run."""
        self.tail = []
        self.tail_segment = segment
        self.runs.append(MirrorRun(segment, self.tail))

    def stop(self) -> None:
        """Over :data:`MIRROR_BYTES`: forget everything; the workers read the disk from here on."""
        self.runs.clear()
        self.tail = []
        self.tail_segment = None
        self.bytes = 0
        self.on = False

    def restart(self) -> None:
        """The workers have caught up with the disk: mirror new writes again."""
        if not self.on:
            self.tail, self.tail_segment, self.bytes, self.on = [], None, 0, True

    def take(
        self, segment: Segment, max_events: int, max_bytes: int
    ) -> tuple[list[SpooledEvent], int] | None:
        """The next events of ``segment`` from its read position, and the position after them.

        None when the mirror does not hold exactly the events a disk read would
        return next. The bounds are a disk read's: at most ``max_events``, and
        visitors of at most ``max_bytes`` in all (at least one event). The
        visitors are only counted when the records' bytes exceed the bound.
        """
        run = self._run_at(segment)
        if run is None:
            return None
        events = run.events
        if not events or events[0].offset != segment.read_pos:
            return None
        last = min(len(events), max_events)
        start = events[0].offset
        if run.end_of(last) - start > max_bytes:
            # Records are longer than their visitors: count the visitors, as a disk read does.
            nbytes = 0
            for index in range(last):
                size = len(events[index].visitor)
                if index and nbytes + size > max_bytes:
                    last = index
                    break
                nbytes += size
        taken = events[:last]
        position = run.end_of(last)
        self.bytes -= position - start
        # Dropped from the list at once (the list object stays the tail the writer appends
        # to): taken events left in it were freed thousands at a time when it was finally
        # cut, a millisecond on the worker with the interpreter lock held (bench/stall_probe.py).
        del events[:last]
        if not events and run.segment is not self.tail_segment:
            self.runs.remove(run)
        return taken, position

    def _run_at(self, segment: Segment) -> MirrorRun | None:
        """The run of ``segment``, after dropping what the disk reader already went past."""
        runs = self.runs
        while runs:
            run = runs[0]
            if run.segment is segment:
                events = run.events
                if events and events[0].offset < segment.read_pos:
                    passed = bisect_left(events, segment.read_pos, key=_offset)
                    self.bytes -= run.end_of(passed) - events[0].offset
                    del events[:passed]
                return run
            if run.segment.number > segment.number:
                return None  # the segment asked for was never mirrored
            runs.popleft()  # an older segment: read (or removed) without the mirror
            if run.events:
                self.bytes -= run.segment.end - run.events[0].offset
            if run.segment is self.tail_segment:
                self.tail, self.tail_segment = [], None
        return None


def seq_span(events: list[SpooledEvent]) -> range | None:
    """The sequence numbers of mirrored ``events`` (consecutive writes), as one range."""
    first, last = events[0].seq, events[-1].seq
    return range(first, last + 1) if last - first == len(events) - 1 else None
