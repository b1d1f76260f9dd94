"""The caller's side of ``BatchEventProcessor.process()`` (compiled in the mypyc build).

:class:`Intake` writes an event to the processor's spool when it has one, and
otherwise sizes it and offers it to the in-memory queue under the processor's
lock: no serialization, no I/O, no logging. The processor makes a new intake
whenever it makes new state (at start and after a fork).
"""

from __future__ import annotations

from typing import Any

from flagstream.delivery.core import ACCEPTED_WAKE, REFUSED, BatchCore
from flagstream.delivery.spool.spool import ACCEPTED_WAKE as SPOOL_ACCEPTED_WAKE
from flagstream.delivery.spool.spool import FALLBACK
from flagstream.events.payload import estimated_size

__all__ = ["Intake"]


class Intake:
    """Admits user events for one ``BatchEventProcessor`` (its ``_running``, ``_ensure_workers``,
    ``_wake_one`` and ``_refused`` are read on the processor itself)."""

    def __init__(self, processor: Any, lock: Any, wake: Any, core: BatchCore, spool: Any) -> None:
        self.processor = processor
        self.lock = lock
        self.wake = wake
        self.core = core
        self.spool = spool

    def offer(self, user_event: Any) -> None:
        """Queue ``user_event`` (on disk when there is a healthy spool); never blocks unless overflow="block".

        Anything may be passed (``process()`` never raises): what is not a user
        event cannot be sized and is refused as ``internal_error``.
        """
        processor = self.processor
        spool = self.spool
        if spool is not None:
            written = spool.append(user_event)
            if written != FALLBACK:  # on disk (or dropped by the spool's cap, and counted)
                if not processor._running:
                    processor._ensure_workers()
                if written == SPOOL_ACCEPTED_WAKE:
                    processor._wake_one()
                return
        try:
            size = estimated_size(user_event)
        except Exception:
            size = -1
        if not processor._running:
            processor._ensure_workers()
        result = REFUSED
        lock = self.lock
        lock.acquire()
        try:
            if size >= 0:
                result = self.core.offer(user_event, size)
                if result == ACCEPTED_WAKE:
                    self.wake.notify()
        finally:
            lock.release()
        if result == REFUSED:
            processor._refused(user_event, size)
