"""The thread driver's workers: its state, the worker loop, and delivering a window.

:class:`ThreadWorkers` is the half of
:class:`~flagstream.delivery.processor.BatchEventProcessor` that runs on its
``max_in_flight`` daemon threads. Each worker takes a due window of events
(from the in-memory queue, or from the spool's segments), carries out
:func:`~flagstream.delivery.plan.delivery_plan` (serialize, send, retry,
bisect, dead-letter) and records the outcome. The request body is written in
slices with the interpreter lock released between them, so the application's
threads never wait for a whole body. Waits between retries are on events that
``close()`` sets, so they end early when the processor closes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from flagstream.delivery._driver import DriverBase
from flagstream.delivery.core import BatchCore, Window
from flagstream.delivery.intake import Intake
from flagstream.delivery.plan import Plan, Send, Settle, Wait, delivery_plan
from flagstream.delivery.protocols import ResultDispatcher
from flagstream.delivery.result import DispatchResult
from flagstream.delivery.spool.spool import EventSpool, SpoolWindow
from flagstream.delivery.spooling import from_visitors, log_kept, settle_window
from flagstream.events.log_event import LogEvent
from flagstream.events.payload import build_log_event
from flagstream.events.user_event import UserEvent

__all__ = ["ThreadWorkers"]

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


class ThreadWorkers(DriverBase):
    """The worker threads of a ``BatchEventProcessor`` and the state they share with its callers.

    All of it is made again by :meth:`_init_state`, at construction and in a forked child.
    """

    _spool: EventSpool | None
    _sender: ResultDispatcher  # the user's dispatcher, adapted (delivery.adapters)
    _closed: bool

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

    def _reset_after_fork(self) -> None:
        # The child owns none of the parent's threads or queued events: start clean.
        closed = self._closed
        self._init_state()
        self._closed = closed
        if closed:
            self._core.closing = True
            self._stop = True

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

    def _workers_alive(self) -> int:
        return sum(1 for t in self._workers if t.is_alive())

    def _worker_restarts(self) -> int:
        return self._restarts
