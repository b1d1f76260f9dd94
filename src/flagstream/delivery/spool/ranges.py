"""``SeqRanges``: a small set of event sequence numbers, kept as merged half-open ranges."""

from __future__ import annotations

import bisect

__all__ = ["SeqRanges", "runs"]


class SeqRanges:
    """Settled sequence numbers of one segment (a few ranges, since windows settle in order)."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, ranges: list[tuple[int, int]] | None = None) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for first, count in ranges or ():
            self.add(first, count)

    def add(self, first: int, count: int) -> None:
        """Add ``first .. first + count - 1``."""
        if count <= 0:
            return
        start, end = first, first + count
        i = bisect.bisect_left(self._ends, start)
        j = i
        while j < len(self._starts) and self._starts[j] <= end:
            start = min(start, self._starts[j])
            end = max(end, self._ends[j])
            j += 1
        self._starts[i:j] = [start]
        self._ends[i:j] = [end]

    def __contains__(self, seq: int) -> bool:
        i = bisect.bisect_right(self._starts, seq) - 1
        return i >= 0 and seq < self._ends[i]

    def __len__(self) -> int:
        return sum(e - s for s, e in zip(self._starts, self._ends, strict=True))

    def ranges(self) -> list[tuple[int, int]]:
        """``(first, count)`` pairs, in order."""
        return [(s, e - s) for s, e in zip(self._starts, self._ends, strict=True)]


def runs(seqs: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs of ascending ``seqs`` as ``(first, count)`` pairs."""
    out: list[tuple[int, int]] = []
    for seq in seqs:
        if out and out[-1][0] + out[-1][1] == seq:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((seq, 1))
    return out
