"""uWSGI hooks: reset after uWSGI's fork, deliver and close as a worker ends.

In the module uWSGI loads (the one with your WSGI callable)::

    from flagstream.contrib import uwsgi as flagstream_uwsgi
    flagstream_uwsgi.install()

and set ``enable-threads = true`` (without it, uWSGI runs no Python threads
and no event is ever sent). :func:`install` registers, where the ``uwsgi``
module exists (inside uWSGI only):

* a ``uwsgidecorators.postfork`` function: uWSGI forks workers in C and runs
  Python's at-fork hooks only with ``py-call-osafterfork``; without it this
  runs flagstream's reset (fresh queues, delivery threads, datafile poller);
* ``uwsgi.atexit`` (chained after any function already there): closes every
  live client and processor within ``close_timeout`` seconds. uWSGI can end
  workers without running Python's ``atexit`` (reloads, ``skip-atexit``).

Outside uWSGI, :func:`install` does nothing and returns False.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from flagstream._logging import SDK_LOGGER
from flagstream.contrib._process import DEFAULT_CLOSE_TIMEOUT, close_live_processors, run_fork_hooks_if_missed

__all__ = ["install"]

_installed = False


def install(close_timeout: float = DEFAULT_CLOSE_TIMEOUT) -> bool:
    """Register the postfork and atexit hooks with uWSGI; False (and nothing done) outside uWSGI."""
    global _installed
    try:
        uwsgi: Any = importlib.import_module("uwsgi")
        decorators: Any = importlib.import_module("uwsgidecorators")
    except ImportError:
        return False
    if _installed:
        return True
    _installed = True
    decorators.postfork(_postfork)
    previous: Callable[[], object] | None = getattr(uwsgi, "atexit", None)

    def _atexit() -> None:
        reports = close_live_processors(close_timeout)
        SDK_LOGGER.info(
            "flagstream: uWSGI worker closed: %d events delivered, %d pending",
            sum(r.delivered for r in reports),
            sum(r.pending for r in reports),
        )
        if callable(previous):
            previous()

    uwsgi.atexit = _atexit
    return True


def _postfork() -> None:
    if run_fork_hooks_if_missed():
        SDK_LOGGER.debug("flagstream: ran the after-fork reset that uWSGI skipped")
