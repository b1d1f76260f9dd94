"""Real subprocesses: interpreter exit without close(), and os.fork()."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from flagstream.collector import Collector

pytestmark = pytest.mark.slow

ROOT = str(Path(__file__).resolve().parents[2])


def run_python(source: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    prologue = f"import sys\nsys.path.insert(0, {ROOT!r})\n"
    return subprocess.run(
        [sys.executable, "-c", prologue + textwrap.dedent(source)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def visitors_in(bodies: list[bytes]) -> Counter[str]:
    seen: Counter[str] = Counter()
    for body in bodies:
        for visitor in json.loads(body)["visitors"]:
            seen[visitor["visitor_id"].split("-")[0]] += len(visitor["snapshots"][0]["events"])
    return seen


def test_a_normal_exit_without_close_delivers_every_queued_event():
    with Collector() as collector:
        # A batch size and flush interval this large mean nothing leaves before exit:
        # only the exit hook can deliver these events.
        done = run_python(
            f"""
            from flagstream.delivery.processor import BatchEventProcessor
            from tests.delivery.factories import context, conversion
            processor = BatchEventProcessor(batch_size=20_000, flush_interval=60)
            ctx = context({collector.events_url!r})
            for _ in range(10_000):
                processor.process(conversion(ctx))
            print(processor.stats().queued_events)
            """
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "10000"  # all still queued when the script ended
        assert collector.wait_for_events(10_000, timeout=10)
        assert collector.event_count() == 10_000


def test_events_of_a_forked_child_are_delivered_once_and_the_parents_never_twice():
    with Collector(keep_raw_bodies=True) as collector:
        done = run_python(
            f"""
            import os
            from flagstream.delivery.processor import BatchEventProcessor
            from tests.delivery.factories import context, conversion
            ctx = context({collector.events_url!r})
            processor = BatchEventProcessor(batch_size=5_000, flush_interval=60)
            for _ in range(100):  # leaves a kept-alive connection in the pool, which the child must not use
                processor.process(conversion(ctx, user="early-x"))
            assert processor.flush(timeout=10).delivered == 100
            for _ in range(1_000):
                processor.process(conversion(ctx, user="parent-x"))
            assert processor.stats().queued_events == 1_000  # queued in the parent at fork time
            pid = os.fork()
            if pid == 0:
                for _ in range(500):
                    processor.process(conversion(ctx, user="child-x"))
                report = processor.flush(timeout=10)
                os._exit(0 if report.completed and report.delivered == 500 else 3)
            _, status = os.waitpid(pid, 0)
            report = processor.close(timeout=10)
            print(os.waitstatus_to_exitcode(status), report.delivered)
            """
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["0", "1000"]
        assert collector.wait_for_events(1_600, timeout=10)
        bodies = collector.raw_bodies()
    assert visitors_in(bodies) == {"early": 100, "parent": 1_000, "child": 500}  # nothing was sent twice


DATAFILE_PATH = str(Path(ROOT) / "tests" / "fixtures" / "basic_datafile.json")


def test_the_client_delivers_10000_tracks_when_the_script_ends_without_close():
    with Collector() as collector:
        done = run_python(
            f"""
            from flagstream.client import Optimizely
            client = Optimizely(open({DATAFILE_PATH!r}).read(), event_endpoint={collector.events_url!r})
            for i in range(10_000):
                client.track("purchase", f"user-{{i}}")
            """
        )
        assert done.returncode == 0, done.stderr
        assert collector.wait_for_events(10_000, timeout=15)
        assert collector.event_count() == 10_000


def test_the_client_delivers_a_50000_call_burst_with_default_settings():
    with Collector() as collector:
        done = run_python(
            f"""
            from flagstream.client import Optimizely
            client = Optimizely(open({DATAFILE_PATH!r}).read(), event_endpoint={collector.events_url!r})
            for i in range(50_000):
                client.track("purchase", f"user-{{i}}", {{"age": 30}})
            report = client.close(timeout=30)
            stats = client.event_processor.stats()
            print(report.delivered, stats.delivered, stats.dropped_total)
            """,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        _delivered_at_close, delivered, dropped = map(int, done.stdout.split())
        assert (delivered, dropped) == (50_000, 0)
        assert collector.wait_for_events(50_000, timeout=10)
        assert collector.duplicate_count() == 0


def test_exit_is_bounded_by_the_exit_budget_when_the_server_never_answers():
    from tests.servers.raw import RawServer

    with RawServer("hung") as server:
        start = time.monotonic()
        done = run_python(
            f"""
            from flagstream.delivery.processor import BatchEventProcessor
            from tests.delivery.factories import context, conversion
            processor = BatchEventProcessor(exit_budget=1.0)
            ctx = context({server.url!r})
            for _ in range(1_000):
                processor.process(conversion(ctx))
            """
        )
        elapsed = time.monotonic() - start
        assert done.returncode == 0, done.stderr
        assert server.got_request.is_set()
    assert elapsed < 1.0 + 3.0  # the budget plus interpreter start-up on a loaded machine
