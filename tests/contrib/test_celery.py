"""Celery: a real worker on Celery's filesystem transport; events from tasks reach the collector."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

pytest.importorskip("celery")

from celery import Celery
from tests.contrib.apps.common import DATAFILE, filesystem_broker
from tests.contrib.helpers import BIN, Server, assert_each_event_once, server_env

from flagstream.collector import Collector
from flagstream.contrib.celery import Flagstream
from flagstream.errors import ConfigurationError

TASKS = 12


def _task_pids(worker: Server) -> set[str]:
    """The child pids in the worker's "succeeded in 0.01s: 'treatment@1234'" lines."""
    return {line.rsplit("@", 1)[1].strip(" '\n") for line in worker.seen if "succeeded in" in line}


def _producer(broker: Path) -> Celery:
    """A client of the same broker directory, as a web process sending tasks would be."""
    app = Celery("producer")
    app.conf.update(broker_url="filesystem://", broker_transport_options=filesystem_broker(broker))
    return app


@pytest.fixture
def broker(tmp_path: Path) -> Path:
    for sub in ("queue", "processed", "control"):
        (tmp_path / sub).mkdir()
    return tmp_path


def _worker(collector: Collector, broker: Path, *args: str, **env: str) -> Server:
    return Server(
        [
            str(BIN / "celery"), "-A", "tests.contrib.apps.celery_app", "worker",
            "--pool", "prefork", "--concurrency", "2", "--loglevel", "INFO", "--without-heartbeat",
            "--without-mingle", "--without-gossip", *args,
        ],
        server_env(collector, FLAGSTREAM_TEST_BROKER_DIR=str(broker), **env),
    )  # fmt: skip


def _send(broker: Path, n: int) -> None:
    producer = _producer(broker)
    for i in range(n):
        producer.send_task("checkout", args=[f"user-{i}"])
    producer.close()


def _run_tasks_then_stop(worker: Server, collector: Collector, broker: Path) -> set[str]:
    """Send the tasks, wait until their events are stored while the worker runs, stop it: the pids."""
    try:
        worker.wait_for("ready.", timeout=60)
        _send(broker, TASKS)
        worker.wait_for_count("succeeded in", TASKS, timeout=60)
        assert collector.wait_for_events(2 * TASKS, timeout=20), collector.event_count()
        code = worker.stop(signal.SIGTERM, timeout=60)
    finally:
        worker.kill()
    assert code == 0, worker.output
    assert_each_event_once(collector, users=TASKS)
    return _task_pids(worker)


def test_children_recycled_after_each_task_deliver_every_event(collector: Collector, broker: Path) -> None:
    # No flush after tasks, and the client holds events for 10 minutes: each child's events
    # can only leave through worker_process_shutdown as --max-tasks-per-child 1 recycles it.
    worker = _worker(collector, broker, "--max-tasks-per-child", "1")
    pids = _run_tasks_then_stop(worker, collector, broker)
    assert len(pids) == TASKS  # every task ran in a new child process


def test_flush_after_task_delivers_while_the_worker_runs(collector: Collector, broker: Path) -> None:
    # The children live on until the worker stops: only task_postrun's flush can send the events
    # that _run_tasks_then_stop waits for before it stops the worker.
    worker = _worker(collector, broker, FLAGSTREAM_TEST_FLUSH_AFTER_TASK="5")
    pids = _run_tasks_then_stop(worker, collector, broker)
    assert len(pids) <= 2  # the two children of --concurrency 2 ran them all


def test_configuration_mistakes_raise_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="needs a factory"):
        Flagstream()
    with pytest.raises(ConfigurationError, match="not both"):
        Flagstream(lambda: None, datafile=DATAFILE)  # type: ignore[arg-type, return-value]
    with pytest.raises(ConfigurationError, match="flush_after_task"):
        Flagstream(datafile=DATAFILE, flush_after_task=0)
