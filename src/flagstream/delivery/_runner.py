"""Run a blocking call on a helper thread so the caller can stop waiting at a deadline.

urllib3 bounds connect and each socket read, but not DNS resolution
(``getaddrinfo`` has no timeout) nor a server that trickles bytes slower than
the read timeout. Running the request on a small pool of daemon threads and
waiting for it with a timeout gives every request one hard deadline; a call
abandoned at its deadline finishes (or times out) on its own thread, and its
result is thrown away.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["DeadlineRunner"]

T = TypeVar("T")


class _Job(Generic[T]):
    __slots__ = ("abandoned", "done", "error", "fn", "value")

    def __init__(self, fn: Callable[[], T]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None
        self.abandoned = False


class DeadlineRunner:
    """A lazily grown pool of at most ``max_threads`` daemon threads."""

    def __init__(self, name: str, max_threads: int) -> None:
        self._name = name
        self._max_threads = max(1, max_threads)
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._jobs: queue.SimpleQueue[_Job[object] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._queued = 0
        self._closed = False

    def run(self, fn: Callable[[], T], timeout: float) -> tuple[bool, T | None]:
        """``(True, fn())`` if ``fn`` returned within ``timeout`` seconds, else ``(False, None)``.

        An exception from ``fn`` is re-raised on the calling thread.
        """
        if self._pid != os.getpid():  # forked: the parent's threads do not exist here
            self._reset()
        job: _Job[T] = _Job(fn)
        with self._lock:
            if self._closed:
                return False, None
            self._queued += 1
            if self._idle < self._queued and self._threads < self._max_threads:
                self._threads += 1
                threading.Thread(target=self._loop, name=f"{self._name}-{self._threads}", daemon=True).start()
        self._jobs.put(job)  # type: ignore[arg-type]
        if not job.done.wait(max(0.0, timeout)):
            job.abandoned = True
            return False, None
        if job.error is not None:
            raise job.error
        return True, job.value

    def _loop(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            job = self._jobs.get()
            with self._lock:
                self._idle -= 1
                if job is None:
                    self._threads -= 1
                    return
                self._queued -= 1
            if job.abandoned:
                continue
            try:
                job.value = job.fn()
            except BaseException as exc:  # handed to the waiting caller
                job.error = exc
            job.done.set()

    def close(self) -> None:
        """Let idle threads exit; threads busy with abandoned calls exit when those end."""
        with self._lock:
            if self._closed or self._pid != os.getpid():
                return
            self._closed = True
            threads = self._threads
        for _ in range(threads):
            self._jobs.put(None)
