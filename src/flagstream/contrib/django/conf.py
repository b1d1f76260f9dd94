"""``settings.FLAGSTREAM``: read once, checked, and turned into this process's client.

    FLAGSTREAM = {
        "DATAFILE": BASE_DIR / "datafile.json",   # JSON text, bytes, or a path; optional with SDK_KEY
        "SDK_KEY": "...",                          # poll the datafile from the CDN (optional)
        "OPTIONS": {"event_endpoint": "..."},      # more keyword arguments for Optimizely(...)
        "USER": "myapp.flags.user_of",             # (request) -> id | (id, attributes) | None
        "COOKIE": "flagstream_uid",                # anonymous visitor id cookie; None turns it off
        "CLOSE_TIMEOUT": 3.0,                      # seconds to deliver what is queued at exit
    }

Mistakes raise ``ImproperlyConfigured`` when the middleware loads, at the
server's start, never during a request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from flagstream.client import Optimizely
from flagstream.contrib._process import DEFAULT_CLOSE_TIMEOUT, ProcessClient, client_from_settings
from flagstream.contrib._users import DEFAULT_COOKIE, UserResolver, check_cookie
from flagstream.errors import FlagstreamError

__all__ = ["FlagstreamSettings", "close_client", "default_user", "get_client", "get_settings"]

_KEYS = frozenset({"DATAFILE", "SDK_KEY", "OPTIONS", "USER", "COOKIE", "CLOSE_TIMEOUT"})


def default_user(request: Any) -> str | None:
    """The signed-in user's primary key as the user id; anonymous visitors get the cookie id."""
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return str(user.pk)
    return None


@dataclass(frozen=True, slots=True)
class FlagstreamSettings:
    """``settings.FLAGSTREAM``, checked."""

    datafile: str | bytes | os.PathLike[str] | None
    sdk_key: str | None
    options: Mapping[str, Any]
    user: UserResolver
    cookie: str | None
    close_timeout: float


_cached: FlagstreamSettings | None = None


def get_settings() -> FlagstreamSettings:
    """``settings.FLAGSTREAM``, checked (once; again after it changes), or ``ImproperlyConfigured``."""
    global _cached
    conf = _cached
    if conf is None:
        conf = _cached = _read_settings()
    return conf


def _read_settings() -> FlagstreamSettings:
    raw = getattr(settings, "FLAGSTREAM", None)
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured('settings.FLAGSTREAM must be a dict such as {"DATAFILE": ...}')
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ImproperlyConfigured(f"settings.FLAGSTREAM has unknown keys {unknown}; known: {sorted(_KEYS)}")
    if raw.get("DATAFILE") is None and not raw.get("SDK_KEY"):
        raise ImproperlyConfigured("settings.FLAGSTREAM needs DATAFILE, SDK_KEY, or both")
    user: Any = raw.get("USER", default_user)
    if isinstance(user, str):
        try:
            user = import_string(user)
        except ImportError as exc:
            raise ImproperlyConfigured(f"settings.FLAGSTREAM['USER']: {exc}") from None
    if not callable(user):
        raise ImproperlyConfigured("settings.FLAGSTREAM['USER'] must be a callable or its dotted path")
    options = raw.get("OPTIONS") or {}
    if not isinstance(options, Mapping):
        raise ImproperlyConfigured(
            "settings.FLAGSTREAM['OPTIONS'] must be a dict of Optimizely(...) arguments"
        )
    close_timeout = raw.get("CLOSE_TIMEOUT", DEFAULT_CLOSE_TIMEOUT)
    if isinstance(close_timeout, bool) or not isinstance(close_timeout, (int, float)) or close_timeout < 0:
        raise ImproperlyConfigured("settings.FLAGSTREAM['CLOSE_TIMEOUT'] must be a number of seconds >= 0")
    try:
        cookie = check_cookie(raw.get("COOKIE", DEFAULT_COOKIE))
    except FlagstreamError as exc:
        raise ImproperlyConfigured(f"settings.FLAGSTREAM['COOKIE']: {exc}") from None
    return FlagstreamSettings(
        raw.get("DATAFILE"), raw.get("SDK_KEY"), options, user, cookie, float(close_timeout)
    )


def _build() -> Optimizely:
    conf = get_settings()
    _holder.close_timeout = conf.close_timeout
    try:
        return client_from_settings(conf.datafile, conf.sdk_key, conf.options)
    except FlagstreamError as exc:
        raise ImproperlyConfigured(f"settings.FLAGSTREAM: {exc}") from None


_holder = ProcessClient(_build)


def get_client() -> Optimizely:
    """This process's client, built from ``settings.FLAGSTREAM`` on first use.

    Built once per process; a process forked after it was built (gunicorn
    ``--preload``) keeps it, with its own delivery threads. It is flushed and
    closed at exit within ``CLOSE_TIMEOUT`` seconds.

    >>> get_client().create_user_context("user-1").decide("checkout")  # doctest: +SKIP
    """
    return _holder.get()


def close_client(timeout: float | None = None) -> Any:
    """Flush and close this process's client now (the next :func:`get_client` builds a new one).

    Returns the delivery report (``FlushReport``), or ``None`` if no client was built.
    """
    return _holder.close(timeout)


def _on_setting_changed(*, setting: str, **_: Any) -> None:
    # override_settings(FLAGSTREAM=...) in tests: the next request builds a client from the new settings.
    global _cached
    if setting == "FLAGSTREAM":
        _cached = None
        close_client()


setting_changed.connect(_on_setting_changed, dispatch_uid="flagstream.contrib.django.settings")
