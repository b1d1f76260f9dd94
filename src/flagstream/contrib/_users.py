"""Who the request is for: the user callable's answer, or an anonymous visitor id from a cookie.

Every web integration takes a ``user`` callable, given the framework's request
and returning one of:

* ``"user-id"``: the user id, no attributes;
* ``("user-id", {"plan": "pro"})``: the id and the attributes;
* ``None``: an anonymous visitor. The integration then uses the id in the
  visitor cookie (``flagstream_uid`` by default), or a new random one that it
  sets on the response, so the visitor keeps the same variations.

A callable that raises or answers something else never breaks the request: the
problem is logged once per request and the visitor is treated as anonymous.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from flagstream._logging import SDK_LOGGER
from flagstream.client import Optimizely
from flagstream.errors import ConfigurationError
from flagstream.user_context import OptimizelyUserContext

__all__ = [
    "COOKIE_MAX_AGE",
    "DEFAULT_COOKIE",
    "Identity",
    "UserResolver",
    "check_cookie",
    "identify",
    "new_visitor_id",
    "resolve_user",
    "user_context_for",
]

DEFAULT_COOKIE = "flagstream_uid"
COOKIE_MAX_AGE = 365 * 24 * 3600

#: What a user callable may answer.
UserAnswer = str | tuple[str, Mapping[str, Any]] | None
UserResolver = Callable[[Any], Any]
#: A user id and its attributes (``None`` for none).
Identity = tuple[str, dict[str, Any] | None]


def check_cookie(cookie: object) -> str | None:
    """The cookie name, validated at construction (``None`` turns anonymous visitor ids off)."""
    if cookie is None or (isinstance(cookie, str) and cookie):
        return cookie
    raise ConfigurationError(f"the visitor cookie name must be a non-empty string or None, not {cookie!r}")


def new_visitor_id() -> str:
    """A random visitor id: 32 hex digits."""
    return uuid.uuid4().hex


def identify(user: UserResolver | None, request: object) -> Identity | None:
    """The user id and attributes ``user`` answers for ``request``; ``None`` for an anonymous visitor."""
    if user is None:
        return None
    try:
        answer = user(request)
    except Exception as exc:
        SDK_LOGGER.error(
            "flagstream: the user callable %r raised %r; treating the visitor as anonymous", user, exc
        )
        return None
    if answer is None:
        return None
    if isinstance(answer, str):
        return answer, None
    if (
        isinstance(answer, tuple)
        and len(answer) == 2
        and isinstance(answer[0], str)
        and (answer[1] is None or isinstance(answer[1], Mapping))
    ):
        return answer[0], dict(answer[1]) if answer[1] is not None else None
    SDK_LOGGER.error(
        "flagstream: the user callable %r answered %r; expected a user id, (user id, attributes) or None",
        user,
        answer,
    )
    return None


def resolve_user(
    user: UserResolver | None, request: object, cookies: Mapping[str, str], cookie: str | None
) -> tuple[Identity, str | None]:
    """Who ``request`` is for, and the new visitor id to set as the ``cookie`` (``None``: nothing to set).

    An anonymous visitor (``user`` answers ``None``) is the id in ``cookies[cookie]``, or a new
    random id. With ``cookie=None`` every anonymous request gets a new id and no cookie.
    """
    identity = identify(user, request)
    if identity is not None:
        return identity, None
    visitor = cookies.get(cookie) if cookie is not None else None
    if visitor:
        return (visitor, None), None
    visitor = new_visitor_id()
    return (visitor, None), (visitor if cookie is not None else None)


def user_context_for(
    client: Optimizely, user_id: str, attributes: dict[str, Any] | None
) -> OptimizelyUserContext:
    """A user context; attributes the client refuses are left out (it logs why) rather than losing the user."""
    context = client.create_user_context(user_id, attributes)
    if context is None:
        context = OptimizelyUserContext(client, user_id, None)
    return context
