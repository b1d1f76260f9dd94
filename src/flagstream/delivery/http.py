"""``HttpDispatcher``: Event API requests over a pooled, keep-alive urllib3 connection pool.

* TLS certificates are verified (``CERT_REQUIRED``); ``ca_certs`` adds a bundle.
* ``proxy_url`` sends everything through an HTTP(S) proxy (CONNECT for https).
* Every request has a connect timeout, a read timeout, and one overall
  ``timeout`` that also bounds DNS resolution and slow-dripping servers: the
  request runs on a helper thread and the caller stops waiting at the deadline.
* ``gzip=True`` compresses bodies (``Content-Encoding: gzip``); off by default
  because the Event API does not document it.

``send(log_event, deadline)`` makes one attempt and returns a
:class:`~flagstream.delivery.result.DispatchResult`; the batch processor uses
it. ``dispatch_event(log_event)`` is the optimizely-sdk duck type: it retries
under ``retry`` and returns ``None``, so the dispatcher also works inside
optimizely-sdk (``Optimizely(event_dispatcher=HttpDispatcher())``).
"""

from __future__ import annotations

import gzip as _gzip
import os
import threading
import time
from typing import Any

import urllib3

from flagstream._logging import get_logger
from flagstream._version import __version__
from flagstream.delivery._runner import DeadlineRunner
from flagstream.delivery.result import DispatchResult
from flagstream.delivery.retry import RetryPolicy, parse_retry_after
from flagstream.errors import ConfigurationError
from flagstream.events.log_event import body_of

__all__ = ["USER_AGENT", "HttpDispatcher"]

USER_AGENT = f"flagstream/{__version__}"


def _describe(exc: BaseException) -> str:
    # urllib3 wraps the interesting cause (refused, reset, timed out) in reason.
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        return f"{type(exc).__name__}: {type(reason).__name__}: {reason}"
    return f"{type(exc).__name__}: {exc}"


