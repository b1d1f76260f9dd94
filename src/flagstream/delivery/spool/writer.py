"""The caller's side of the spool: one framed record, one ``write()``, a few counters.

Everything here runs on the application's thread inside ``process()``, so it
does no fsync, no directory scan and no waiting: the keeper thread does those.

On a local file system the ``write()`` is libc's, called through ``ctypes`` with
the interpreter lock held, as an in-memory enqueue holds it. ``os.write`` lets go
of the lock for the system call, and a delivery worker waiting for it then runs
its next slice while the caller waits to get the lock back: that hand-off was
+34 to +53 us of a ``decide``'s p99 (``bench/spool.py cost``, BENCHMARKS.md). A
write to the page cache does not block for long; if one ever takes more than
``SLOW_HELD_WRITE`` seconds, this spool goes back to ``os.write`` for good, so a
stalling disk blocks only the calling thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
import zlib
from collections.abc import Callable
from typing import Any, Final

from flagstream.delivery.spool import format as fmt
from flagstream.delivery.spool.mirror import MIRROR_BYTES
from flagstream.delivery.spool.segment import Segment, SpooledEvent, context_bytes
from flagstream.delivery.spool.state import SpoolState
from flagstream.events.payload import visitor_bytes
from flagstream.events.user_event import UserEvent

__all__ = [
    "ACCEPTED",
    "ACCEPTED_WAKE",
    "DROPPED",
    "FALLBACK",
    "SLOW_HELD_WRITE",
    "SpoolWriter",
    "load_held_write",
]

ACCEPTED: Final = 0
ACCEPTED_WAKE: Final = 1  # accepted, and a batch's worth is waiting: wake a worker
FALLBACK: Final = 2  # not written (disk failing, event unusable): the processor keeps it in memory
DROPPED: Final = 3  # the spool is full and on_full="drop_newest": counted as a spool_cap drop

_MAX_VISITOR = fmt.MAX_RECORD - 64
_crc32 = zlib.crc32
_getpid = os.getpid
_pack_meta = fmt.META.pack
_pack_head = fmt.HEAD.pack
_MAGIC = fmt.RECORD_MAGIC
_fdatasync = getattr(os, "fdatasync", os.fsync)
_new = tuple.__new__  # a SpooledEvent without its Python-level __new__
_clock = time.perf_counter

#: A write with the interpreter lock held that takes longer than this turns held writes off.
SLOW_HELD_WRITE = 0.001

#: libc's ``write(fd, data, size)`` with the interpreter lock held (a ``ctypes`` function that
#: returns -1 and sets ``ctypes``' errno on failure), once :func:`load_held_write` found it.
held_write: Callable[[int, bytes, Any], int] | None = None
_size_t: Callable[[int], Any] = int


def load_held_write() -> bool:
    """Load :data:`held_write` (once); whether this interpreter has it."""
    global held_write, _size_t
    if held_write is None:
        try:
            import ctypes  # noqa: PLC0415 - only a spool on a local disk needs it

            c_write = ctypes.PyDLL(None, use_errno=True).write  # PyDLL: the lock stays held
            c_write.restype = ctypes.c_ssize_t
        except (ImportError, OSError, AttributeError):  # no ctypes, or no libc symbols to find
            return False
        # The size as a c_size_t object rather than through argtypes: a third less call overhead.
        _size_t = ctypes.c_size_t
        held_write = c_write
    return True


def _held_write_failed(fd: int, data: bytes) -> int:
    """The held write returned -1: retry an interrupted one (releasing the lock), else raise."""
    import ctypes  # noqa: PLC0415 - loaded already by load_held_write

    code = ctypes.get_errno()
    if code == errno.EINTR:
        return os.write(fd, data)
    raise OSError(code, os.strerror(code))


class SpoolWriter(SpoolState):
    """``append`` and what it needs: rotation, shedding under the cap, degrading."""

    def append(self, event: UserEvent) -> int:
        """Write ``event`` to the active segment; one of the module's result codes. Never raises."""
        try:
            visitor = visitor_bytes(event)
            context = event[0]
        except Exception:
            return FALLBACK  # the memory path counts it when the worker fails to build it
        if len(visitor) > _MAX_VISITOR:
            return FALLBACK  # the memory path refuses it as too_large, as without a spool
        visitor_crc = _crc32(visitor)  # before the lock: only the sequence number needs it
        # Forked where at-fork hooks do not run (uWSGI by default): one byte the kernel
        # zeroed in the child, or getpid() where that page is not available.
        mark = self._fork_mark
        if (not mark[0]) if mark is not None else self._pid != _getpid():
            try:
                self._after_fork_in_child()
            except Exception:  # e.g. no thread can be started: keep the event in memory
                return FALLBACK
        with self._lock:
            if not self._healthy:
                if not self._closed:  # after close() the processor counts it (as closed)
                    self.degraded_events += 1
                return FALLBACK
            if self._budget <= 0 and self.on_full == "drop_newest":
                self._count("spool_cap", 1)
                return DROPPED
            segment = self._own[-1]
            seq = self._seq
            # Events of one client share one context object: identity first (hashing the
            # frozen dataclass costs more than the rest of the framing).
            index = (
                segment.last_index if segment.last_context is context else segment.context_index.get(context)
            )
            if index is None:
                index = len(segment.contexts)
                data = fmt.encode_record(seq, fmt.CONTEXT, index, context_bytes(context))
                data += fmt.encode_record(seq, fmt.EVENT, index, visitor, visitor_crc)
            else:
                meta = _pack_meta(seq, fmt.EVENT, index)
                data = b"".join((_pack_head(_MAGIC, len(visitor), _crc32(meta, visitor_crc)), meta, visitor))
            try:
                if self._write_held and held_write is not None:
                    began = _clock()
                    written = held_write(segment.fd, data, _size_t(len(data)))  # type: ignore[arg-type]
                    took = _clock() - began
                    if written < 0:
                        written = _held_write_failed(segment.fd, data)  # type: ignore[arg-type]
                    if took > SLOW_HELD_WRITE:
                        self._release_on_write(took)
                else:
                    written = os.write(segment.fd, data)  # type: ignore[arg-type]
                if self.fsync == "always":
                    _fdatasync(segment.fd)  # type: ignore[arg-type]
            except OSError as exc:
                self._torn(segment, 0)
                self._degrade(exc)
                self.degraded_events += 1
                return FALLBACK
            if written != len(data):
                self._torn(segment, written)
                self._degrade(OSError(errno.ENOSPC, "short write (disk full?)"))
                self.degraded_events += 1
                return FALLBACK
            if index == len(segment.contexts):
                segment.contexts.append(context)
                segment.context_index[context] = index
            segment.last_context, segment.last_index = context, index
            start = segment.end
            mirror = self._mirror
            if mirror.on:  # the mirror's bookkeeping, inlined here: this is the caller's path
                if mirror.tail_segment is not segment:
                    mirror.start_run(segment)
                mirror.tail.append(_new(SpooledEvent, (context, visitor, seq, start)))
                mirror.bytes += written
                if mirror.bytes > MIRROR_BYTES:
                    mirror.stop()  # the workers are far behind: they read the disk from here on
            segment.end += written
            segment.records += 1
            segment.dirty = True
            self._seq = seq + 1
            self._budget -= written
            if self._unread == 0:
                self._first_unread_at = time.monotonic()
            self._unread += 1
            wake = self._unread == self._batch_size
            if segment.end >= self.segment_bytes or 0 >= self._budget > -written:
                self._rotate_or_kick(segment)
            if self._budget <= 0 and self.on_full == "drop_oldest":
                self._shed_oldest()
        return ACCEPTED_WAKE if wake else ACCEPTED

    def _release_on_write(self, took: float) -> None:
        """A held write was slow: from now on, let other threads run while the disk blocks."""
        self._write_held = False
        self._logger.warning(
            "flagstream: a write to spool %s took %.1f ms; spool writes release the interpreter lock from now on",
            self.directory,
            took * 1000,
        )

    def _shed_oldest(self) -> None:
        """Over budget: drop this process's oldest sealed segment now (lock held).

        The keeper does this too, on its scans; doing it here as well bounds the directory
        even while the keeper waits for the interpreter lock or a slow fsync.
        """
        for segment in self._own:
            if segment.sealed and not segment.reading and segment is not self._active():
                self._budget += segment.end
                lost = segment.unread
                self._lose(segment, "spool_cap", lost, f"spool_cap: removed {os.path.basename(segment.path)}")
                return

    def _rotate_or_kick(self, segment: Segment) -> None:
        if segment.end >= self.segment_bytes and self._next is None:
            # The keeper has not prepared the next segment (starved of the interpreter lock):
            # make it here, once per segment (tens of microseconds, no sync), rather than let
            # this one grow past segment_bytes.
            with contextlib.suppress(OSError):
                self._next = self._new_segment(self._reserve_number())
        if segment.end >= self.segment_bytes and self._next is not None:
            segment.sealed = True  # the keeper syncs it
            self._own.append(self._next)
            self._next = None
        self._keeper.kick()

    def _torn(self, segment: Segment, written: int) -> None:
        """A write failed or was cut short: cut the file back to its last whole record."""
        segment.sealed = True
        if written:  # readers would skip the torn bytes by their checksum anyway
            with contextlib.suppress(OSError):
                os.ftruncate(segment.fd, segment.end)  # type: ignore[arg-type]
