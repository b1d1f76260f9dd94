"""``AsyncBatchEventProcessor``: the asyncio driver over the same core and plan.

For asyncio applications: workers are tasks on the application's event loop,
requests go through :class:`~flagstream.delivery.aio_http.AsyncHttpDispatcher`
(or any ``asend`` dispatcher; a plain ``dispatch_event`` dispatcher runs in
the loop's default executor), and waits are asyncio waits that ``aclose()``
interrupts. ``process()`` stays a plain, cheap method so the (synchronous)
client can call it from the loop or from any thread.

There is no exit hook or fork hook here: an event loop cannot run at
interpreter exit. Call ``await processor.aclose()`` in the application's
shutdown (e.g. an ASGI lifespan handler). With a spool (``spool=``, as for
``BatchEventProcessor``) an accepted event is on disk when ``process()``
returns, so a process that exits without ``aclose()`` loses nothing: the next
one delivers it. Reading the spool and closing it run in the loop's default
executor; an acknowledgement is one small append on the loop, as ``process()`` is.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from flagstream.delivery._driver import DriverBase
from flagstream.delivery.adapters import as_result_dispatcher
from flagstream.delivery.aio_spool import AsyncSpoolWindows
from flagstream.delivery.core import ACCEPTED_WAKE, REFUSED, BatchCore, Window
from flagstream.delivery.plan import Plan, Send, Settle, Wait, delivery_plan
from flagstream.delivery.protocols import AsyncResultDispatcher, DeadLetterHandler
from flagstream.delivery.result import DeliveryOutcome, DispatchResult
from flagstream.delivery.retry import RetryPolicy
from flagstream.delivery.settings import BatchSettings
from flagstream.delivery.spool.options import SpoolOption, open_spool
from flagstream.delivery.spool.spool import ACCEPTED_WAKE as SPOOL_WAKE
from flagstream.delivery.spool.spool import FALLBACK, EventSpool
from flagstream.delivery.stats import FlushReport
from flagstream.errors import ConfigurationError
from flagstream.events.payload import estimated_size
from flagstream.events.user_event import UserEvent

__all__ = ["AsyncBatchEventProcessor"]

_NEVER = float("inf")


class AsyncBatchEventProcessor(DriverBase, AsyncSpoolWindows):
    """Batches user events and delivers them from tasks on the running event loop.

    Takes the same options as :class:`~flagstream.delivery.processor.BatchEventProcessor`
    except ``overflow="block"`` (blocking the loop would stall the application).
    Workers start on the first ``process()`` made while a loop runs, or on ``start()``.

    >>> async def main():
    ...     processor = AsyncBatchEventProcessor()
    ...     # client = flagstream.Optimizely(..., event_processor=processor)
    ...     report = await processor.aclose(timeout=2.0)
    """

    def __init__(
        self,
        event_dispatcher: Any = None,
        *,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_queue_events: int = 100_000,
        max_queue_bytes: int = 64 * 1024 * 1024,
        max_request_bytes: int | None = None,
        overflow: str = "drop_newest",
        max_in_flight: int = 4,
        retry: RetryPolicy | None = None,
        logger: object | None = None,
        on_log_event: Callable[[Any], None] | None = None,
        on_outcome: Callable[[DeliveryOutcome], None] | None = None,
        dead_letter: DeadLetterHandler | None = None,
        close_timeout: float = 5.0,
        spool: SpoolOption = None,
    ) -> None:
        if overflow == "block":
            raise ConfigurationError(
                'overflow="block" would block the event loop; use drop_newest or drop_oldest'
            )
        settings = BatchSettings(
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_queue_events=max_queue_events,
            max_queue_bytes=max_queue_bytes,
            overflow=overflow,
            max_in_flight=max_in_flight,
            close_timeout=close_timeout,
        )
        if max_request_bytes is not None:
            settings = settings.replace(max_request_bytes=max_request_bytes)
        self._init_common(settings, retry, logger, on_log_event, on_outcome, dead_letter)
        self._owns_dispatcher = event_dispatcher is None
        if event_dispatcher is None:
            from flagstream.delivery.aio_http import AsyncHttpDispatcher  # noqa: PLC0415 (optional extra)

            event_dispatcher = AsyncHttpDispatcher(max_connections=settings.max_in_flight)
        self.event_dispatcher = event_dispatcher
        self._async_sender = event_dispatcher if isinstance(event_dispatcher, AsyncResultDispatcher) else None
        self._sync_sender = None if self._async_sender is not None else as_result_dispatcher(event_dispatcher)
        self._lock = threading.Lock()
        self._core = BatchCore(settings)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._wake: asyncio.Event | None = None
        self._settled: asyncio.Event | None = None
        self._closing: asyncio.Event | None = None
        self._close_deadline = _NEVER
        self._closed = False
        self._stop = False
        self._restarts = 0
        # Last: a spool that cannot be opened raises ConfigurationError, and nothing else
        # of this processor has started yet.
        self._spool, self._owns_spool = open_spool(spool, logger)
        if self._spool is not None:
            self._spool.attach(settings.batch_size, self._signal)

    # -- the caller's side -------------------------------------------------------------

    def process(self, user_event: UserEvent) -> None:
        """Queue ``user_event``; cheap, never blocks, never raises. Safe from any thread."""
        spool = self._spool
        if spool is not None:
            written = spool.append(user_event)
            if written != FALLBACK:  # on disk (or dropped by the spool's cap, and counted)
                if self._loop is None:
                    self._start_if_in_loop()
                if written == SPOOL_WAKE:
                    self._signal()
                return
        try:
            size = estimated_size(user_event)
        except Exception:
            size = -1
        with self._lock:
            code = self._core.offer(user_event, size) if size >= 0 else REFUSED
            if code == REFUSED:
                self._refuse_without_blocking(self._core, user_event, size)
        if self._loop is None:
            self._start_if_in_loop()
        if code == ACCEPTED_WAKE:
            self._signal()
            if self._dead_tasks():
                self._restart_dead_tasks_soon()

    def _signal(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        if threading.get_ident() == self._loop_thread:
            wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to wake
                loop.call_soon_threadsafe(wake.set)

    def _start_if_in_loop(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self.start()

    def start(self) -> None:
        """Start the worker tasks on the running loop (called implicitly by ``process``)."""
        if self._loop is not None or self._stop:
            return
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()
        self._closing = asyncio.Event()
        self._tasks = [
            loop.create_task(self._work(), name=f"flagstream-delivery-{i}")
            for i in range(self.settings.max_in_flight)
        ]

    # -- workers -----------------------------------------------------------------------

    def _dead_tasks(self) -> bool:
        return not self._stop and any(task.done() for task in self._tasks)

    def _restart_dead_tasks_soon(self) -> None:
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._restart_dead_tasks()
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._restart_dead_tasks)

    def _restart_dead_tasks(self) -> None:
        if self._loop is None or self._stop:
            return
        for i, task in enumerate(self._tasks):
            if task.done():
                error = None if task.cancelled() else task.exception()
                self._logger.error("flagstream: delivery task died (%r); starting another", error)
                self._tasks[i] = self._loop.create_task(self._work(), name=task.get_name())
                self._restarts += 1

    def _worker_restarts(self) -> int:
        return self._restarts

    async def _work(self) -> None:
        assert self._wake is not None
        wake = self._wake
        core = self._core
        spool = self._spool
        flush_interval = self.settings.flush_interval
        while not self._stop:
            wake.clear()
            with self._lock:
                window = core.take(time.time())
                wait = core.wait_time(time.time())
                drops = core.take_unreported()
            if drops:
                self._report_refusals(drops)
            if window is not None:
                await self._guarded(
                    self._deliver(core, window), functools.partial(self._settle_rest, core, window)
                )
                continue
            if spool is not None:
                if spool.due(time.monotonic(), flush_interval, core.closing):
                    await self._deliver_spooled(core, spool)
                    continue
                wait = min(wait, spool.wait_time(time.monotonic(), flush_interval))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), wait)

    async def _guarded(self, delivery: Awaitable[None], settle_rest: Callable[[str], None]) -> None:
        """Run one window's delivery; whatever ends it, the rest of the window is settled."""
        try:
            await delivery
        except asyncio.CancelledError:
            settle_rest("shutdown")
            raise
        except Exception as exc:
            self._logger.error("flagstream: unexpected error delivering events: %r", exc)
            settle_rest("internal_error")
        except BaseException:
            # The task dies (a dispatcher raised SystemExit or similar); its window is
            # settled so flushes do not wait for it, and the next process() or aflush()
            # starts a replacement.
            settle_rest("internal_error")
            raise

    def _plan(self, events: Sequence[Any], build: Callable[[Sequence[Any]], Any] | None = None) -> Plan:
        settings = self.settings
        return delivery_plan(
            events, self._retry, settings.max_request_bytes, time.monotonic, self._rng, build
        )

    def _settle_rest(self, core: BatchCore, window: Window, reason: str) -> None:
        self._settle(core, window, Settle(window.remaining, False, reason))

    async def _deliver(self, core: BatchCore, window: Window) -> None:
        await self._carry_out(
            core, self._plan(window.events), lambda action: self._settle(core, window, action)
        )

    async def _carry_out(self, core: BatchCore, plan: Plan, settle: Callable[[Settle], None]) -> None:
        reply: DispatchResult | str | None = None
        while True:
            try:
                action = plan.send(reply)
            except StopIteration:
                return
            if isinstance(action, Send):
                reply = await self._send(core, action)
            elif isinstance(action, Wait):
                reply = await self._backoff(action)
            else:
                settle(action)
                reply = None

    async def _send(self, core: BatchCore, action: Send) -> DispatchResult:
        self._before_send(action)
        deadline = min(action.deadline, self._close_deadline)
        if self._async_sender is not None:
            result = await self._async_sender.asend(action.log_event, deadline)
        else:
            assert self._sync_sender is not None
            assert self._loop is not None
            result = await self._loop.run_in_executor(
                None, self._sync_sender.send, action.log_event, deadline
            )
        self._record_attempt(core, action, result)
        return result

    async def _backoff(self, action: Wait) -> str | None:
        assert self._closing is not None
        end = time.monotonic() + action.delay
        if end > action.deadline:
            return "retry_exhausted"
        if not self._closing.is_set():
            try:
                await asyncio.wait_for(self._closing.wait(), action.delay)
            except asyncio.TimeoutError:
                return None
        if end > self._close_deadline:
            return "shutdown"
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        return None

    def _settle(self, core: BatchCore, window: Window, action: Settle) -> None:
        if self._record_settle(core, window, action) and self._settled is not None:
            self._settled.set()
        self._after_settle(action)

    def _workers_alive(self) -> int:
        return sum(1 for t in self._tasks if not t.done())

    # -- flush and close ---------------------------------------------------------------

    async def aflush(self, timeout: float | None = None) -> FlushReport:
        """Send everything queued now; return by ``timeout`` seconds with what happened."""
        start = time.monotonic()
        deadline = start + (self.settings.close_timeout if timeout is None else max(0.0, timeout))
        self.start()
        assert self._settled is not None
        assert self._wake is not None
        if not self._closed:
            self._restart_dead_tasks()
        core = self._core
        spool = self._spool
        with self._lock:
            target = core.request_flush()
            spool_target = spool.request_flush() if spool is not None else 0
            delivered, dropped = core.delivered, dict(core.dropped)
        self._wake.set()
        while True:
            self._settled.clear()
            with self._lock:
                # Own spooled events count until settled; a dead process's backlog does not.
                pending = core.pending_before(target)
                if spool is not None:
                    pending += spool.pending_before(spool_target)
            remaining = deadline - time.monotonic()
            if not pending or remaining <= 0:
                break
            if not self._closed and self._dead_tasks():
                self._restart_dead_tasks()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._settled.wait(), min(remaining, 0.25))
        with self._lock:
            return self._report(core, start, delivered, dropped, pending)

    async def aclose(self, timeout: float | None = None) -> FlushReport:
        """Deliver what is queued within ``timeout`` seconds, then stop the tasks. Idempotent."""
        start = time.monotonic()
        budget = self.settings.close_timeout if timeout is None else max(0.0, timeout)
        if self._closed:
            return FlushReport()
        self._closed = True
        self.start()
        assert self._closing is not None
        assert self._wake is not None
        core = self._core
        with self._lock:
            core.closing = True
            self._close_deadline = start + budget
            delivered, dropped = core.delivered, dict(core.dropped)
        self._closing.set()
        await self.aflush(budget)
        with self._lock:
            core.discard_queue("shutdown")
            self._stop = True
            drops = core.take_unreported()
        if drops:
            self._report_refusals(drops)
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        spool = self._spool
        spooled = spool.unsettled_own() if spool is not None else 0  # on disk for the next process
        if spool is not None and self._owns_spool:
            await asyncio.get_running_loop().run_in_executor(None, spool.close)
        if self._owns_dispatcher:
            closer = getattr(self.event_dispatcher, "aclose", None)
            if closer is not None:
                await closer()
        with self._lock:
            report = self._report(core, start, delivered, dropped, core.in_flight_events)
        if not spooled:
            return report
        return dataclasses.replace(report, timed_out=True, spooled=spooled)

    async def __aenter__(self) -> AsyncBatchEventProcessor:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def spool(self) -> EventSpool | None:
        """The durable spool this processor writes to, if any."""
        return self._spool

    def stop(self) -> None:
        """Synchronous callers (the client's ``close``) cannot await: schedule ``aclose``."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            loop.create_task(self.aclose())
        else:
            asyncio.run_coroutine_threadsafe(self.aclose(), loop)
