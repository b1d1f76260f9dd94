"""The Django app, for the template tags: add ``"flagstream.contrib.django"`` to ``INSTALLED_APPS``."""

from __future__ import annotations

from django.apps import AppConfig


class FlagstreamConfig(AppConfig):  # type: ignore[misc]  # Django ships no types
    """flagstream's Django app (template tags only; no models)."""

    name = "flagstream.contrib.django"
    label = "flagstream"
    verbose_name = "flagstream"
