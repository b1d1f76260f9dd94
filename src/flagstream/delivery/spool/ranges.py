"""``SeqRanges``: a small set of event sequence numbers, kept as merged half-open ranges."""

from __future__ import annotations

import bisect

__all__ = ["SeqRanges", "runs"]


class SeqRanges:
    """Settled sequence numbers of one segment (a few ranges, since windows settle in order).

    A worker reads a segment outside the spool's lock and asks whether each record
    is settled while another worker's window settles (``add``, under the lock). So
    ``add`` builds new lists and replaces both in one assignment: a reader sees the
    ranges before or after, never the starts of one and the ends of the other. (With
    two slice assignments, an unsettled event could read as settled, be skipped,
    and be lost: ``tests/spool/test_format_records.py``.)
    """

    __slots__ = ("_spans",)

    def __init__(self, ranges: list[tuple[int, int]] | None = None) -> None:
        self._spans: tuple[list[int], list[int]] = ([], [])  # starts, ends (exclusive)
        for first, count in ranges or ():
            self.add(first, count)

    def add(self, first: int, count: int) -> None:
        """Add ``first .. first + count - 1``."""
        if count <= 0:
            return
        starts, ends = self._spans
        start, end = first, first + count
        i = bisect.bisect_left(ends, start)
        j = i
        while j < len(starts) and starts[j] <= end:
            start = min(start, starts[j])
            end = max(end, ends[j])
            j += 1
        self._spans = ([*starts[:i], start, *starts[j:]], [*ends[:i], end, *ends[j:]])

    def __contains__(self, seq: int) -> bool:
        starts, ends = self._spans
        i = bisect.bisect_right(starts, seq) - 1
        return i >= 0 and seq < ends[i]

    def __len__(self) -> int:
        starts, ends = self._spans
        return sum(e - s for s, e in zip(starts, ends, strict=True))

    def ranges(self) -> list[tuple[int, int]]:
        """``(first, count)`` pairs, in order."""
        starts, ends = self._spans
        return [(s, e - s) for s, e in zip(starts, ends, strict=True)]


def runs(seqs: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs of ascending ``seqs`` as ``(first, count)`` pairs."""
    out: list[tuple[int, int]] = []
    for seq in seqs:
        if out and out[-1][0] + out[-1][1] == seq:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((seq, 1))
    return out
