"""FastAPI / Starlette integration: a lifespan that runs the asyncio processor, a user-context dependency.

    from fastapi import Depends, FastAPI
    from flagstream import OptimizelyUserContext
    from flagstream.contrib.asgi import Flagstream

    flags = Flagstream(Path("datafile.json"), user=lambda request: request.headers.get("x-user-id"))
    app = FastAPI(lifespan=flags.lifespan)

    @app.post("/checkout")
    async def checkout(user: OptimizelyUserContext = Depends(flags.user)):
        if user.decide("new_checkout").enabled: ...
        user.track_event("purchase", {"revenue": 4200})

Events go through an :class:`~flagstream.delivery.aio.AsyncBatchEventProcessor`
whose workers are tasks on the server's event loop. The lifespan starts them
at startup and, at shutdown, ``aclose``s the processor within ``close_timeout``
seconds, delivering what is queued (an event loop cannot run at interpreter
exit, so the lifespan is the place). Your own lifespan can wrap it::

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async with flags.lifespan(app):
            yield

With plain Starlette, call ``flags.user_context(request)`` in an endpoint. It
needs the ``aio`` extra (aiohttp) for the default dispatcher.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

try:
    from starlette.requests import Request
    from starlette.responses import Response
except ImportError as exc:  # pragma: no cover - exercised by the no-framework import test
    raise ImportError(
        f"flagstream.contrib.asgi needs Starlette: pip install 'flagstream[asgi]' ({exc})"
    ) from exc

from flagstream._logging import SDK_LOGGER
from flagstream.client import Optimizely
from flagstream.contrib._process import DEFAULT_CLOSE_TIMEOUT, client_from_settings
from flagstream.contrib._users import (
    COOKIE_MAX_AGE,
    DEFAULT_COOKIE,
    UserResolver,
    check_cookie,
    resolve_user,
    user_context_for,
)
from flagstream.delivery.aio import AsyncBatchEventProcessor
from flagstream.delivery.stats import FlushReport
from flagstream.errors import ConfigurationError
from flagstream.user_context import OptimizelyUserContext

__all__ = ["Flagstream"]


class Flagstream:
    """A client on the asyncio processor, its lifespan, and the request's user context.

    ``datafile``, ``sdk_key`` and ``options`` are as for ``Optimizely(...)``
    (a path-like datafile is read); ``processor_options`` go to
    ``AsyncBatchEventProcessor`` (``event_dispatcher`` among them, e.g. an
    ``AsyncHttpDispatcher(endpoint=...)``). ``user(request)`` names the user:
    an id, ``(id, attributes)``, or ``None`` for an anonymous visitor, who gets
    the id in the ``cookie`` (set on the response when new).
    """

    def __init__(
        self,
        datafile: str | bytes | os.PathLike[str] | None = None,
        *,
        sdk_key: str | None = None,
        options: Mapping[str, Any] | None = None,
        processor_options: Mapping[str, Any] | None = None,
        user: UserResolver | None = None,
        cookie: str | None = DEFAULT_COOKIE,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> None:
        if user is not None and not callable(user):
            raise ConfigurationError("user must be a callable (request) -> user id | (id, attributes) | None")
        if not isinstance(close_timeout, (int, float)) or close_timeout < 0:
            raise ConfigurationError(f"close_timeout must be a number >= 0, not {close_timeout!r}")
        if options is not None and "event_processor" in options:
            raise ConfigurationError("options must not set event_processor: the lifespan runs its own")
        try:
            self.processor = AsyncBatchEventProcessor(**dict(processor_options or {}))
        except TypeError as exc:
            raise ConfigurationError(f"processor_options: {exc}") from None
        self.client: Optimizely = client_from_settings(
            datafile, sdk_key, {**dict(options or {}), "event_processor": self.processor}
        )
        self.cookie = check_cookie(cookie)
        self.close_timeout = float(close_timeout)
        self._user = user
        self.report: FlushReport | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """Start delivery on the server's loop; at shutdown deliver what is queued, then stop.

        ``self.report`` holds the shutdown's ``FlushReport`` afterwards.
        """
        self.processor.start()
        try:
            yield
        finally:
            self.report = await self.processor.aclose(self.close_timeout)
            # Stop the datafile poller. Not client.close(): for an asyncio processor it would
            # schedule one more aclose() task on a loop that is about to stop.
            stop = getattr(self.client.config_manager, "stop", None)
            if callable(stop):
                stop()
            SDK_LOGGER.info("flagstream: delivery at shutdown: %s", self.report)

    def user(self, request: Request, response: Response) -> OptimizelyUserContext:
        """The FastAPI dependency: ``Depends(flags.user)`` (sets the visitor cookie when new)."""
        return self.user_context(request, response)

    def user_context(self, request: Request, response: Response | None = None) -> OptimizelyUserContext:
        """The user context for ``request``; a new visitor's cookie is set on ``response`` if given."""
        identity, new_visitor = resolve_user(self._user, request, request.cookies, self.cookie)
        if new_visitor is not None and response is not None and self.cookie is not None:
            response.set_cookie(
                self.cookie, new_visitor, max_age=COOKIE_MAX_AGE, httponly=True, samesite="lax"
            )
        return user_context_for(self.client, *identity)

    async def aflush(self, timeout: float = 2.0) -> FlushReport:
        """Deliver what is queued now, within ``timeout`` seconds."""
        return await self.processor.aflush(timeout)