class HttpDispatcher:
    """Sends Event API requests with keep-alive, TLS verification, timeouts and retries.

    >>> dispatcher = HttpDispatcher(timeout=5.0)
    >>> dispatcher.close()

    Options:
        timeout: overall seconds per attempt (DNS, connect, send, response).
        connect_timeout / read_timeout: urllib3's per-phase timeouts, capped by ``timeout``.
        proxy_url: e.g. ``"http://proxy.internal:3128"``.
        gzip: compress request bodies.
        retry: the policy ``dispatch_event`` retries under (the processor uses its own).
        max_connections: connections kept alive per host (and concurrent attempts).
        ca_certs: a CA bundle path to trust in addition to the system store.
        headers: extra headers for every request (the payload is never touched).
        endpoint: send every request to this URL instead of ``log_event.url`` (e.g. a local
            collector or an internal relay); where the bytes go changes, never the bytes.
        logger: where failures are logged (the SDK logger by default).
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        proxy_url: str | None = None,
        gzip: bool = False,
        retry: RetryPolicy | None = None,
        max_connections: int = 4,
        ca_certs: str | None = None,
        headers: dict[str, str] | None = None,
        endpoint: str | None = None,
        logger: object | None = None,
    ) -> None:
        for name, value in (
            ("timeout", timeout),
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
        ):
            if not value > 0:
                raise ConfigurationError(f"{name} must be > 0, got {value!r}")
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            raise ConfigurationError(f"endpoint must be an http(s) URL, got {endpoint!r}")
        if max_connections < 1:
            raise ConfigurationError("max_connections must be >= 1")
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.read_timeout = float(read_timeout)
        self.proxy_url = proxy_url
        self.gzip = gzip
        self.retry = retry or RetryPolicy(max_attempts=5, deadline=30.0)
        self.max_connections = max_connections
        self.ca_certs = ca_certs
        self.endpoint = endpoint
        self._extra_headers = dict(headers or {})
        self._logger = get_logger(logger)
        self._closed = threading.Event()
        self._pid = os.getpid()
        self._pool = self._new_pool()
        # Abandoned (hung) attempts keep their thread until urllib3's own timeouts fire,
        # so allow some headroom above the connection count.
        self._runner = DeadlineRunner("flagstream-http", max_connections * 2)

    def _new_pool(self) -> urllib3.PoolManager:
        options: dict[str, Any] = {
            "num_pools": 8,
            "maxsize": self.max_connections,
            "block": False,
            "retries": False,
            "cert_reqs": "CERT_REQUIRED",
        }
        if self.ca_certs:
            options["ca_certs"] = self.ca_certs
        if self.proxy_url:
            return urllib3.ProxyManager(self.proxy_url, **options)
        return urllib3.PoolManager(**options)

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            # Sockets inherited from the parent must not be shared: start a fresh pool.
            self._pid = os.getpid()
            old, self._pool = self._pool, self._new_pool()
            old.clear()

    def _headers(self, log_event: Any) -> dict[str, str]:
        headers = dict(getattr(log_event, "headers", None) or {"Content-Type": "application/json"})
        headers.update(self._extra_headers)
        headers["User-Agent"] = USER_AGENT
        if self.gzip:
            headers["Content-Encoding"] = "gzip"
        return headers

    def _attempt(self, log_event: Any, connect: float, read: float) -> DispatchResult:
        start = time.monotonic()
        verb = str(getattr(log_event, "http_verb", "POST")).upper()
        url = self.endpoint or log_event.url
        try:
            if verb == "GET":
                response = self._pool.request(
                    "GET",
                    url,
                    fields={k: str(v) for k, v in dict(log_event.params).items()},
                    headers={"User-Agent": USER_AGENT, **self._extra_headers},
                    timeout=urllib3.Timeout(connect=connect, read=read),
                    retries=False,
                    redirect=False,
                )
            else:
                body = body_of(log_event)
                if self.gzip:
                    body = _gzip.compress(body, 6)
                response = self._pool.request(
                    verb,
                    url,
                    body=body,
                    headers=self._headers(log_event),
                    timeout=urllib3.Timeout(connect=connect, read=read),
                    retries=False,
                    redirect=False,
                )
        except Exception as exc:  # urllib3 and socket errors alike become a result
            return DispatchResult.failure(_describe(exc), elapsed=time.monotonic() - start)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return DispatchResult.from_status(
            response.status, elapsed=time.monotonic() - start, retry_after=retry_after
        )

    def send(self, log_event: Any, deadline: float | None = None) -> DispatchResult:
        """One attempt, returning by ``deadline`` (a ``time.monotonic()`` value) at the latest.

        The attempt's own budget is ``timeout`` seconds, cut short by ``deadline``.
        Never raises.
        """
        start = time.monotonic()
        budget = self.timeout if deadline is None else min(self.timeout, deadline - start)
        if budget <= 0:
            return DispatchResult.failure("deadline exceeded before sending")
        if self._closed.is_set():
            return DispatchResult.failure("dispatcher is closed")
        self._check_fork()
        connect = min(self.connect_timeout, budget)
        read = min(self.read_timeout, budget)
        try:
            done, result = self._runner.run(lambda: self._attempt(log_event, connect, read), budget)
        except Exception as exc:  # pragma: no cover - _attempt catches everything
            return DispatchResult.failure(_describe(exc), elapsed=time.monotonic() - start)
        if not done or result is None:
            return DispatchResult.failure(
                f"deadline exceeded after {budget:.3g}s (no response)", elapsed=time.monotonic() - start
            )
        return result

    def dispatch_event(self, log_event: Any) -> None:
        """Send ``log_event``, retrying under ``retry``; never raises (failures are logged).

        Blocks the calling thread for at most ``retry.deadline`` seconds; ``close()``
        interrupts the waits between attempts.
        """
        policy = self.retry.reset()
        start = time.monotonic()
        deadline = start + policy.deadline
        while True:
            result = self.send(log_event, deadline)
            policy = policy.increment(result)
            if result.ok:
                return
            if policy.is_exhausted():
                break
            delay = policy.get_backoff()
            if time.monotonic() + delay >= deadline or self._closed.wait(delay):
                break
        self._logger.error(
            "flagstream: event request to %s failed after %d attempt(s): %s",
            self.endpoint or getattr(log_event, "url", "?"),
            policy.attempts,
            result.error,
        )

    def close(self) -> None:
        """Interrupt retry waits and close pooled connections. Idempotent."""
        self._closed.set()
        self._runner.close()
        if self._pid == os.getpid():
            self._pool.clear()

    def __enter__(self) -> HttpDispatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        proxy = f", proxy_url={self.proxy_url!r}" if self.proxy_url else ""
        return f"HttpDispatcher(timeout={self.timeout}{proxy}, gzip={self.gzip})"
