"""``BatchEventProcessor``: the thread driver over :class:`~flagstream.delivery.core.BatchCore`.

The caller's thread only estimates an event's size and appends it to a
bounded deque under a lock (``process()`` does no serialization, no I/O and no
logging). ``max_in_flight`` daemon workers take windows of events, carry out
:func:`~flagstream.delivery.plan.delivery_plan` (serialize, send, retry,
bisect, dead-letter) and record the outcome. Waits between retries are on
events that ``close()`` sets, so they end early when the processor closes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from flagstream.delivery import lifecycle
from flagstream.delivery._driver import DriverBase, counts_diff
from flagstream.delivery.adapters import as_result_dispatcher
from flagstream.delivery.core import BatchCore, Window
from flagstream.delivery.http import HttpDispatcher
from flagstream.delivery.intake import Intake
from flagstream.delivery.plan import Plan, Send, Settle, Wait, delivery_plan
from flagstream.delivery.protocols import DeadLetterHandler, EventDispatcher
from flagstream.delivery.result import DeliveryOutcome, DispatchResult
from flagstream.delivery.retry import RetryPolicy
from flagstream.delivery.settings import BatchSettings
from flagstream.delivery.spool.options import SpoolOption, open_spool
from flagstream.delivery.spool.spool import EventSpool, SpoolWindow
from flagstream.delivery.spooling import from_visitors, log_kept, settle_window
from flagstream.delivery.stats import FlushReport, freeze_counts
from flagstream.events.log_event import LogEvent
from flagstream.events.payload import build_log_event
from flagstream.events.user_event import UserEvent

__all__ = ["BatchEventProcessor"]

_NEVER = float("inf")
# Any sleep above zero lasts the kernel's timer slack (about 50 µs): long enough for a thread
# woken by the released lock to take it. sleep(0) returns first and the worker, already
# running, usually takes the lock back, so the waiting thread waits out the switch interval.
_HANDOFF = 1e-6
# A yield that returns this late means another thread took the lock (a busy one keeps it
# until the switch interval). One that returns at once means nobody wanted it: the next
# _IDLE_SLICES slices are written without yielding, so an idle application does not slow
# delivery down, and one that starts meanwhile waits for at most that many slices.
_CONTENDED = 0.001
_IDLE_SLICES = 2


class BatchEventProcessor(DriverBase):
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

    def _init_state(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # workers wait here for a due window
        self._settled = threading.Condition(self._lock)  # flush() waits here
        self._space = threading.Condition(self._lock)  # overflow="block" callers wait here
        self._blocked = 0
        self._core = BatchCore(self.settings)
        # process() itself (compiled in the mypyc build), on this state.
        self._intake = Intake(self, self._lock, self._wake, self._core, self._spool)
        self._closing = threading.Event()
        self._stopping = threading.Event()
        self._close_deadline = _NEVER
        self._stop = False
        self._workers: list[threading.Thread] = []
        self._running = False
        self._restarts = 0
        self._build_lock = threading.Lock()
        self._idle_slices = 0

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

    # -- workers -----------------------------------------------------------------------

    def _ensure_workers(self) -> None:
        if self._pid != os.getpid():  # an at-fork hook did not run (should not happen)
            self._reset_after_fork()
        with self._lock:
            if self._stop:
                return
            alive = [t for t in self._workers if t.is_alive()]
            restarted = len(self._workers) - len(alive)
            while len(alive) < self.settings.max_in_flight:
                thread = threading.Thread(
                    target=self._work, name=f"flagstream-delivery-{len(alive)}", daemon=True
                )
                thread.start()
                alive.append(thread)
            self._restarts += max(0, restarted)
            self._workers = alive
            self._running = True

    def _work(self) -> None:
        window: Window | None = None
        try:
            while True:
                with self._lock:
                    if self._stop:
                        return
                    core = self._core
                    window = core.take(time.time())
                    if window is None and not core.unreported and not self._spool_due():
                        self._wake.wait(self._wait_time(core))
                        if self._stop:
                            return
                        window = core.take(time.time())
                    if window is not None and self._blocked:
                        self._space.notify_all()
                    drops = core.take_unreported()
                if drops:
                    self._report_refusals(drops)
                if window is not None:
                    self._deliver(core, window)
                    window = None
                elif self._spool is not None:
                    self._deliver_spooled(core)
        except BaseException as exc:  # the worker dies; process() or flush() starts another
            self._logger.error("flagstream: delivery worker died: %r", exc)
            if window is not None:
                with self._lock:
                    core.settle(window, window.remaining, delivered=False, reason="internal_error")
                    self._settled.notify_all()
            self._running = False

    def _deliver(self, core: BatchCore, window: Window) -> None:
        plan = self._plan(window.events, self._build)
        self._carry_out(core, plan, lambda action: self._settle(core, window, action), window.remaining)

    def _plan(self, events: Sequence[Any], build: Callable[[Sequence[Any]], LogEvent]) -> Plan:
        return delivery_plan(
            events, self._retry, self.settings.max_request_bytes, time.monotonic, self._rng, build=build
        )

    def _build(self, events: Sequence[UserEvent]) -> LogEvent:
        # One worker writes a body at a time: workers that took the lock back from each
        # other between slices would keep it away from the application's threads (a
        # forced switch hands it to any waiting thread, not necessarily the caller).
        with self._build_lock:
            return build_log_event(events, self._yield_to_callers)

    def _yield_to_callers(self) -> None:
        # A thread waiting for the interpreter lock gets it only when the holder blocks or
        # after sys.getswitchinterval() (5 ms): a worker writing a 500-event body in one go
        # stalls the application's threads for milliseconds. Releasing the lock between
        # slices lets a waiting thread in. It costs the worker its turn (it waits up to the
        # switch interval to get the lock back from a busy thread), so once the queue is
        # half full, not losing events comes first and the worker stops yielding.
        # Closing (or the exit drain) is a deadline of its own: deliver at full speed.
        # Called under _build_lock, so _idle_slices has one writer at a time.
        if self._idle_slices:
            self._idle_slices -= 1
            return
        core = self._core  # read without the lock: a stale length only shifts the switch-over
        if (
            len(core.queue) < core.max_events >> 1
            and core.queued_bytes < core.max_bytes >> 1
            and not core.closing
        ):
            start = time.monotonic()
            time.sleep(_HANDOFF)
            if time.monotonic() - start < _CONTENDED:
                self._idle_slices = _IDLE_SLICES

    def _carry_out(
        self,
        core: BatchCore,
        plan: Plan,
        settle: Callable[[Settle], None],
        remaining: Callable[[], int] | int,
    ) -> None:
        reply: DispatchResult | str | None = None
        try:
            while True:
                action = plan.send(reply)
                if isinstance(action, Send):
                    reply = self._send(core, action)
                elif isinstance(action, Wait):
                    reply = self._backoff(action)
                else:
                    settle(action)
                    reply = None
        except StopIteration:
            pass
        except Exception as exc:
            self._logger.error("flagstream: unexpected error delivering events: %r", exc)
            left = remaining() if callable(remaining) else remaining
            settle(Settle(left, False, "internal_error"))

    # -- the spool's windows -------------------------------------------------------------

    def _spool_due(self) -> bool:
        spool = self._spool
        return spool is not None and spool.due(
            time.monotonic(), self.settings.flush_interval, self._core.closing
        )

    def _wait_time(self, core: BatchCore) -> float:
        wait = core.wait_time(time.time())
        if self._spool is not None:
            wait = min(wait, self._spool.wait_time(time.monotonic(), self.settings.flush_interval))
        return wait

    def _deliver_spooled(self, core: BatchCore) -> None:
        spool = self._spool
        assert spool is not None
        window = spool.take(
            self.settings.batch_size,
            self.settings.max_request_bytes,
            time.monotonic(),
            self.settings.flush_interval,
            core.closing,
        )
        if window is not None:
            plan = self._plan(window.events, from_visitors)
            self._carry_out(
                core,
                plan,
                lambda action: self._settle_spooled(core, window, action),
                lambda: window.remaining,
            )
        drops = spool.take_dropped()  # counted by the spool itself (stats() adds them up)
        if drops:
            self._report_refusals(drops)

    def _settle_spooled(self, core: BatchCore, window: SpoolWindow, action: Settle) -> None:
        assert self._spool is not None
        with self._lock:
            keep = settle_window(self._spool, core, window, action)
            self._settled.notify_all()
        if keep:
            log_kept(self._logger, action)
            return
        self._after_settle(action, replayed=not window.own)

    def _send(self, core: BatchCore, action: Send) -> DispatchResult:
        self._before_send(action)
        result = self._sender.send(action.log_event, min(action.deadline, self._close_deadline))
        self._record_attempt(core, action, result)
        return result

    def _backoff(self, action: Wait) -> str | None:
        end = time.monotonic() + action.delay
        if end > action.deadline:
            return "retry_exhausted"
        if not self._closing.is_set() and not self._closing.wait(action.delay):
            return None
        # close() began: the wait must also end by close's deadline.
        if end > self._close_deadline:
            return "shutdown"
        if self._stopping.wait(max(0.0, end - time.monotonic())):
            return "shutdown"
        return None

    def _settle(self, core: BatchCore, window: Window, action: Settle) -> None:
        if self._record_settle(core, window, action):
            with self._lock:
                self._settled.notify_all()
        self._after_settle(action)

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

    def _workers_alive(self) -> int:
        return sum(1 for t in self._workers if t.is_alive())

    def _worker_restarts(self) -> int:
        return self._restarts

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

    def _reset_after_fork(self) -> None:
        # The child owns none of the parent's threads or queued events: start clean.
        closed = self._closed
        self._init_state()
        self._closed = closed
        if closed:
            self._core.closing = True
            self._stop = True
