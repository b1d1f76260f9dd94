"""Django integration: one client per process, a lazy ``request.flagstream``, a template tag.

settings.py::

    INSTALLED_APPS = [..., "flagstream.contrib.django"]      # for {% load flagstream %}
    MIDDLEWARE = [..., "django.contrib.auth.middleware.AuthenticationMiddleware",
                  "flagstream.contrib.django.FlagstreamMiddleware"]
    FLAGSTREAM = {"DATAFILE": BASE_DIR / "datafile.json"}

a view::

    def checkout(request):
        decision = request.flagstream.decide("new_checkout")
        request.flagstream.track_event("purchase", {"revenue": 4200})

Elsewhere (management commands, signals) use :func:`get_client`. The client is
built once per process from ``settings.FLAGSTREAM``, keeps working in processes
forked after it was built, and is flushed and closed at exit.
"""

from __future__ import annotations

try:
    import django as _django  # noqa: F401 (checked first, for a clear message)
except ImportError as exc:  # pragma: no cover - exercised by the no-framework import test
    raise ImportError(
        f"flagstream.contrib.django needs Django: pip install 'flagstream[django]' ({exc})"
    ) from exc

from flagstream.contrib.django.conf import (
    FlagstreamSettings,
    close_client,
    default_user,
    get_client,
    get_settings,
)
from flagstream.contrib.django.middleware import FlagstreamMiddleware

__all__ = [
    "FlagstreamMiddleware",
    "FlagstreamSettings",
    "close_client",
    "default_user",
    "get_client",
    "get_settings",
]
