"""Process lifecycle hooks shared by every live processor: interpreter exit and fork.

* At exit (``atexit``), each processor that was not closed drains within its
  exit budget (counted from the hook's start, so several processors share the
  time), so a script that never calls ``close()`` still delivers. atexit
  runs after non-daemon threads are joined but while our daemon workers still
  run, so they can finish the work.
* After ``os.fork()`` the child inherits the parent's memory but none of its
  threads: each processor resets itself in the child (fresh lock, empty queue,
  its own workers), so the parent's queued events are sent by the parent only.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from typing import Protocol

__all__ = ["Lifecycle", "register", "unregister"]


class Lifecycle(Protocol):
    """What the hooks call on a registered processor."""

    def _drain_at_exit(self, started: float) -> None: ...

    def _reset_after_fork(self) -> None: ...


_live: weakref.WeakSet[Lifecycle] = weakref.WeakSet()
_registry_lock = threading.Lock()


def register(processor: Lifecycle) -> None:
    """Drain ``processor`` at exit and reset it in forked children until :func:`unregister`."""
    with _registry_lock:
        _live.add(processor)


def unregister(processor: Lifecycle) -> None:
    """Forget ``processor`` (it was closed)."""
    with _registry_lock:
        _live.discard(processor)


def _snapshot() -> list[Lifecycle]:
    with _registry_lock:
        return list(_live)


def _drain_all_at_exit() -> None:
    # One clock for all: each processor gets its exit budget counted from the hook's start, so
    # several processors drain within the largest budget, not the sum of them.
    started = time.monotonic()
    for processor in _snapshot():
        try:
            processor._drain_at_exit(started)
        except Exception:  # noqa: S112 - one broken processor must not stop the others
            continue


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()  # a parent thread may have held it at fork time
    for processor in list(_live):
        processor._reset_after_fork()


atexit.register(_drain_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
