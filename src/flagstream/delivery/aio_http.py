"""``AsyncHttpDispatcher``: the asyncio twin of :class:`~flagstream.delivery.http.HttpDispatcher` (aiohttp).

Same options and the same guarantees: keep-alive, TLS verification, proxy,
SDK User-Agent, optional gzip, and one overall deadline per attempt (aiohttp's
``total`` timeout covers DNS, connect and the response; ``asyncio.timeout``
makes it hard). Requires the ``aio`` extra (``pip install flagstream[aio]``).
"""

from __future__ import annotations

import asyncio
import gzip as _gzip
import ssl
import time
from typing import Any

from flagstream.delivery.http import USER_AGENT
from flagstream.delivery.result import DispatchResult
from flagstream.delivery.retry import RetryPolicy, parse_retry_after
from flagstream.errors import ConfigurationError
from flagstream.events.log_event import body_of

__all__ = ["AsyncHttpDispatcher"]


class AsyncHttpDispatcher:
    """Sends Event API requests from an asyncio event loop.

    ``asend(log_event, deadline)`` makes one attempt and returns a
    :class:`~flagstream.delivery.result.DispatchResult`;
    ``adispatch_event(log_event)`` retries under ``retry``. Close with ``aclose()``.
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        proxy_url: str | None = None,
        gzip: bool = False,
        retry: RetryPolicy | None = None,
        max_connections: int = 4,
        ca_certs: str | None = None,
        headers: dict[str, str] | None = None,
        endpoint: str | None = None,
    ) -> None:
        try:
            import aiohttp  # noqa: PLC0415 (an optional extra)
        except ImportError as exc:  # pragma: no cover - the extra is installed in dev
            raise ConfigurationError(
                "AsyncHttpDispatcher needs aiohttp: pip install 'flagstream[aio]'"
            ) from exc
        if not (timeout > 0 and connect_timeout > 0):
            raise ConfigurationError("timeouts must be > 0")
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            raise ConfigurationError(f"endpoint must be an http(s) URL, got {endpoint!r}")
        self._aiohttp = aiohttp
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.proxy_url = proxy_url
        self.gzip = gzip
        self.retry = retry or RetryPolicy(max_attempts=5, deadline=30.0)
        self.max_connections = max_connections
        self.endpoint = endpoint
        self._ssl = ssl.create_default_context(cafile=ca_certs) if ca_certs else True
        self._extra_headers = dict(headers or {})
        self._session: Any = None
        self._closed = False

    def _session_for_loop(self) -> Any:
        if self._session is None or self._session.closed:
            connector = self._aiohttp.TCPConnector(limit=self.max_connections, ssl=self._ssl)
            self._session = self._aiohttp.ClientSession(connector=connector, auto_decompress=False)
        return self._session

    def _headers(self, log_event: Any) -> dict[str, str]:
        headers = dict(getattr(log_event, "headers", None) or {"Content-Type": "application/json"})
        headers.update(self._extra_headers)
        headers["User-Agent"] = USER_AGENT
        if self.gzip:
            headers["Content-Encoding"] = "gzip"
        return headers

    async def asend(self, log_event: Any, deadline: float | None = None) -> DispatchResult:
        """One attempt, returning by ``deadline`` (a ``time.monotonic()`` value); never raises."""
        start = time.monotonic()
        budget = self.timeout if deadline is None else min(self.timeout, deadline - start)
        if budget <= 0:
            return DispatchResult.failure("deadline exceeded before sending")
        if self._closed:
            return DispatchResult.failure("dispatcher is closed")
        body = body_of(log_event)
        if self.gzip:
            body = _gzip.compress(body, 6)
        aiohttp = self._aiohttp
        timeout = aiohttp.ClientTimeout(total=budget, sock_connect=min(self.connect_timeout, budget))
        try:
            async with asyncio.timeout(budget + 0.05) if hasattr(asyncio, "timeout") else _nullcontext():
                session = self._session_for_loop()
                async with session.request(
                    str(getattr(log_event, "http_verb", "POST")).upper(),
                    self.endpoint or log_event.url,
                    data=body,
                    headers=self._headers(log_event),
                    timeout=timeout,
                    proxy=self.proxy_url,
                    allow_redirects=False,
                ) as response:
                    await response.read()
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    return DispatchResult.from_status(
                        response.status, elapsed=time.monotonic() - start, retry_after=retry_after
                    )
        except asyncio.TimeoutError:
            return DispatchResult.failure(
                f"deadline exceeded after {budget:.3g}s (no response)", elapsed=time.monotonic() - start
            )
        except Exception as exc:  # aiohttp and OS errors alike become a result
            return DispatchResult.failure(f"{type(exc).__name__}: {exc}", elapsed=time.monotonic() - start)

    async def adispatch_event(self, log_event: Any) -> None:
        """Send ``log_event``, retrying under ``retry``; never raises."""
        policy = self.retry.reset()
        deadline = time.monotonic() + policy.deadline
        while True:
            result = await self.asend(log_event, deadline)
            policy = policy.increment(result)
            if result.ok or policy.is_exhausted():
                return
            delay = policy.get_backoff()
            if time.monotonic() + delay >= deadline or self._closed:
                return
            await asyncio.sleep(delay)

    async def aclose(self) -> None:
        """Close the session and its connections. Idempotent."""
        self._closed = True
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def __aenter__(self) -> AsyncHttpDispatcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class _nullcontext:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc_info: object) -> None:
        return None
