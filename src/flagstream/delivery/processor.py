"""``BatchEventProcessor``: the thread driver over :class:`~flagstream.delivery.core.BatchCore`.

The caller's thread only estimates an event's size and appends it to a
bounded deque under a lock (``process()`` does no serialization, no I/O and no
logging), or writes it to the spool. The workers that deliver the queue are in
:mod:`flagstream.delivery.workers`; this module is the public class: its
options, ``process()``, ``flush()``, ``close()`` and the exit hook.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from flagstream.delivery import lifecycle
from flagstream.delivery._driver import counts_diff
from flagstream.delivery.adapters import as_result_dispatcher
from flagstream.delivery.core import BatchCore
from flagstream.delivery.http import HttpDispatcher
from flagstream.delivery.protocols import DeadLetterHandler, EventDispatcher
from flagstream.delivery.result import DeliveryOutcome
from flagstream.delivery.retry import RetryPolicy
from flagstream.delivery.settings import BatchSettings
from flagstream.delivery.spool.options import SpoolOption, open_spool
from flagstream.delivery.spool.spool import EventSpool
from flagstream.delivery.stats import FlushReport, freeze_counts
from flagstream.delivery.workers import ThreadWorkers
from flagstream.events.user_event import UserEvent

__all__ = ["BatchEventProcessor"]


class BatchEventProcessor(ThreadWorkers):
    """Queues user events and delivers them in batches on background threads.

    Works with nothing configured: ``BatchEventProcessor()`` sends to each
    event's endpoint through an :class:`~flagstream.delivery.http.HttpDispatcher`.
    Any object with ``dispatch_event(log_event)`` may be passed instead (no
    exception = delivered; an exception = a retryable failure).

    >>> processor = BatchEventProcessor(batch_size=100, flush_interval=0.5)
    >>> processor.stats().queued_events
    0
    >>> processor.close(timeout=1.0).completed
    True

    Callbacks run on a worker thread; exceptions they raise are logged and ignored:
    ``on_log_event(log_event)`` before each request is sent (the LOG_EVENT
    notification), ``on_outcome(DeliveryOutcome)`` whenever events are delivered
    or dropped, ``dead_letter(user_event, DispatchResult)`` for each event the
    server refused on its own or that is too large to send.

    Overflow when a bound is reached: ``"drop_newest"`` (default; the new event
    is dropped), ``"drop_oldest"`` (the oldest queued events make room) or
    ``"block"`` (the caller waits up to ``block_timeout`` for room). Every drop
    is counted by reason in :meth:`stats`.

    ``spool`` (a directory, a dict of :class:`~flagstream.delivery.spool.EventSpool`
    options, or an ``EventSpool``; default: ``FLAGSTREAM_SPOOL_DIR`` if set)
    makes delivery durable: ``process()`` writes each event to disk before it
    returns, and workers deliver from there, including what a crashed or
    restarted process left behind (see ``docs/delivery.md``). Events left when
    ``close()`` runs out of time stay on disk for the next process.
    """

    def __init__(
        self,
        event_dispatcher: EventDispatcher | None = None,
        *,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_queue_events: int = 100_000,
        max_queue_bytes: int = 64 * 1024 * 1024,
        max_request_bytes: int | None = None,
        overflow: str = "drop_newest",
        block_timeout: float = 1.0,
        max_in_flight: int = 4,
        retry: RetryPolicy | None = None,
        logger: object | None = None,
        on_log_event: Callable[[Any], None] | None = None,
        on_outcome: Callable[[DeliveryOutcome], None] | None = None,
        dead_letter: DeadLetterHandler | None = None,
        close_timeout: float = 5.0,
        exit_budget: float = 5.0,
        timeout_interval: float | None = None,
        start_on_init: bool = True,
        spool: SpoolOption = None,
    ) -> None:
        settings = BatchSettings(
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_queue_events=max_queue_events,
            max_queue_bytes=max_queue_bytes,
            overflow=overflow,
            block_timeout=block_timeout,
            max_in_flight=max_in_flight,
            close_timeout=timeout_interval if timeout_interval is not None else close_timeout,
            exit_budget=exit_budget,
        )
        if max_request_bytes is not None:
            settings = settings.replace(max_request_bytes=max_request_bytes)
        self._init_common(settings, retry, logger, on_log_event, on_outcome, dead_letter)
        self._owns_dispatcher = event_dispatcher is None
        if event_dispatcher is None:
            # One kept-alive connection per request in flight: fewer would reconnect for the rest.
            event_dispatcher = HttpDispatcher(max_connections=settings.max_in_flight)
        self.event_dispatcher = event_dispatcher
        self._sender = as_result_dispatcher(event_dispatcher)
        self._closed = False
        self._spool: EventSpool | None = None
        self._init_state()
        # After _init_state: the spool's keeper may call _wake_one as soon as it is attached
        # (it adopted a dead process's files), and that needs self._wake.
        self._spool, self._owns_spool = open_spool(spool, logger)
        if self._spool is not None:
            self._intake.spool = self._spool
            self._spool.attach(settings.batch_size, self._wake_one)
        lifecycle.register(self)
        if start_on_init:
            self._ensure_workers()

    # -- the caller's thread -----------------------------------------------------------

    def process(self, user_event: UserEvent) -> None:
        """Queue ``user_event`` for delivery. Cheap, never blocks (unless overflow="block"), never raises."""
        self._intake.offer(user_event)

    def _refused(self, user_event: UserEvent, size: int) -> None:
        with self._lock:
            core = self._core
            if self._refuse_without_blocking(core, user_event, size):
                return
            # overflow="block": wait for room on the caller's thread, by the user's choice.
            deadline = time.monotonic() + self.settings.block_timeout
            self._blocked += 1
            try:
                while not core.has_room(size) and not core.closing and core is self._core:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._wake.notify()
                    self._space.wait(remaining)
            finally:
                self._blocked -= 1
            if core.closing:
                core.refuse("closed")
            elif core.has_room(size):
                core.force_append(user_event, size)
            else:
                core.refuse("block_timeout")

    def _wake_one(self) -> None:
        with self._lock:
            self._wake.notify()

    # -- flush, close, stats -----------------------------------------------------------

    def flush(self, timeout: float | None = None) -> FlushReport:
        """Send everything queued now; return by ``timeout`` seconds with what happened.

        ``pending`` in the report counts events queued before the call that were
        neither delivered nor dropped when it returned.
        """
        start = time.monotonic()
        deadline = start + (self.settings.close_timeout if timeout is None else max(0.0, timeout))
        if not self._closed:
            self._ensure_workers()
        with self._lock:
            core = self._core
            target = core.request_flush()
            spool_target = self._spool.request_flush() if self._spool is not None else 0
            delivered, dropped = core.delivered, dict(core.dropped)
            self._wake.notify_all()
        while True:
            with self._lock:
                while self._pending(core, target, spool_target) > 0 and (self._running or self._closed):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._settled.wait(min(remaining, 0.25))
                pending = self._pending(core, target, spool_target)
            if pending and not self._running and not self._closed and time.monotonic() < deadline:
                self._ensure_workers()  # a worker died while we waited: replace it, keep waiting
                continue
            break
        with self._lock:
            return FlushReport(
                delivered=core.delivered - delivered,
                pending=pending,
                dropped=freeze_counts(counts_diff(core.dropped, dropped)),
                elapsed=time.monotonic() - start,
                timed_out=pending > 0,
            )

    def _pending(self, core: BatchCore, target: int, spool_target: int) -> int:
        # Lock held. Own spooled events count until settled; a dead process's backlog does not.
        pending = core.pending_before(target)
        if self._spool is not None:
            pending += self._spool.pending_before(spool_target)
        return pending

    def close(self, timeout: float | None = None) -> FlushReport:
        """Deliver what is queued within ``timeout`` seconds, then stop the workers.

        Returns by the deadline even if the server never answers. Events still
        queued then are dropped (``shutdown``); ``pending`` counts those still in
        flight. With a spool, undelivered events stay on disk instead (``spooled``
        in the report) and the next process delivers them. Later ``process()``
        calls are counted as ``closed`` drops. Idempotent.
        """
        start = time.monotonic()
        budget = self.settings.close_timeout if timeout is None else max(0.0, timeout)
        with self._lock:
            if self._closed:
                return FlushReport()
            self._closed = True
            core = self._core
            core.closing = True
            self._close_deadline = start + budget
            delivered, dropped = core.delivered, dict(core.dropped)
            self._space.notify_all()
        self._closing.set()
        self.flush(budget - (time.monotonic() - start))
        with self._lock:
            core.discard_queue("shutdown")
            self._stop = True
            self._wake.notify_all()
            spooled = 0
            if self._spool is not None:
                spooled = self._spool.unsettled_own()
            report = FlushReport(
                delivered=core.delivered - delivered,
                pending=core.in_flight_events,
                dropped=freeze_counts(counts_diff(core.dropped, dropped)),
                elapsed=0.0,
                timed_out=core.in_flight_events > 0 or core.dropped.get("shutdown", 0) > 0 or spooled > 0,
                spooled=spooled,
            )
            unreported = core.take_unreported()
        self._stopping.set()
        if unreported:
            self._report_refusals(unreported)
        for thread in self._workers:
            if thread is not threading.current_thread():
                thread.join(max(0.0, start + budget - time.monotonic()))
        if self._spool is not None and self._owns_spool:
            self._spool.close()
        if self._owns_dispatcher:
            closer = getattr(self.event_dispatcher, "close", None)
            if callable(closer):
                closer()
        lifecycle.unregister(self)
        elapsed = time.monotonic() - start
        return FlushReport(
            report.delivered, report.pending, report.dropped, elapsed, report.timed_out, report.spooled
        )

    def stop(self) -> None:
        """optimizely-sdk's name for :meth:`close` with the default timeout."""
        self.close()

    @property
    def spool(self) -> EventSpool | None:
        """The durable spool this processor writes to, if any."""
        return self._spool

    @property
    def is_running(self) -> bool:
        """True while workers are alive and the processor is not closed."""
        return self._running and not self._closed

    def __enter__(self) -> BatchEventProcessor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- lifecycle hooks (see flagstream.delivery.lifecycle) ---------------------------

    def _drain_at_exit(self, started: float) -> None:
        if not self._closed and self._pid == os.getpid():
            self.close(max(0.0, started + self.settings.exit_budget - time.monotonic()))
