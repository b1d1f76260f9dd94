"""One segment file as the spool tracks it, and reading a window of events from it.

A segment is *own* (written by this process: the active one takes the
caller's writes; older ones are sealed) or *adopted* (left by a process that
died, and drained by this one while it holds the dead owner's lock). Reading
happens on a delivery worker, outside the spool's lock: the worker marks the
segment ``reading`` under the lock, reads and parses without it, then records
where it got to.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import NamedTuple

from flagstream import _json
from flagstream.delivery.spool import format as fmt
from flagstream.delivery.spool.ranges import SeqRanges
from flagstream.events.user_event import EventContext

__all__ = ["Segment", "SpooledEvent", "WindowRead", "context_bytes", "context_from", "read_window"]

_FIRST_READ = 256 * 1024
_YIELD_EVERY = 32  # records between two offers of the interpreter lock (about 50-100 us of parsing)


class SpooledEvent(NamedTuple):
    """An event as the spool holds it: the exact visitor JSON that goes into a request body.

    Dead-letter handlers of a processor with a spool receive these instead of
    user events (a replayed event has no user event any more).
    """

    context: EventContext
    visitor: bytes
    seq: int
    offset: int  # where its record starts in the segment (a window given back is read again from here)


@dataclass(eq=False, slots=True)
class Segment:
    """What the spool knows about one segment file."""

    path: str
    owner: str
    number: int
    own: bool
    created: float
    end: int  # bytes of complete records that may be read
    read_pos: int = fmt.HEADER_SIZE
    sealed: bool = False
    fd: int | None = None  # own segments: the append descriptor, until sealed and synced
    contexts: list[EventContext | None] = field(default_factory=list)
    context_index: dict[EventContext, int] = field(default_factory=dict)
    last_context: EventContext | None = None  # the writer's last context and its index
    last_index: int | None = None
    settled: SeqRanges = field(default_factory=SeqRanges)
    records: int = 0  # own: event records written
    handed_out: int = 0  # own: event records read into windows (a given-back one is read again)
    inflight: int = 0  # windows taken from this segment and not yet settled
    leased: set[int] = field(default_factory=set)  # seqs in flight, skipped when a rewound read meets them
    leased_runs: list[range] = field(default_factory=list)  # the same for mirrored windows, one range each
    not_before: float = 0.0  # a window was given back: read again from time.monotonic() >= this
    reading: bool = False
    ack_fd: int | None = None
    deleted: bool = False
    removed_for: str | None = None  # the drop reason it was removed for, with events unsettled
    dirty: bool = False  # appended since the last fsync
    ack_dirty: bool = False

    @property
    def ack_path(self) -> str:
        """The acknowledgement file beside this segment."""
        return self.path[: -len(".seg")] + ".ack"

    @property
    def unread(self) -> int:
        """Own segments: events written and not yet read into a window."""
        return self.records - self.handed_out

    @property
    def drained(self) -> bool:
        """Sealed, read to the end and nothing in flight: every event in it is settled."""
        return self.sealed and self.read_pos >= self.end and self.inflight == 0 and not self.reading


def context_bytes(context: EventContext) -> bytes:
    """A context record's data: every field of the context, as JSON."""
    return _json.dumps(dataclasses.asdict(context))


def context_from(data: bytes) -> EventContext | None:
    """The context a context record defines, or ``None`` if its data is not one."""
    try:
        raw = _json.loads(data)
        context = EventContext(**raw)
    except Exception:
        return None
    text_fields = (context.account_id, context.project_id, context.revision, context.endpoint)
    if not all(isinstance(v, str) for v in text_fields):
        return None
    return context


@dataclass(slots=True)
class WindowRead:
    """What one read of a segment produced."""

    events: list[SpooledEvent]
    position: int  # where the next read starts
    corrupt: int  # damaged stretches found
    torn_at: int | None  # where a torn tail at the end of the file starts
    learned: dict[int, EventContext]  # contexts defined in what was read


class Leased:
    """Sequence numbers in flight, that a rewound read skips: single ones, and whole runs."""

    __slots__ = ("runs", "seqs")

    def __init__(self, seqs: frozenset[int] = frozenset(), runs: tuple[range, ...] = ()) -> None:
        self.seqs = seqs
        self.runs = runs

    def __contains__(self, seq: int) -> bool:
        return seq in self.seqs or any(seq in run for run in self.runs)


def read_window(
    segment: Segment,
    fd: int | None,
    start: int,
    end: int,
    max_events: int,
    max_bytes: int,
    contexts: dict[int, EventContext | None],
    interned: dict[EventContext, EventContext],
    leased: Leased | frozenset[int] = frozenset(),
) -> WindowRead:
    """Read up to ``max_events`` unsettled events (``max_bytes`` of visitors) from ``start``.

    Reads through ``fd`` (which it closes) or, when ``None``, the segment's path.
    Raises OSError when the file cannot be read. ``contexts`` are the contexts
    known so far by index; ``interned`` maps each context to one shared object,
    so that a window's events share their context by identity, as live events do.
    """
    out = WindowRead([], start, 0, None, {})
    nbytes = 0
    size = _FIRST_READ
    if fd is None:
        fd = os.open(segment.path, os.O_RDONLY)
    try:
        while True:
            want = min(end - out.position, size)
            if want <= 0:
                break
            data = os.pread(fd, want, out.position)
            base = out.position
            at_end = base + len(data) >= end
            full = False
            for n, item in enumerate(fmt.scan(data, 0, len(data), at_end=at_end), 1):
                if not n % _YIELD_EVERY:
                    # Let the application's threads in: without this a long read holds the
                    # interpreter lock until the 5 ms switch interval forces it out.
                    time.sleep(0)
                if isinstance(item, fmt.Corrupt):
                    out.corrupt += 1
                    if item.torn:
                        out.torn_at = base + item.offset
                    out.position = base + item.end
                    continue
                if item.kind == fmt.CONTEXT:
                    context = context_from(item.data)
                    if context is None:
                        out.corrupt += 1
                    else:
                        context = interned.setdefault(context, context)
                        contexts[item.context] = context
                        out.learned[item.context] = context
                    out.position = base + item.end
                    continue
                if item.seq in segment.settled or item.seq in leased:
                    out.position = base + item.end
                    continue
                context = contexts.get(item.context) if item.kind == fmt.EVENT else None
                if context is None:  # its context record was lost: the event cannot be sent
                    out.corrupt += 1
                    out.position = base + item.end
                    continue
                if out.events and (len(out.events) >= max_events or nbytes + len(item.data) > max_bytes):
                    full = True
                    break
                out.events.append(SpooledEvent(context, item.data, item.seq, base + item.offset))
                nbytes += len(item.data)
                out.position = base + item.end
            if full or at_end or len(out.events) >= max_events:
                break
            if out.position == base:  # one record larger than what we read: read more at once
                size *= 4
    finally:
        os.close(fd)
    return out
