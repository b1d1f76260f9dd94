"""Celery integration: a client in each worker process, flushed after tasks and closed as processes end.

    # tasks.py
    from flagstream.contrib.celery import Flagstream

    flags = Flagstream(datafile=Path("datafile.json"), flush_after_task=1.0)

    @app.task
    def checkout(user_id):
        user = flags.client.create_user_context(user_id)
        if user.decide("new_checkout").enabled: ...

Why signals: the prefork pool's child processes end with ``os._exit``, which
skips ``atexit``, so events still queued there would be lost. The signals:

* ``worker_process_init``: the child builds its client (a client the main
  process had built is inherited and already reset by the fork hooks);
* ``task_postrun`` (when ``flush_after_task`` is set): deliver the task's
  events within that many seconds before the next task;
* ``worker_process_shutdown``: flush and close within ``close_timeout``
  (this also runs for children recycled by ``--max-tasks-per-child``);
* ``worker_shutdown``: the same in the main process (``solo`` and
  ``threads`` pools run tasks there).

Anywhere else (a producer, a shell), ``flags.client`` builds a client on first
use, closed at interpreter exit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

try:
    from celery import signals
except ImportError as exc:  # pragma: no cover - exercised by the no-framework import test
    raise ImportError(
        f"flagstream.contrib.celery needs Celery: pip install 'flagstream[celery]' ({exc})"
    ) from exc

from flagstream._logging import SDK_LOGGER
from flagstream.client import Optimizely
from flagstream.contrib._process import DEFAULT_CLOSE_TIMEOUT, ProcessClient, client_from_settings
from flagstream.delivery.stats import FlushReport
from flagstream.errors import ConfigurationError

__all__ = ["Flagstream"]


class Flagstream:
    """Wires one flagstream client per Celery worker process to Celery's signals.

    Give either ``factory`` (a callable returning a client) or the settings
    (``datafile``: JSON text, bytes or a path; ``sdk_key``; ``options`` for
    ``Optimizely(...)``). ``flush_after_task`` is the deadline, in seconds, of
    a flush after every task (``None``: no flush). The signals are connected at
    construction; :meth:`disconnect` undoes it.
    """

    def __init__(
        self,
        factory: Callable[[], Optimizely] | None = None,
        *,
        datafile: str | bytes | os.PathLike[str] | None = None,
        sdk_key: str | None = None,
        options: Mapping[str, Any] | None = None,
        flush_after_task: float | None = None,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> None:
        if factory is None:
            if datafile is None and not sdk_key:
                raise ConfigurationError("Flagstream needs a factory, a datafile or an SDK key")

            def factory() -> Optimizely:
                return client_from_settings(datafile, sdk_key, options)

        elif datafile is not None or sdk_key is not None or options is not None:
            raise ConfigurationError("give either a factory or datafile/sdk_key/options, not both")
        if flush_after_task is not None and (
            isinstance(flush_after_task, bool)
            or not isinstance(flush_after_task, (int, float))
            or flush_after_task <= 0
        ):
            raise ConfigurationError(
                f"flush_after_task must be seconds > 0 or None, not {flush_after_task!r}"
            )
        self._holder = ProcessClient(factory, close_timeout=close_timeout)
        self.flush_after_task = flush_after_task
        self.last_report: FlushReport | None = None
        self.connect()

    @property
    def client(self) -> Optimizely:
        """This process's client (built now if it has none)."""
        return self._holder.get()

    def flush(self, timeout: float = 2.0) -> FlushReport | None:
        """Deliver this process's queued events within ``timeout`` seconds."""
        return self._holder.flush(timeout)

    def close(self, timeout: float | None = None) -> FlushReport | None:
        """Flush and close this process's client within ``timeout`` (default ``close_timeout``)."""
        report = self._holder.close(timeout)
        if report is not None:
            self.last_report = report
            SDK_LOGGER.info("flagstream: delivery at worker process exit (pid %d): %s", os.getpid(), report)
        return report

    def connect(self) -> None:
        """Connect the handlers to Celery's signals (done at construction; idempotent)."""
        uid = id(self)
        signals.worker_process_init.connect(self._on_process_init, weak=False, dispatch_uid=("fs-init", uid))
        signals.task_postrun.connect(self._on_task_postrun, weak=False, dispatch_uid=("fs-postrun", uid))
        signals.worker_process_shutdown.connect(self._on_shutdown, weak=False, dispatch_uid=("fs-pshut", uid))
        signals.worker_shutdown.connect(self._on_shutdown, weak=False, dispatch_uid=("fs-shut", uid))

    def disconnect(self) -> None:
        """Disconnect the handlers from Celery's signals."""
        uid = id(self)
        signals.worker_process_init.disconnect(dispatch_uid=("fs-init", uid))
        signals.task_postrun.disconnect(dispatch_uid=("fs-postrun", uid))
        signals.worker_process_shutdown.disconnect(dispatch_uid=("fs-pshut", uid))
        signals.worker_shutdown.disconnect(dispatch_uid=("fs-shut", uid))

    # -- signal handlers: never raise into Celery ------------------------------------

    def _on_process_init(self, **_: Any) -> None:
        try:
            self._holder.get()
        except Exception as exc:
            SDK_LOGGER.error(
                "flagstream: building the client in worker process %d failed: %r", os.getpid(), exc
            )

    def _on_task_postrun(self, **_: Any) -> None:
        if self.flush_after_task is None:
            return
        try:
            report = self._holder.flush(self.flush_after_task)
        except Exception as exc:
            SDK_LOGGER.error("flagstream: flushing after a task failed: %r", exc)
            return
        if report is not None and report.pending:
            SDK_LOGGER.warning(
                "flagstream: %d events still queued %.1fs after the task; they are sent in the background",
                report.pending,
                self.flush_after_task,
            )

    def _on_shutdown(self, **_: Any) -> None:
        try:
            self.close()
        except Exception as exc:
            SDK_LOGGER.error("flagstream: closing the client at worker exit failed: %r", exc)
