"""The spool's side of ``AsyncBatchEventProcessor``: windows taken off the loop, settled on it.

Taking a window may read a segment from disk, so it runs in the loop's default
executor and a slow disk never holds up the loop. Settling appends one
acknowledgement record (as ``process()`` appends one event) and runs on the
loop, in order with the rest of the window's plan. What a settlement means is
shared with the threaded processor (:mod:`flagstream.delivery.spooling`).
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from flagstream._logging import LoggerLike
from flagstream.delivery.core import BatchCore
from flagstream.delivery.plan import Plan, Settle
from flagstream.delivery.settings import BatchSettings
from flagstream.delivery.spool.spool import EventSpool, SpoolWindow
from flagstream.delivery.spooling import from_visitors, log_kept, settle_window

__all__ = ["AsyncSpoolWindows"]


class AsyncSpoolWindows:
    """Mixed into ``AsyncBatchEventProcessor`` after ``DriverBase`` (which gives the rest)."""

    settings: BatchSettings
    _spool: EventSpool | None
    _loop: asyncio.AbstractEventLoop | None
    _lock: threading.Lock
    _settled: asyncio.Event | None
    _logger: LoggerLike

    if TYPE_CHECKING:  # defined by AsyncBatchEventProcessor and DriverBase

        async def _guarded(self, delivery: Awaitable[None], settle_rest: Callable[[str], None]) -> None: ...

        async def _carry_out(self, core: BatchCore, plan: Plan, settle: Callable[[Settle], None]) -> None: ...

        def _plan(
            self, events: Sequence[Any], build: Callable[[Sequence[Any]], Any] | None = None
        ) -> Plan: ...

        def _after_settle(self, action: Settle, *, replayed: bool = False) -> None: ...

        def _report_refusals(self, drops: dict[str, int]) -> None: ...

    async def _deliver_spooled(self, core: BatchCore, spool: EventSpool) -> None:
        loop = self._loop
        assert loop is not None
        settings = self.settings
        taking = loop.run_in_executor(
            None,
            spool.take,
            settings.batch_size,
            settings.max_request_bytes,
            time.monotonic(),
            settings.flush_interval,
            core.closing,
        )
        try:
            window = await asyncio.shield(taking)
        except asyncio.CancelledError:  # closing: a window taken meanwhile goes back to the spool
            taking.add_done_callback(functools.partial(self._give_back, core))
            raise
        if window is not None:
            await self._guarded(
                self._carry_out(
                    core,
                    self._plan(window.events, from_visitors),
                    functools.partial(self._settle_spooled, core, window),
                ),
                functools.partial(self._settle_spooled_rest, core, window),
            )
        drops = spool.take_dropped()  # counted by the spool itself (stats() adds them up)
        if drops:
            self._report_refusals(drops)

    def _give_back(self, core: BatchCore, taking: asyncio.Future[SpoolWindow | None]) -> None:
        if taking.cancelled() or taking.exception() is not None:
            return
        window = taking.result()
        if window is not None:
            self._settle_spooled_rest(core, window, "shutdown")

    def _settle_spooled_rest(self, core: BatchCore, window: SpoolWindow, reason: str) -> None:
        if window.remaining > 0:
            self._settle_spooled(core, window, Settle(window.remaining, False, reason))

    def _settle_spooled(self, core: BatchCore, window: SpoolWindow, action: Settle) -> None:
        assert self._spool is not None
        with self._lock:
            keep = settle_window(self._spool, core, window, action)
        if self._settled is not None:
            self._settled.set()
        if keep:
            log_kept(self._logger, action)
            return
        self._after_settle(action, replayed=not window.own)
