"""``flushing``: deliver what a short-lived unit of work queued, within a deadline.

Serverless handlers, Celery tasks and scripts often end (or freeze) right
after their work; events still queued then may never leave. Wrap the work:

    with flushing(client, timeout=2.0) as done:
        client.track("purchase", user_id)
    done.report  # FlushReport, or None if the target cannot report

    @flushing(client, timeout=2.0)
    def handler(event, context): ...

The target is anything with ``flush(timeout)`` (flagstream's client or
processors), or an object whose ``event_processor`` has one (optimizely-sdk's
client with flagstream's processor). Flushing never raises into the caller and
never waits longer than ``timeout``.
"""

from __future__ import annotations

import contextlib
from typing import Any

from flagstream._logging import get_logger

__all__ = ["Flushing", "flushing"]


def _flush_of(target: object) -> Any:
    flush = getattr(target, "flush", None)
    if callable(flush):
        return flush
    processor = getattr(target, "event_processor", None)
    flush = getattr(processor, "flush", None)
    return flush if callable(flush) else None


class Flushing(contextlib.ContextDecorator):
    """Context manager and decorator returned by :func:`flushing`."""

    def __init__(self, target: object, timeout: float = 2.0, logger: object | None = None) -> None:
        self.target = target
        self.timeout = timeout
        self.report: Any = None
        self._logger = get_logger(logger)

    def __enter__(self) -> Flushing:
        return self

    def __exit__(self, *exc_info: object) -> None:
        flush = _flush_of(self.target)
        if flush is None:
            self._logger.warning("flagstream: %r has no flush(timeout); nothing flushed", self.target)
            return
        try:
            self.report = flush(self.timeout)
        except Exception as exc:
            self._logger.error("flagstream: flush failed: %r", exc)


def flushing(target: object, timeout: float = 2.0, *, logger: object | None = None) -> Flushing:
    """Flush ``target`` (within ``timeout`` seconds) when the block or decorated call ends."""
    return Flushing(target, timeout, logger)
