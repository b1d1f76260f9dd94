"""Flask integration: an extension in the ``init_app`` style, with a user context per request in ``flask.g``.

    from flagstream.contrib.flask import Flagstream

    flags = Flagstream()

    def create_app():
        app = Flask(__name__)
        app.config["FLAGSTREAM_DATAFILE"] = Path("datafile.json")
        flags.init_app(app)
        return app

    @flags.user_loader
    def user_of(request):                      # optional; anonymous visitors get a cookie id
        return (current_user.id, {"plan": current_user.plan}) if current_user else None

    @app.get("/checkout")
    def checkout():
        if flags.user.decide("new_checkout").enabled: ...
        flags.user.track_event("purchase", {"revenue": 4200})

Configuration keys: ``FLAGSTREAM_DATAFILE`` (JSON text, bytes or a path),
``FLAGSTREAM_SDK_KEY``, ``FLAGSTREAM_OPTIONS`` (more ``Optimizely(...)``
arguments), ``FLAGSTREAM_COOKIE`` (the visitor cookie, ``None`` for none) and
``FLAGSTREAM_CLOSE_TIMEOUT``; or pass ``client=`` to use a client you built.

Each app gets one client per process, built by ``init_app``. Flask has no
signal for an application's end, so the client is flushed and closed at the
process's exit (gunicorn workers and ``flask run`` both exit through it), or
when you call :meth:`Flagstream.close`. A process forked after ``init_app``
(gunicorn ``--preload``) keeps the client with its own delivery threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

try:
    from flask import Flask, Response, current_app, g, request
except ImportError as exc:  # pragma: no cover - exercised by the no-framework import test
    raise ImportError(
        f"flagstream.contrib.flask needs Flask: pip install 'flagstream[flask]' ({exc})"
    ) from exc

from flagstream.client import Optimizely
from flagstream.contrib._process import DEFAULT_CLOSE_TIMEOUT, ProcessClient, client_from_settings
from flagstream.contrib._users import (
    COOKIE_MAX_AGE,
    DEFAULT_COOKIE,
    UserResolver,
    check_cookie,
    resolve_user,
    user_context_for,
)
from flagstream.delivery.stats import FlushReport
from flagstream.errors import ConfigurationError
from flagstream.user_context import OptimizelyUserContext

__all__ = ["Flagstream"]

_EXTENSION = "flagstream"
_G_USER = "_flagstream_user"
_G_NEW_VISITOR = "_flagstream_new_visitor"


@dataclass(slots=True)
class _AppState:
    holder: ProcessClient
    cookie: str | None


class Flagstream:
    """The flagstream extension for Flask; ``init_app`` may be called for several apps."""

    def __init__(
        self, app: Flask | None = None, *, client: Optimizely | None = None, user: UserResolver | None = None
    ) -> None:
        if client is not None and not isinstance(client, Optimizely):
            raise ConfigurationError(f"client must be a flagstream Optimizely, not {type(client).__name__}")
        if user is not None and not callable(user):
            raise ConfigurationError("user must be a callable (request) -> user id | (id, attributes) | None")
        self._client = client
        self._user = user
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Build ``app``'s client from its config and hook the extension into its requests."""
        config = app.config
        close_timeout = config.get("FLAGSTREAM_CLOSE_TIMEOUT", DEFAULT_CLOSE_TIMEOUT)
        cookie = check_cookie(config.get("FLAGSTREAM_COOKIE", DEFAULT_COOKIE))
        given = self._client
        if given is None:
            datafile, sdk_key = config.get("FLAGSTREAM_DATAFILE"), config.get("FLAGSTREAM_SDK_KEY")
            options = config.get("FLAGSTREAM_OPTIONS")
            # Build once now: a configuration mistake stops the app's start, not a request.
            first = client_from_settings(datafile, sdk_key, options)
            built: list[Optimizely] = [first]

            def factory() -> Optimizely:
                return built.pop() if built else client_from_settings(datafile, sdk_key, options)

        else:

            def factory() -> Optimizely:
                return given

        holder = ProcessClient(factory, close_timeout=close_timeout)
        holder.get()
        app.extensions[_EXTENSION] = _AppState(holder, cookie)
        app.after_request(self._after_request)

    def user_loader(self, user: UserResolver) -> UserResolver:
        """Decorator: ``user(request)`` names the user (id, or (id, attributes), or ``None``)."""
        if not callable(user):
            raise ConfigurationError("user_loader takes a callable")
        self._user = user
        return user

    @property
    def client(self) -> Optimizely:
        """The current app's client."""
        return _state().holder.get()

    @property
    def user(self) -> OptimizelyUserContext:
        """The user context of the current request, built on first use and kept in ``flask.g``."""
        context: OptimizelyUserContext | None = g.get(_G_USER)
        if context is None:
            context = self._build_user(_state())
            setattr(g, _G_USER, context)
        return context

    def flush(self, timeout: float = 2.0) -> FlushReport | None:
        """Deliver the current app's queued events within ``timeout`` seconds."""
        return _state().holder.flush(timeout)

    def close(self, app: Flask | None = None, timeout: float | None = None) -> FlushReport | None:
        """Flush and close ``app``'s client (default: the current app) now rather than at exit."""
        state = _state(app)
        return state.holder.close(timeout)

    def _build_user(self, state: _AppState) -> OptimizelyUserContext:
        identity, new_visitor = resolve_user(self._user, request, request.cookies, state.cookie)
        if new_visitor is not None:
            setattr(g, _G_NEW_VISITOR, new_visitor)
        return user_context_for(state.holder.get(), *identity)

    def _after_request(self, response: Response) -> Response:
        visitor = g.get(_G_NEW_VISITOR)
        state = _state()
        if visitor is not None:
            assert state.cookie is not None  # resolve_user names no new visitor without a cookie
            response.set_cookie(state.cookie, visitor, max_age=COOKIE_MAX_AGE, httponly=True, samesite="Lax")
        return response


def _state(app: Any = None) -> _AppState:
    app = app if app is not None else current_app
    state = app.extensions.get(_EXTENSION)
    if state is None:
        raise RuntimeError("flagstream: call Flagstream.init_app(app) before using the extension")
    if not isinstance(state, _AppState):
        raise TypeError(f"app.extensions[{_EXTENSION!r}] is not flagstream's state")
    return state
