"""What the thread and asyncio drivers share: settings, callbacks, bookkeeping, stats.

Everything here is non-blocking; the drivers add only how they wait (threads
and conditions, or tasks and asyncio events).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from flagstream._logging import get_logger
from flagstream.delivery.core import BatchCore, Window
from flagstream.delivery.plan import Send, Settle
from flagstream.delivery.protocols import DeadLetterHandler
from flagstream.delivery.result import DeliveryOutcome, DispatchResult
from flagstream.delivery.retry import RetryPolicy
from flagstream.delivery.settings import BatchSettings
from flagstream.delivery.spool.spool import SpoolStats
from flagstream.delivery.stats import DeliveryStats, FlushReport, freeze_counts

__all__ = ["DriverBase", "counts_diff"]


def counts_diff(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    """Per-reason increase from ``before`` to ``after``."""
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


class DriverBase:
    """Callbacks, logging and counters common to both drivers (the caller holds no lock)."""

    settings: BatchSettings
    _lock: threading.Lock
    _core: BatchCore

    def _init_common(
        self,
        settings: BatchSettings,
        retry: RetryPolicy | None,
        logger: object | None,
        on_log_event: Callable[[Any], None] | None,
        on_outcome: Callable[[DeliveryOutcome], None] | None,
        dead_letter: DeadLetterHandler | None,
    ) -> None:
        self.settings = settings
        self._retry = retry or RetryPolicy()
        self._logger = get_logger(logger)
        self._on_log_event = on_log_event
        self._on_outcome = on_outcome
        self._dead_letter = dead_letter
        self._rng = random.Random()

    def attach_listeners(
        self,
        on_log_event: Callable[[Any], None] | None,
        on_outcome: Callable[[DeliveryOutcome], None] | None = None,
    ) -> None:
        """Called by the client that uses this processor, so its LOG_EVENT and DELIVERY
        listeners see this processor's requests and outcomes; callbacks given to the
        constructor are kept."""
        if self._on_log_event is None:
            self._on_log_event = on_log_event
        if self._on_outcome is None:
            self._on_outcome = on_outcome

    def _refuse_without_blocking(self, core: BatchCore, event: Any, size: int) -> bool:
        """Apply drop_newest / drop_oldest under the lock; False when the caller must block."""
        reason = "internal_error" if size < 0 else core.refusal(size)
        if reason is not None:
            core.refuse(reason)
        elif self.settings.overflow == "drop_oldest":
            core.evict_for(size)
            core.force_append(event, size)
        elif self.settings.overflow == "block":
            return False
        else:
            core.refuse("queue_full")
        return True

    def _before_send(self, action: Send) -> None:
        if self._on_log_event is not None:
            try:
                self._on_log_event(action.log_event)
            except Exception as exc:
                self._logger.error("flagstream: LOG_EVENT listener raised %r", exc)

    def _record_attempt(self, core: BatchCore, action: Send, result: DispatchResult) -> None:
        with self._lock:
            core.record_attempt(retry=action.attempt > 1, ok=result.ok, error=result.error, now=time.time())

    def _spool_stats(self) -> SpoolStats | None:
        spool = getattr(self, "_spool", None)
        return spool.stats() if spool is not None else None

    def _record_settle(self, core: BatchCore, window: Window, action: Settle) -> bool:
        """Count a settlement under the lock; True when the whole window is done."""
        with self._lock:
            core.settle(window, action.events, delivered=action.delivered, reason=action.reason)
            return window.remaining <= 0

    def _after_settle(self, action: Settle, *, replayed: bool = False) -> None:
        if not action.delivered:
            error = action.result.error if action.result else None
            self._logger.error(
                "flagstream: dropped %d event(s) (%s): %s", action.events, action.reason, error
            )
        for event in action.dead:
            if self._dead_letter is not None and action.result is not None:
                try:
                    self._dead_letter(event, action.result)  # type: ignore[arg-type]
                except Exception as exc:
                    self._logger.error("flagstream: dead_letter callback raised %r", exc)
        self._notify(DeliveryOutcome(action.delivered, action.events, action.reason, action.result, replayed))

    def _report_refusals(self, drops: dict[str, int]) -> None:
        for reason, count in drops.items():
            self._logger.warning("flagstream: dropped %d event(s) before sending (%s)", count, reason)
            self._notify(DeliveryOutcome(False, count, reason))

    def _notify(self, outcome: DeliveryOutcome) -> None:
        if self._on_outcome is not None:
            try:
                self._on_outcome(outcome)
            except Exception as exc:
                self._logger.error("flagstream: on_outcome callback raised %r", exc)

    def _report(
        self, core: BatchCore, start: float, delivered: int, dropped: Mapping[str, int], pending: int
    ) -> FlushReport:
        return FlushReport(
            delivered=core.delivered - delivered,
            pending=pending,
            dropped=freeze_counts(counts_diff(core.dropped, dropped)),
            elapsed=time.monotonic() - start,
            timed_out=pending > 0 or (core.dropped.get("shutdown", 0) > dropped.get("shutdown", 0)),
        )

    def _workers_alive(self) -> int:
        return 0

    def _worker_restarts(self) -> int:
        return 0

    def stats(self) -> DeliveryStats:
        """A consistent snapshot of counters and queue state."""
        alive, restarts = self._workers_alive(), self._worker_restarts()
        spool = self._spool_stats()
        with self._lock:
            return self._core.snapshot(
                time.time(), workers_alive=alive, worker_restarts=restarts, spool=spool
            )

    def prometheus_text(self, prefix: str = "flagstream_delivery") -> str:
        """:meth:`stats` in the Prometheus text exposition format."""
        return self.stats().to_prometheus(prefix)
