"""The client with an SDK key: the polling manager wired end to end against a local server."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from datafile_gen import random_datafile
from datafile_server import CapturingLogger, Reply, serve

import flagstream.config.polling as polling
from flagstream.client import Optimizely
from flagstream.notifications import NotificationCenter, NotificationTypes
from flagstream.testing import CapturingEventDispatcher

pytestmark = pytest.mark.timeout(60)


def use_local_cdn(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setattr(polling, "DATAFILE_URL_TEMPLATE", url.replace("/key.json", "/{sdk_key}.json"))
    monkeypatch.setattr(
        polling, "AUTHENTICATED_DATAFILE_URL_TEMPLATE", url.replace("/key.json", "/auth/{sdk_key}.json")
    )


def datafile_with_flag() -> dict[str, Any]:
    return random_datafile(12, "4")


def test_client_with_sdk_key_fetches_the_datafile_and_fires_config_update(monkeypatch):
    datafile = datafile_with_flag()
    with serve(datafile) as server:
        use_local_cdn(monkeypatch, server.url)
        center = NotificationCenter()
        updated = threading.Event()
        center.add_notification_listener(NotificationTypes.OPTIMIZELY_CONFIG_UPDATE, lambda *_: updated.set())
        client = Optimizely(
            sdk_key="key", notification_center=center, event_dispatcher=CapturingEventDispatcher()
        )
        try:
            described = client.get_optimizely_config()  # waits (boundedly) for the first datafile
            assert described is not None
            assert described.revision == datafile["revision"]
            assert updated.wait(5)
            assert server.requests[0]["path"] == "/datafiles/key.json"
            assert client.create_user_context("user-1").decide_all() is not None
        finally:
            started = time.monotonic()
            client.close()
            assert time.monotonic() - started < 3


def test_client_access_token_selects_the_authenticated_url_and_bearer_header(monkeypatch):
    with serve(datafile_with_flag()) as server:
        use_local_cdn(monkeypatch, server.url)
        server.required_token = "tok"
        client = Optimizely(sdk_key="key", datafile_access_token="tok")
        try:
            assert client.get_optimizely_config() is not None
            assert server.requests[0]["path"] == "/datafiles/auth/key.json"
            assert server.requests[0]["Authorization"] == "Bearer tok"
        finally:
            client.close()


def test_client_with_a_bad_first_datafile_returns_defaults_and_logs_the_path(monkeypatch):
    with serve(None) as server:
        use_local_cdn(monkeypatch, server.url)
        bad = datafile_with_flag()
        bad["featureFlags"].append({"id": "x", "key": "broken", "experimentIds": ["nope"], "rolloutId": ""})
        server.replies.append(Reply(200, json.dumps(bad).encode()))
        logger = CapturingLogger()
        client = Optimizely(sdk_key="key", logger=logger)
        try:
            assert client.get_optimizely_config() is None
            assert client.is_feature_enabled("broken", "user-1") is False
            assert any(
                "featureFlags[" in line and 'experimentIds[0]: experiment "nope" not found' in line
                for line in logger.at("error")
            ), logger.lines
        finally:
            client.close()
