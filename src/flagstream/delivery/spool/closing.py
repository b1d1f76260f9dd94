"""Closing a spool for good, and dropping a forked child's inherited descriptors."""

from __future__ import annotations

import contextlib
import mmap
import os
import sys
from typing import TYPE_CHECKING

from flagstream.delivery.spool.files import fsync_dir

if TYPE_CHECKING:
    from flagstream.delivery.spool.spool import EventSpool

__all__ = ["close_files", "forget_inherited", "fork_mark"]

_MADV_WIPEONFORK = getattr(mmap, "MADV_WIPEONFORK", 18)  # Linux 4.14+; CPython may not name it


def fork_mark() -> mmap.mmap | None:
    """A page whose first byte is 1 here and 0 in any forked child, or None where unsupported.

    The kernel empties a ``MADV_WIPEONFORK`` page in the child of every fork,
    also one made from C that runs no at-fork hook (uWSGI without its hook), so
    ``append`` checks for a fork by reading one byte instead of calling
    ``getpid()``: a system call per event, and on this kind of machine each
    one costs the caller more than its own 0.2 µs (BENCHMARKS.md).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        page = mmap.mmap(-1, mmap.PAGESIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        page.madvise(_MADV_WIPEONFORK)
    except (OSError, ValueError, AttributeError):  # an older kernel, or no madvise
        return None
    page[0] = 1
    return page


def close_files(spool: EventSpool) -> None:
    """Close for good (lock held): sync everything, remove what is settled, release the locks."""
    next_segment, spool._next = spool._next, None
    if next_segment is not None and next_segment.fd is not None:
        with contextlib.suppress(OSError):
            os.close(next_segment.fd)
            os.unlink(next_segment.path)
    for segment in (*spool._own, *spool._backlog):
        segment.sealed = True
        for fd in (segment.fd, segment.ack_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.fsync(fd)
                with contextlib.suppress(OSError):
                    os.close(fd)
        segment.fd = segment.ack_fd = None
        if segment.own and segment.records == len(segment.settled) and segment.inflight == 0:
            spool._remove(segment)
    with contextlib.suppress(OSError):
        fsync_dir(spool.directory)
    if spool._lock_fd is not None:
        if not spool._own:  # nothing of ours is left: leave no lock file behind
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(spool.directory, f"{spool.owner}.lock"))
        with contextlib.suppress(OSError):
            os.close(spool._lock_fd)
        spool._lock_fd = None
    for fd in spool._adopted.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    spool._adopted.clear()
    spool._backlog.clear()


def forget_inherited(spool: EventSpool) -> None:
    """In a forked child: close the parent's descriptors without unlocking or removing anything."""
    fds = [spool._lock_fd, *spool._adopted.values()]
    if spool._next is not None:
        fds.append(spool._next.fd)
    for segment in (*spool._own, *spool._backlog):
        fds.extend((segment.fd, segment.ack_fd))
    for fd in fds:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
    # Forget them too: closed numbers are reused by the child's own files, which a second
    # call (a start-over that failed and is tried again) must never close.
    spool._lock_fd, spool._next = None, None
    spool._adopted.clear()
    spool._own.clear()
    spool._backlog.clear()
