"""A plain WSGI app for uWSGI: the client is built at import, in the master, before the fork."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from tests.contrib.apps.common import DATAFILE, client_options

from flagstream import Optimizely
from flagstream.contrib import uwsgi as flagstream_uwsgi

logging.basicConfig(level=logging.INFO, format="%(process)d %(name)s %(message)s")
client = Optimizely(DATAFILE.read_text(), **client_options())  # type: ignore[arg-type]
if os.environ.get("FLAGSTREAM_TEST_UWSGI_HOOKS", "1") == "1":
    flagstream_uwsgi.install()


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    user_id = parse_qs(environ.get("QUERY_STRING", "")).get("user", ["anonymous"])[0]
    user = client.create_user_context(user_id, {"plan": "pro"})
    assert user is not None
    decision = user.decide("checkout")
    user.track_event("purchase", {"revenue": 4200})
    body = json.dumps({"pid": os.getpid(), "user": user_id, "variation": decision.variation_key}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
