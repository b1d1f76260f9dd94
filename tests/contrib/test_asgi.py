"""FastAPI / Starlette: the lifespan and dependency under Starlette's TestClient and a real uvicorn."""

from __future__ import annotations

import signal

import pytest

pytest.importorskip("fastapi")

from fastapi import Depends, FastAPI
from starlette.testclient import TestClient
from tests.contrib.apps.common import DATAFILE, HOLD
from tests.contrib.helpers import BIN, Server, assert_each_event_once, free_port, hit, server_env

from flagstream.collector import Collector
from flagstream.contrib.asgi import Flagstream
from flagstream.errors import ConfigurationError
from flagstream.user_context import OptimizelyUserContext


def _app(collector: Collector) -> tuple[FastAPI, Flagstream]:
    flags = Flagstream(
        DATAFILE,
        options={"event_endpoint": collector.events_url},
        processor_options=HOLD,
        user=lambda request: request.query_params.get("user"),
    )
    app = FastAPI(lifespan=flags.lifespan)

    @app.get("/checkout")
    def checkout(user: OptimizelyUserContext = Depends(flags.user)) -> dict[str, object]:  # noqa: B008
        decision = user.decide("checkout")
        user.track_event("purchase", {"revenue": 4200})
        return {"user": user.user_id, "variation": decision.variation_key}

    return app, flags


def test_lifespan_shutdown_delivers_every_event_once(collector: Collector) -> None:
    app, flags = _app(collector)
    with TestClient(app) as client:
        answers = [client.get(f"/checkout?user=user-{i}").json() for i in range(20)]
        assert collector.event_count() == 0  # held on the loop until shutdown
    assert [a["user"] for a in answers] == [f"user-{i}" for i in range(20)]
    assert flags.report is not None
    assert flags.report.delivered == 40
    assert_each_event_once(collector, users=20)


def test_decisions_through_the_dependency_match_decide(collector: Collector) -> None:
    app, flags = _app(collector)
    with TestClient(app) as client:
        answers = [client.get(f"/checkout?user=user-{i}").json()["variation"] for i in range(20)]
    # The processor is closed; decisions need no delivery, DISABLE_DECISION_EVENT sends none.
    expected = [
        flags.client.create_user_context(f"user-{i}")
        .decide("checkout", ["DISABLE_DECISION_EVENT"])
        .variation_key
        for i in range(20)
    ]
    assert answers == expected


def test_anonymous_visitor_gets_a_cookie_and_keeps_its_id(collector: Collector) -> None:
    app, _ = _app(collector)
    with TestClient(app) as client:
        first = client.get("/checkout")
        visitor = first.json()["user"]
        assert first.cookies["flagstream_uid"] == visitor
        second = client.get("/checkout")
        assert second.json()["user"] == visitor
        assert "set-cookie" not in second.headers


def test_configuration_mistakes_raise_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="needs a datafile"):
        Flagstream()
    with pytest.raises(ConfigurationError, match="processor_options"):
        Flagstream(DATAFILE, processor_options={"no_such_option": 1})
    with pytest.raises(ConfigurationError, match="block"):
        Flagstream(DATAFILE, processor_options={"overflow": "block"})
    with pytest.raises(ConfigurationError, match="event_processor"):
        Flagstream(DATAFILE, options={"event_processor": object()})


def test_uvicorn_delivers_every_event_once_after_sigterm(collector: Collector) -> None:
    port = free_port()
    server = Server(
        [
            str(BIN / "uvicorn"),
            "tests.contrib.apps.fastapi_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        server_env(collector),
    )
    try:
        server.wait_for("Application startup complete")
        server.wait_for("Uvicorn running on")
        answers = hit(port, 200)
        assert collector.event_count() == 0  # queued on the server's loop
        code = server.stop(signal.SIGTERM)
    finally:
        server.kill()
    # uvicorn shuts down gracefully, then re-raises the signal it caught (newer releases).
    assert code in (0, -signal.SIGTERM), server.output
    assert "Application shutdown complete" in server.output
    assert {a["user"] for a in answers} == {f"user-{i}" for i in range(200)}
    assert_each_event_once(collector, users=200)
