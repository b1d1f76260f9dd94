"""Provider events from a real polling config manager against a real local datafile server.

READY, CONFIGURATION_CHANGED on a new revision (with the flags it changed),
ERROR when initialize finds no datafile and READY when one comes, STALE when
polling keeps failing and READY when it succeeds again. Every wait is on an
explicit sync point (a handler's Event, the server's request count) with a deadline.
"""

from __future__ import annotations

import copy
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from of_helpers import RAISES_ON_FAILED_INIT, datafile, failed_init, set_provider_and_wait
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.provider import ProviderStatus

import flagstream
from flagstream.config.polling import PollingConfigManager
from flagstream.delivery.forwarding import ForwardingEventProcessor
from flagstream.notifications import NotificationCenter, NotificationTypes
from flagstream.openfeature import FlagstreamProvider
from flagstream.testing import CapturingEventDispatcher

sys.path.insert(0, str(Path(__file__).parents[1] / "config"))
from datafile_server import DatafileServer, Reply, serve

pytestmark = pytest.mark.timeout(60)


class Events:
    """Every event of the flagstream provider that the API's handlers saw, with a way to wait for one."""

    def __init__(self) -> None:
        self.seen: list[tuple[ProviderEvent, EventDetails]] = []
        self.cond = threading.Condition()
        for event in ProviderEvent:
            api.add_handler(event, self._handler(event))

    def _handler(self, event: ProviderEvent) -> Callable[[EventDetails], None]:
        def handle(details: EventDetails) -> None:
            if details.provider_name != "flagstream":
                return  # READY of the no-op provider, run as the handler is added
            with self.cond:
                self.seen.append((event, details))
                self.cond.notify_all()

        return handle

    def kinds(self) -> list[ProviderEvent]:
        with self.cond:
            return [event for event, _ in self.seen]

    def wait_for(self, event: ProviderEvent, count: int = 1, timeout: float = 10.0) -> EventDetails:
        with self.cond:
            assert self.cond.wait_for(lambda: self.kinds_locked().count(event) >= count, timeout), self.seen
            return [d for e, d in self.seen if e == event][count - 1]

    def kinds_locked(self) -> list[ProviderEvent]:
        return [event for event, _ in self.seen]


@contextmanager
def polling_client(
    server: DatafileServer, *, notify: bool = True, blocking_timeout: float = 5.0
) -> Iterator[flagstream.Optimizely]:
    """A client on a real PollingConfigManager (0.1 s interval); ``notify`` wires OPTIMIZELY_CONFIG_UPDATE."""
    center = NotificationCenter()

    def forward(_config: Any) -> None:
        center.send_notifications(NotificationTypes.OPTIMIZELY_CONFIG_UPDATE)

    manager = PollingConfigManager(
        url=server.url,
        update_interval=0.1,
        blocking_timeout=blocking_timeout,
        on_update=forward if notify else None,
        start=True,
    )
    client = flagstream.Optimizely(
        config_manager=manager,
        notification_center=center,
        event_processor=ForwardingEventProcessor(CapturingEventDispatcher()),
    )
    try:
        yield client
    finally:
        client.close()


def next_revision(df: dict[str, Any], revision: str, color: str) -> dict[str, Any]:
    changed = copy.deepcopy(df)
    changed["revision"] = revision
    on = changed["experiments"][1]["variations"][1]
    on["variables"] = [{"id": "5001", "value": color}]
    return changed


