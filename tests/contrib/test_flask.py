"""Flask: the extension under Flask's test client, and the app under a real gunicorn."""

from __future__ import annotations

import signal

import pytest

pytest.importorskip("flask")

from flask import Flask
from tests.contrib.apps.common import DATAFILE, HOLD
from tests.contrib.apps.flask_app import create_app, flags
from tests.contrib.helpers import BIN, Server, assert_each_event_once, free_port, hit, server_env

from flagstream.collector import Collector
from flagstream.contrib.flask import Flagstream
from flagstream.errors import ConfigurationError


def _app(collector: Collector, **config: object) -> Flask:
    options = {"event_endpoint": collector.events_url, "event_processor_options": HOLD}
    return create_app(FLAGSTREAM_OPTIONS=options, **config)


def test_requests_decide_and_track_then_close_delivers_each_event_once(collector: Collector) -> None:
    app = _app(collector)
    with app.test_client() as client:
        answers = [client.get(f"/checkout?user=user-{i}").get_json() for i in range(20)]
    assert [a["user"] for a in answers] == [f"user-{i}" for i in range(20)]
    with app.app_context():
        oracle = flags.client
        expected = [
            oracle.create_user_context(f"user-{i}").decide("checkout", ["DISABLE_DECISION_EVENT"])
            for i in range(20)
        ]
        assert [a["variation"] for a in answers] == [d.variation_key for d in expected]
        assert collector.event_count() == 0
        report = flags.close(timeout=5.0)
    assert report is not None
    assert report.delivered == 40
    assert_each_event_once(collector, users=20)


def test_user_context_is_built_once_per_request_and_kept_in_g(collector: Collector) -> None:
    app = _app(collector)
    with app.test_request_context("/checkout?user=u-1"):
        assert flags.user is flags.user
        assert flags.user.user_id == "u-1"
        assert flags.user.get_user_attributes() == {"plan": "pro"}
    with app.test_request_context("/checkout?user=u-2"):
        assert flags.user.user_id == "u-2"
    flags.close(app, timeout=1.0)


def test_anonymous_visitor_gets_a_cookie_and_keeps_its_id(collector: Collector) -> None:
    app = _app(collector)
    with app.test_client() as client:
        first = client.get("/checkout")
        visitor = first.get_json()["user"]
        assert f"flagstream_uid={visitor}" in first.headers["Set-Cookie"]
        assert "HttpOnly" in first.headers["Set-Cookie"]
        second = client.get("/checkout")
        assert second.get_json()["user"] == visitor
        assert "Set-Cookie" not in second.headers
    flags.close(app, timeout=1.0)


def test_two_apps_get_two_clients(collector: Collector) -> None:
    one, two = _app(collector), _app(collector)
    with one.app_context():
        first = flags.client
    with two.app_context():
        assert flags.client is not first
    flags.close(one, timeout=1.0)
    flags.close(two, timeout=1.0)


def test_configuration_mistakes_raise_at_init_app() -> None:
    with pytest.raises(ConfigurationError, match="needs a datafile"):
        Flagstream(Flask("empty"))
    app = Flask("bad")
    app.config.update(FLAGSTREAM_DATAFILE=DATAFILE, FLAGSTREAM_OPTIONS={"nope": 1})
    with pytest.raises(ConfigurationError, match="nope"):
        Flagstream(app)
    with pytest.raises(ConfigurationError, match="user must be a callable"):
        Flagstream(user="not callable")  # type: ignore[arg-type]


def test_gunicorn_workers_deliver_every_event_once_after_sigterm(collector: Collector) -> None:
    port = free_port()
    server = Server(
        [
            str(BIN / "gunicorn"),
            "--preload", "--workers", "2", "--bind", f"127.0.0.1:{port}",
            "tests.contrib.apps.flask_app:create_app()",
        ],
        server_env(collector),
    )  # fmt: skip
    try:
        server.wait_for("Listening at")
        server.wait_for_count("Booting worker", 2)
        answers = hit(port, 100)
        assert collector.event_count() == 0
        code = server.stop(signal.SIGTERM)
    finally:
        server.kill()
    assert code == 0, server.output
    assert {a["user"] for a in answers} == {f"user-{i}" for i in range(100)}
    # No gunicorn hook here: the extension's exit hook delivers the workers' events.
    assert_each_event_once(collector, users=100)
