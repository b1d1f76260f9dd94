"""The parts every integration shares: one client per process, server hooks, who the user is."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from tests.contrib.apps.common import DATAFILE, HOLD
from tests.contrib.helpers import REPO

from flagstream.client import Optimizely
from flagstream.collector import Collector
from flagstream.contrib import gunicorn as gunicorn_hooks
from flagstream.contrib._process import (
    ProcessClient,
    client_from_settings,
    close_live_processors,
    run_fork_hooks_if_missed,
)
from flagstream.contrib._users import identify, user_context_for
from flagstream.errors import ConfigurationError


def _client(collector: Collector) -> Optimizely:
    return client_from_settings(
        DATAFILE, options={"event_endpoint": collector.events_url, "event_processor_options": HOLD}
    )


def test_threads_racing_for_the_first_client_get_the_same_one(collector: Collector) -> None:
    built: list[Optimizely] = []

    def factory() -> Optimizely:
        built.append(_client(collector))
        return built[-1]

    holder = ProcessClient(factory)
    barrier = threading.Barrier(8)
    seen: list[Optimizely] = []

    def race() -> None:
        barrier.wait(timeout=10)
        seen.append(holder.get())

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(built) == 1
    assert all(client is built[0] for client in seen)
    holder.close(1.0)


def test_close_delivers_and_the_next_get_builds_a_new_client(collector: Collector) -> None:
    holder = ProcessClient(lambda: _client(collector))
    assert holder.flush(1.0) is None  # nothing built yet
    first = holder.get()
    first.track("purchase", "user-1")
    report = holder.close()
    assert report is not None
    assert report.delivered == 1
    assert holder.close() is None  # idempotent
    second = holder.get()
    assert second is not first
    second.track("purchase", "user-2")
    report = holder.close(2.0)
    assert report is not None
    assert report.delivered == 1
    assert collector.event_count() == 2


def test_close_live_processors_closes_held_clients_and_clients_built_by_hand(collector: Collector) -> None:
    holder = ProcessClient(lambda: _client(collector))
    holder.get().track("purchase", "held")
    by_hand = _client(collector)
    by_hand.track("purchase", "by-hand")
    reports = close_live_processors(5.0)
    assert sum(r.delivered for r in reports) == 2
    assert collector.event_count() == 2
    assert by_hand.event_processor.stats().queued_events == 0


def test_a_client_built_before_fork_delivers_each_sides_events_once(collector: Collector) -> None:
    # The gunicorn --preload shape: built in the parent, used in the child, which ends with
    # sys.exit (the exit hook closes it). A child of a fork runs in a subprocess of its own.
    script = textwrap.dedent(
        f"""
        import os, sys
        from flagstream.contrib._process import ProcessClient, client_from_settings, run_fork_hooks_if_missed
        from pathlib import Path
        holder = ProcessClient(lambda: client_from_settings(
            Path({str(DATAFILE)!r}),
            options={{"event_endpoint": {collector.events_url!r}, "event_processor_options": {HOLD!r}}},
        ))
        client = holder.get()
        for i in range(50):
            client.track("purchase", f"parent-{{i}}")
        pid = os.fork()
        if pid == 0:
            assert holder.get() is client and not run_fork_hooks_if_missed()
            for i in range(30):
                client.track("purchase", f"child-{{i}}")
            sys.exit(0)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), holder.close(5.0).delivered)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "50"]
    assert collector.wait_for_events(80, timeout=10)
    assert collector.event_count() == 80
    assert collector.duplicate_count() == 0
    assert collector.state.store.visitor_count() == 80


def test_fork_hooks_are_not_run_twice_where_python_ran_them() -> None:
    assert run_fork_hooks_if_missed() is False


def test_settings_mistakes_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="needs a datafile"):
        client_from_settings()
    with pytest.raises(ConfigurationError, match="cannot read the datafile"):
        client_from_settings(tmp_path / "missing.json")
    with pytest.raises(ConfigurationError, match="options must be a dict"):
        client_from_settings(DATAFILE, options=[("a", 1)])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="no_such"):
        client_from_settings(DATAFILE, options={"no_such": 1})
    with pytest.raises(ConfigurationError, match="callable"):
        ProcessClient("not callable")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="close_timeout"):
        ProcessClient(_never, close_timeout=-1)


def _never() -> Optimizely:
    raise AssertionError("not built")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("user-1", ("user-1", None)),
        (("user-1", {"plan": "pro"}), ("user-1", {"plan": "pro"})),
        (("user-1", None), ("user-1", None)),
        (None, None),
        (42, None),
        (("user-1", "pro"), None),
        ((1, {}), None),
    ],
)
def test_the_user_callables_answers(answer: object, expected: object) -> None:
    assert identify(lambda request: answer, object()) == expected


def test_a_user_callable_that_raises_is_logged_and_the_visitor_is_anonymous(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(request: object) -> str:
        raise KeyError("session")

    assert identify(broken, object()) is None
    assert "raised KeyError('session')" in caplog.text


def test_user_context_for_keeps_the_attributes(collector: Collector) -> None:
    client = _client(collector)
    context = user_context_for(client, "user-1", {"plan": "pro"})
    assert context.get_user_attributes() == {"plan": "pro"}
    client.close(1.0)


def test_the_gunicorn_close_timeout_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAGSTREAM_CLOSE_TIMEOUT", "7.5")
    assert gunicorn_hooks.close_timeout() == 7.5
    monkeypatch.setenv("FLAGSTREAM_CLOSE_TIMEOUT", "soon")
    assert gunicorn_hooks.close_timeout() == 3.0
    monkeypatch.delenv("FLAGSTREAM_CLOSE_TIMEOUT")
    assert gunicorn_hooks.close_timeout() == 3.0
