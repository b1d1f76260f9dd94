"""Django: the middleware and template tag under the test client, and a real gunicorn with --preload."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import Iterator

import pytest

pytest.importorskip("django")

import django
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, override_settings
from tests.contrib.apps.common import DATAFILE, HOLD
from tests.contrib.helpers import BIN, Server, assert_each_event_once, free_port, hit, server_env

from flagstream.collector import Collector
from flagstream.contrib.django import FlagstreamMiddleware, close_client, get_client

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.contrib.apps.django_site.settings")
django.setup()


@pytest.fixture
def site(collector: Collector) -> Iterator[Client]:
    """The test site, its client pointed at ``collector``; closed (and so delivered) after the test."""
    conf = {
        **settings.FLAGSTREAM,
        "OPTIONS": {"event_endpoint": collector.events_url, "event_processor_options": HOLD},
    }
    with override_settings(FLAGSTREAM=conf):
        yield Client()
        close_client(timeout=5.0)


def test_view_decides_and_tracks_for_the_user_the_callable_names(site: Client, collector: Collector) -> None:
    answers = [site.get(f"/checkout?user=user-{i}").json() for i in range(20)]
    assert [a["user"] for a in answers] == [f"user-{i}" for i in range(20)]
    expected = [
        get_client().create_user_context(f"user-{i}").decide("checkout", ["DISABLE_DECISION_EVENT"])
        for i in range(20)
    ]
    assert [a["variation"] for a in answers] == [d.variation_key for d in expected]
    assert collector.event_count() == 0  # held in the queue until the client closes
    report = close_client(timeout=5.0)
    assert report.delivered == 40
    assert_each_event_once(collector, users=20)
    event = collector.state.store.recent_events(1)[0]
    assert {"key": "plan", "value": "pro"}.items() <= next(
        a for a in event["attributes"] if a.get("key") == "plan"
    ).items()


def test_anonymous_visitor_gets_a_cookie_and_keeps_its_id(site: Client) -> None:
    first = site.get("/checkout")
    visitor = first.cookies["flagstream_uid"].value
    assert first.json()["user"] == visitor
    assert first.cookies["flagstream_uid"]["httponly"]
    second = site.get("/checkout")
    assert second.json()["user"] == visitor
    assert "flagstream_uid" not in second.cookies  # already set; not sent again


def test_user_context_is_not_built_when_the_view_does_not_use_it(collector: Collector) -> None:
    conf = {**settings.FLAGSTREAM, "OPTIONS": {"event_endpoint": collector.events_url}}
    calls: list[object] = []
    with override_settings(FLAGSTREAM={**conf, "USER": calls.append}):
        middleware = FlagstreamMiddleware(lambda request: HttpResponse("plain"))
        response = middleware(HttpRequest())
        assert response.cookies == {}
        close_client()
    assert calls == []


def test_a_user_callable_that_raises_makes_the_visitor_anonymous(
    site: Client, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(request: object) -> str:
        raise LookupError("no session store")

    with override_settings(FLAGSTREAM={**settings.FLAGSTREAM, "USER": broken}):
        response = site.get("/checkout")
        close_client()
    assert response.status_code == 200
    assert response.json()["user"] == response.cookies["flagstream_uid"].value
    assert "raised LookupError('no session store')" in caplog.text


def test_template_tags_branch_on_the_same_decision_as_decide(site: Client) -> None:
    for i in range(10):
        page = site.get(f"/page?user=user-{i}").content.decode().strip()
        decision = (
            get_client().create_user_context(f"user-{i}").decide("checkout", ["DISABLE_DECISION_EVENT"])
        )
        on, treatment, variation = page.split("|")
        assert on == ("new checkout" if decision.enabled else "old checkout")
        assert treatment == ("treatment" if decision.variation_key == "treatment" else "not treatment")
        assert variation == decision.variation_key


@pytest.mark.parametrize(
    ("flagstream", "message"),
    [
        (None, "must be a dict"),
        ({}, "needs DATAFILE, SDK_KEY, or both"),
        ({"DATAFILE": DATAFILE, "DATAFIEL": 1}, "unknown keys ['DATAFIEL']"),
        ({"DATAFILE": DATAFILE, "USER": "no.such.module.user"}, "FLAGSTREAM['USER']"),
        ({"DATAFILE": DATAFILE, "OPTIONS": {"no_such_option": 1}}, "no_such_option"),
        ({"DATAFILE": DATAFILE, "CLOSE_TIMEOUT": -1}, "CLOSE_TIMEOUT"),
        ({"DATAFILE": DATAFILE, "COOKIE": ""}, "COOKIE"),
        ({"DATAFILE": DATAFILE.with_name("missing.json")}, "cannot read the datafile"),
    ],
)
def test_settings_mistakes_stop_the_middleware_from_loading(flagstream: object, message: str) -> None:
    with (
        override_settings(FLAGSTREAM=flagstream),
        pytest.raises(ImproperlyConfigured, match=re.escape(message)),
    ):
        FlagstreamMiddleware(lambda request: HttpResponse())


def test_gunicorn_preload_four_workers_deliver_every_event_once_after_sigterm(collector: Collector) -> None:
    port = free_port()
    server = Server(
        [
            str(BIN / "gunicorn"),
            "-c", "python:flagstream.contrib.gunicorn",
            "--preload", "--workers", "4", "--bind", f"127.0.0.1:{port}",
            "--graceful-timeout", "20",
            "tests.contrib.apps.django_site.wsgi:application",
        ],
        server_env(collector, FLAGSTREAM_CLOSE_TIMEOUT="10"),
    )  # fmt: skip
    try:
        server.wait_for("Listening at")
        server.wait_for_count("starts with 1 event processor(s), reset after fork", 4)
        answers = hit(port, 200)
        assert collector.event_count() == 0  # everything still queued in the four workers
        code = server.stop(signal.SIGTERM)
    finally:
        server.kill()
    assert code == 0, server.output
    assert len({a["pid"] for a in answers}) >= 2, "the requests should spread over the workers"
    assert_each_event_once(collector, users=200)
    closed = [line for line in server.seen if "flagstream: worker" in line and "closed:" in line]
    assert len(closed) == 4, server.output
    assert sum(int(line.split("closed: ")[1].split()[0]) for line in closed) == 400


def test_the_middleware_also_runs_in_an_async_stack(collector: Collector) -> None:
    conf = {
        **settings.FLAGSTREAM,
        "OPTIONS": {"event_endpoint": collector.events_url, "event_processor_options": HOLD},
    }

    async def request() -> dict[str, object]:
        response = await AsyncClient().get("/checkout?user=async-1")
        return response.json()  # type: ignore[no-any-return]

    with override_settings(FLAGSTREAM=conf):
        answer = asyncio.run(request())
        report = close_client(timeout=5.0)
    assert answer["user"] == "async-1"
    assert report.delivered == 2
