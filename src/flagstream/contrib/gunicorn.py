"""gunicorn server hooks, for apps that build their client at import (also with ``--preload``).

Use the module as the config, or import the hooks into yours::

    gunicorn -c python:flagstream.contrib.gunicorn --preload --workers 4 myapp.wsgi

    # gunicorn.conf.py
    from flagstream.contrib.gunicorn import post_fork, worker_exit

* ``post_fork``: each worker starts with the processors it inherited reset
  (empty queues, its own delivery threads, new connections; the fork hooks do
  the reset) and logs how many it inherited. Call it first if you have your
  own ``post_fork``.
* ``worker_exit``: closes every live client and processor of the worker within
  ``FLAGSTREAM_CLOSE_TIMEOUT`` seconds (environment variable, default 3), and
  logs what was delivered. Keep gunicorn's ``graceful_timeout`` above it.

The interpreter's exit hook would deliver the events anyway (gunicorn workers
end with ``sys.exit``); this hook does it while the worker's logging is still
up and puts the report in gunicorn's log.
"""

from __future__ import annotations

import os
from typing import Any

from flagstream.contrib._process import DEFAULT_CLOSE_TIMEOUT, close_live_processors
from flagstream.delivery import lifecycle

__all__ = ["close_timeout", "post_fork", "worker_exit"]


def close_timeout() -> float:
    """``FLAGSTREAM_CLOSE_TIMEOUT`` in seconds, or the default (3) when unset or not a number."""
    try:
        return max(0.0, float(os.environ.get("FLAGSTREAM_CLOSE_TIMEOUT", DEFAULT_CLOSE_TIMEOUT)))
    except ValueError:
        return DEFAULT_CLOSE_TIMEOUT


def post_fork(server: Any, worker: Any) -> None:
    """gunicorn's ``post_fork(server, worker)``: log the inherited processors (already reset)."""
    inherited = len(lifecycle._snapshot())
    server.log.info(
        "flagstream: worker %s starts with %d event processor(s), reset after fork", worker.pid, inherited
    )


def worker_exit(server: Any, worker: Any) -> None:
    """gunicorn's ``worker_exit(server, worker)``: deliver the worker's queued events, then close."""
    reports = close_live_processors(close_timeout(), server.log)
    delivered = sum(r.delivered for r in reports)
    pending = sum(r.pending for r in reports)
    dropped: dict[str, int] = {}
    for report in reports:
        for reason, count in report.dropped.items():
            dropped[reason] = dropped.get(reason, 0) + count
    server.log.info(
        "flagstream: worker %s closed: %d events delivered, %d pending, dropped %s",
        worker.pid,
        delivered,
        pending,
        dropped or "none",
    )