def test_a_new_datafile_revision_fires_configuration_changed_with_the_changed_flags():
    df = datafile()
    with serve(df) as server, polling_client(server) as client:
        events = Events()
        set_provider_and_wait(FlagstreamProvider(client))
        events.wait_for(ProviderEvent.PROVIDER_READY)
        server.set_datafile(next_revision(df, "43", "blue"), time.time() + 60)
        details = events.wait_for(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
        assert details.provider_name == "flagstream"
        assert details.flags_changed == ["banner"]
        assert details.metadata == {"revision": "43"}
        of_client = api.get_client()
        assert (
            of_client.get_boolean_details("banner", False, EvaluationContext("u")).flag_metadata["revision"]
            == "43"
        )
        assert events.kinds().count(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED) == 1


def test_a_config_manager_that_does_not_notify_is_noticed_at_the_next_evaluation():
    df = datafile()
    with serve(df) as server, polling_client(server, notify=False) as client:
        events = Events()
        set_provider_and_wait(FlagstreamProvider(client))
        requests = len(server.requests)
        server.set_datafile(next_revision(df, "44", "green"), time.time() + 60)
        manager = client.config_manager
        deadline = time.monotonic() + 10
        while manager.get_config().revision != "44" and time.monotonic() < deadline:
            assert server.wait_for_requests(requests + 1, 5)
            requests = len(server.requests)
        assert ProviderEvent.PROVIDER_CONFIGURATION_CHANGED not in events.kinds()
        api.get_client().get_boolean_value("banner", False, EvaluationContext("u"))
        assert events.wait_for(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED).flags_changed == ["banner"]


def test_no_datafile_at_initialize_is_an_error_then_ready_when_one_arrives():
    with serve(None) as server, polling_client(server, blocking_timeout=0.3) as client:
        events = Events()
        with failed_init():
            set_provider_and_wait(FlagstreamProvider(client))
        error = events.wait_for(ProviderEvent.PROVIDER_ERROR)
        assert error.error_code == ErrorCode.PROVIDER_NOT_READY
        of_client = api.get_client()
        assert of_client.get_provider_status() == ProviderStatus.ERROR
        details = of_client.get_boolean_details("banner", True, EvaluationContext("u"))
        assert (details.value, details.error_code) == (True, ErrorCode.PROVIDER_NOT_READY)
        server.set_datafile(datafile(), time.time())
        events.wait_for(ProviderEvent.PROVIDER_READY)
        assert of_client.get_provider_status() == ProviderStatus.READY
        assert of_client.get_boolean_details("banner", True, EvaluationContext("u")).error_code is None


def test_failing_polls_turn_the_provider_stale_and_a_good_poll_ready_again():
    with serve(datafile()) as server, polling_client(server) as client:
        events = Events()
        set_provider_and_wait(FlagstreamProvider(client, stale_after=0.3))
        of_client = api.get_client()
        with server.changed:
            server.replies.extend(Reply(500, b"down") for _ in range(10_000))
        context = EvaluationContext("u")
        deadline = time.monotonic() + 15
        while ProviderEvent.PROVIDER_STALE not in events.kinds() and time.monotonic() < deadline:
            assert server.wait_for_requests(len(server.requests) + 1, 5)  # one more failed attempt
            details = of_client.get_boolean_details("banner", False, context)
            assert details.error_code is None  # stale values are still served
        events.wait_for(ProviderEvent.PROVIDER_STALE, timeout=0)
        assert of_client.get_provider_status() == ProviderStatus.STALE
        fetched = client.config_manager.fetched_at
        with server.changed:
            server.replies.clear()
        deadline = time.monotonic() + 15
        while client.config_manager.fetched_at == fetched and time.monotonic() < deadline:
            assert server.wait_for_requests(len(server.requests) + 1, 5)
        of_client.get_boolean_value("banner", False, context)
        events.wait_for(ProviderEvent.PROVIDER_READY, count=2)  # the first READY came from initialize
        assert of_client.get_provider_status() == ProviderStatus.READY


@pytest.mark.skipif(not RAISES_ON_FAILED_INIT, reason="before 0.10 set_provider waits for initialize")
def test_the_openfeature_client_reports_provider_not_ready_while_initialize_waits():
    with serve(None) as server:
        server.replies.append(Reply(200, json.dumps(datafile()).encode(), delay=3.0))
        with polling_client(server) as client:
            events = Events()
            api.set_provider(FlagstreamProvider(client))  # initializes on OpenFeature's thread
            assert server.wait_for_requests(1)  # the first datafile is on its way, held 3 s
            of_client = api.get_client()
            details = of_client.get_boolean_details("banner", True, EvaluationContext("u"))
            assert (details.value, details.error_code) == (True, ErrorCode.PROVIDER_NOT_READY)
            events.wait_for(ProviderEvent.PROVIDER_READY)
            assert of_client.get_boolean_details("banner", True, EvaluationContext("u")).error_code is None
