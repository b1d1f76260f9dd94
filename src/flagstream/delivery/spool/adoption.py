"""Adopting the files of dead processes: finding them, opening them, and letting them go.

A dead owner's lock is free (the kernel released it when the process died),
so whoever locks it first adopts its segments, and nobody else can while it
holds the lock: the backlog is delivered by one process at a time. Once its
segments are all gone the adopter removes the owner's leftovers and lock.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING

from flagstream.delivery.spool import format as fmt
from flagstream.delivery.spool.files import ACK_RE, claim_lock, owner_segments
from flagstream.delivery.spool.ranges import SeqRanges
from flagstream.delivery.spool.segment import Leased, Segment

if TYPE_CHECKING:
    from flagstream.delivery.spool.files import Listing
    from flagstream.delivery.spool.spool import EventSpool
    from flagstream.delivery.spool.state import SpoolState

__all__ = ["Adoption", "count_unsettled", "cut_torn_tail"]

_STALE_TEMP = 60.0
_LOCKLESS_GRACE = 30.0  # seconds a lock-less owner's segments must be untouched before adoption


class Adoption:
    """The keeper's adoption duties (its ``_spool`` and ``_dir_dirty`` are the keeper's)."""

    _spool: EventSpool
    _dir_dirty: bool

    def _adopt(self, listing: Listing) -> None:
        spool = self._spool
        for temp in listing.temp:
            path = os.path.join(spool.directory, temp)
            with contextlib.suppress(OSError):
                if time.time() - os.stat(path).st_mtime > _STALE_TEMP:
                    os.unlink(path)
        now = time.time()
        for owner in sorted(listing.owners() - {spool.owner} - set(spool._adopted)):
            if owner not in listing.locks and any(
                e.owner == owner and now - e.mtime < _LOCKLESS_GRACE for e in listing.segments
            ):
                # Segments without a lock file that were touched lately: their owner is probably
                # alive and its lock was deleted by hand (live owners touch their active segment
                # on every scan). Adopting them would send its events twice.
                continue
            fd = claim_lock(spool.directory, owner)
            if fd is None:
                continue
            # Its segments as they are now that it is surely dead, not as the listing saw them:
            # an owner alive at the listing may have started a segment before it died, and a
            # segment missed here would lose its acknowledgements when the owner is released.
            try:
                names = owner_segments(spool.directory, owner)
            except OSError:
                os.close(fd)
                continue
            opened = (self._open_adopted(name, owner, number) for name, number in names)
            segments = [segment for segment in opened if segment is not None]
            with spool._lock:
                if spool._closed:
                    os.close(fd)
                    return
                spool._adopted[owner] = fd
                spool._backlog.extend(segments)
            if segments:
                spool._logger.info(
                    "flagstream: spool adopted %d segment(s) left by a stopped process", len(segments)
                )
                wake = spool._wake_hook
                if callable(wake):
                    wake()

    def _open_adopted(self, name: str, owner: str, number: int) -> Segment | None:
        spool = self._spool
        path = os.path.join(spool.directory, name)
        try:
            with open(path, "rb") as file:
                head = file.read(fmt.HEADER_SIZE)
                size = os.fstat(file.fileno()).st_size
            header = fmt.decode_header(head)  # segments appear whole-headed: short is damage
        except fmt.HeaderError as exc:
            with spool._lock:
                spool._count("spool_corrupt", 1)
                spool.last_error = f"{name}: {exc}"
            with contextlib.suppress(OSError):
                os.replace(path, path + ".corrupt")
            spool._logger.error("flagstream: spool segment %s set aside as .corrupt: %s", name, exc)
            return None
        except OSError:
            return None
        settled = SeqRanges()
        ack = path[: -len(".seg")] + ".ack"
        try:
            with open(ack, "rb") as file:
                ranges, _bad = fmt.parse_acks(file.read())
            for first, count in ranges:
                settled.add(first, count)
        except OSError:
            pass  # no acknowledgements: everything in the segment is replayed
        return Segment(
            path, owner, number, False, header.created_ms / 1000.0, size, sealed=True, settled=settled
        )

    def release_adopted(self) -> None:
        """Forget adopted owners whose segments are all gone: remove their leftovers and lock."""
        spool = self._spool
        with spool._lock:
            done = [o for o in spool._adopted if not any(s.owner == o for s in spool._backlog)]
            fds = {owner: spool._adopted.pop(owner) for owner in done}
        for owner, fd in fds.items():
            with contextlib.suppress(OSError):
                for name in os.listdir(spool.directory):
                    m = ACK_RE.match(name)
                    # Its acknowledgements, and a segment it was creating when it died.
                    stray = name.startswith(f".{owner}-") and name.endswith(".seg.tmp")
                    if stray or (m is not None and m[1] == owner):
                        os.unlink(os.path.join(spool.directory, name))
                os.unlink(os.path.join(spool.directory, f"{owner}.lock"))
            with contextlib.suppress(OSError):
                os.close(fd)
            self._dir_dirty = True


def count_unsettled(path: str, start: int, end: int, settled: SeqRanges, leased: Leased) -> int:
    """Event records in ``path[start:end]`` neither settled nor in flight (for counting a drop).

    Events in flight are counted when their window settles: delivered, or dropped then.
    """
    try:
        with open(path, "rb") as file:
            file.seek(start)
            data = file.read(max(0, end - start))
    except OSError:
        return 0
    return sum(
        1
        for item in fmt.scan(data, 0, len(data), at_end=True)
        if isinstance(item, fmt.Record)
        and item.kind == fmt.EVENT
        and item.seq not in settled
        and item.seq not in leased
    )


def cut_torn_tail(spool: SpoolState, segment: Segment, offset: int) -> None:
    """An adopted segment ends in a torn record: truncate it there (lock held; we own its lock)."""
    with contextlib.suppress(OSError):
        os.truncate(segment.path, offset)
        segment.end = min(segment.end, offset)
        segment.read_pos = min(segment.read_pos, segment.end)
