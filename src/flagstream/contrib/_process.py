"""One client per process, for the integrations: built on first use, closed at exit, safe across fork.

Web servers and task queues run the application in many processes, often
forked from one that imported it (gunicorn ``--preload``, uWSGI without
``lazy-apps``, Celery's prefork pool). :class:`ProcessClient` holds the client
of one process:

* it is built on the first :meth:`ProcessClient.get` (or eagerly by a
  framework hook), under a lock, so two threads never build two;
* in a forked child the inherited client keeps working: its processor and
  datafile poller reset themselves there (``flagstream.delivery.lifecycle``,
  ``flagstream.config.polling``), and our lock is replaced, because a parent
  thread may have held it at fork time;
* at interpreter exit it is closed within ``close_timeout``. This hook is
  registered after the delivery exit hook, so it runs first (``atexit`` is
  last in, first out) and also stops the datafile poller.

Framework-free, so every integration shares it; :func:`client_from_settings`
turns the settings every integration reads into a client.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flagstream._logging import get_logger
from flagstream.client import Optimizely
from flagstream.delivery import lifecycle
from flagstream.delivery.stats import FlushReport
from flagstream.errors import ConfigurationError

__all__ = ["ProcessClient", "client_from_settings", "close_live_processors", "run_fork_hooks_if_missed"]

DEFAULT_CLOSE_TIMEOUT = 3.0

ClientFactory = Callable[[], Optimizely]


def client_from_settings(
    datafile: str | bytes | os.PathLike[str] | None = None,
    sdk_key: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> Optimizely:
    """``Optimizely(datafile, sdk_key=..., **options)``; a path-like ``datafile`` is read from disk.

    Raises :class:`~flagstream.errors.ConfigurationError` when neither a
    datafile nor an SDK key is given, or the datafile file cannot be read.
    """
    if datafile is None and not sdk_key:
        raise ConfigurationError("flagstream needs a datafile, an SDK key, or both")
    if isinstance(datafile, os.PathLike):
        try:
            datafile = Path(datafile).read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the datafile {os.fspath(datafile)!r}: {exc}") from None
    if options is not None and not isinstance(options, Mapping):
        raise ConfigurationError(f"flagstream options must be a dict, not {type(options).__name__}")
    try:
        return Optimizely(datafile, sdk_key=sdk_key, **dict(options or {}))
    except TypeError as exc:  # an unknown or repeated keyword in options
        raise ConfigurationError(f"flagstream options: {exc}") from None


class ProcessClient:
    """The client of this process, built by ``factory`` on first use and closed at exit.

    >>> holder = ProcessClient(lambda: Optimizely(datafile))      # doctest: +SKIP
    >>> holder.get().create_user_context("user-1").decide("flag") # doctest: +SKIP
    >>> holder.close(timeout=2.0)                                 # doctest: +SKIP
    """

    def __init__(self, factory: ClientFactory, *, close_timeout: float = DEFAULT_CLOSE_TIMEOUT) -> None:
        if not callable(factory):
            raise ConfigurationError("the client factory must be callable")
        if not isinstance(close_timeout, (int, float)) or close_timeout < 0:
            raise ConfigurationError(f"close_timeout must be a number >= 0, not {close_timeout!r}")
        self._factory = factory
        self.close_timeout = float(close_timeout)
        self._lock = threading.Lock()
        self._client: Optimizely | None = None
        with _holders_lock:
            _holders.add(self)

    @property
    def built(self) -> bool:
        """True once this process has a client (built here, or inherited across fork)."""
        return self._client is not None

    def get(self) -> Optimizely:
        """This process's client, built now if it has none (or the last one was closed)."""
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is None:
                self._client = self._factory()
            return self._client

    def flush(self, timeout: float) -> FlushReport | None:
        """Deliver what is queued, within ``timeout`` seconds; ``None`` when no client was built."""
        client = self._client
        if client is None:
            return None
        report: FlushReport | None = client.flush(timeout)
        return report

    def close(self, timeout: float | None = None) -> FlushReport | None:
        """Flush and close the client within ``timeout`` (default ``close_timeout``). Idempotent.

        A later :meth:`get` builds a new client, so events after a close are
        still delivered rather than dropped as ``closed``.
        """
        with self._lock:
            client, self._client = self._client, None
        if client is None:
            return None
        report: FlushReport | None = client.close(self.close_timeout if timeout is None else timeout)
        return report

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()


def close_live_processors(timeout: float, logger: object | None = None) -> list[FlushReport]:
    """Close every client held by a :class:`ProcessClient`, then every other live processor.

    For server hooks that run as a worker ends (gunicorn's ``worker_exit``,
    uWSGI's ``atexit``): the app may have built its client itself, at import.
    The processors share one deadline, ``timeout`` seconds from now.
    """
    log = get_logger(logger)
    reports: list[FlushReport] = []
    deadline = time.monotonic() + max(0.0, timeout)
    for holder in _snapshot():
        try:
            report = holder.close(max(0.0, deadline - time.monotonic()))
        except Exception as exc:  # one broken client must not keep the others open
            log.error("flagstream: closing a client failed: %r", exc)
            continue
        if report is not None:
            reports.append(report)
    for processor in lifecycle._snapshot():
        close = getattr(processor, "close", None)
        if not callable(close):
            continue
        try:
            reports.append(close(max(0.0, deadline - time.monotonic())))
        except Exception as exc:
            log.error("flagstream: closing an event processor failed: %r", exc)
    return reports


_holders: weakref.WeakSet[ProcessClient] = weakref.WeakSet()
_holders_lock = threading.Lock()


def _snapshot() -> list[ProcessClient]:
    with _holders_lock:
        return list(_holders)


def _close_all_at_exit() -> None:
    # One clock for all, as the delivery exit hook does: several clients close within the
    # largest close_timeout, not the sum of them.
    started = time.monotonic()
    for holder in _snapshot():
        try:
            holder.close(max(0.0, started + holder.close_timeout - time.monotonic()))
        except Exception:  # noqa: S112 - one broken client must not keep the others open
            continue


def run_fork_hooks_if_missed() -> bool:
    """In a child forked by C code that skipped Python's at-fork hooks, run flagstream's now.

    uWSGI forks its workers without running ``os.register_at_fork`` hooks unless
    ``py-call-osafterfork`` (or ``py-call-uwsgi-fork-hooks``) is set; its
    ``postfork`` hook calls this. Returns True if the hooks had to be run here.
    """
    if _fork_hooks_ran_in == os.getpid():
        return False
    from flagstream.config import polling  # noqa: PLC0415 (only uWSGI needs it)
    from flagstream.delivery.spool import spool  # noqa: PLC0415
    from flagstream.events import ids  # noqa: PLC0415

    # Every os.register_at_fork(after_in_child=...) of flagstream, in import order. Without the
    # reseed, sibling workers draw the same event uuids and the Event API de-duplicates
    # one worker's events away.
    ids._reseed()
    polling._after_fork_in_child()
    spool._after_fork_in_child()  # durable spools start their own files (the parent's stay its own)
    lifecycle._after_fork_in_child()
    _after_fork_in_child()
    return True


_fork_hooks_ran_in = os.getpid()


def _after_fork_in_child() -> None:
    global _holders_lock, _fork_hooks_ran_in
    _fork_hooks_ran_in = os.getpid()
    _holders_lock = threading.Lock()
    for holder in list(_holders):
        holder._after_fork_in_child()


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
