"""A minimal Django site for the tests: the middleware, the template tag, no database."""

from __future__ import annotations

from pathlib import Path

from tests.contrib.apps.common import DATAFILE, client_options

SECRET_KEY = "flagstream-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.contrib.apps.django_site.urls"
INSTALLED_APPS = ["flagstream.contrib.django"]
MIDDLEWARE = ["flagstream.contrib.django.FlagstreamMiddleware"]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [Path(__file__).with_name("templates")],
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
DATABASES: dict[str, object] = {}
USE_TZ = True


def user_of(request: object) -> tuple[str, dict[str, str]] | None:
    user_id = getattr(request, "GET", {}).get("user")
    return (user_id, {"plan": "pro"}) if user_id else None


FLAGSTREAM = {
    "DATAFILE": DATAFILE,
    "OPTIONS": client_options(),
    "USER": "tests.contrib.apps.django_site.settings.user_of",
}
