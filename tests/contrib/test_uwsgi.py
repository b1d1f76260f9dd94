"""uWSGI: a client built in the master before the fork; install()'s hooks deliver every event."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.contrib.helpers import BIN, Server, assert_each_event_once, free_port, hit, server_env

from flagstream.collector import Collector

UWSGI = BIN / "uwsgi"


@pytest.fixture(autouse=True)
def _needs_uwsgi() -> None:
    if not UWSGI.exists():
        if os.environ.get("CI"):
            pytest.fail("uwsgi is not installed in the venv (it is in the dev extra)")
        pytest.skip("uwsgi is not installed in the venv (pip install uwsgi)")


def test_workers_forked_from_the_master_deliver_every_event_once(
    collector: Collector, tmp_path: Path
) -> None:
    # Without lazy-apps the app (and its client) is built in the master; uWSGI forks the
    # workers in C and, by default, runs none of Python's at-fork hooks: install()'s postfork
    # hook runs flagstream's reset (without it sibling workers draw the same event uuids).
    port = free_port()
    fifo = tmp_path / "master.fifo"
    server = Server(
        [
            str(UWSGI), "--http-socket", f"127.0.0.1:{port}", "--master", "--processes", "2",
            "--enable-threads", "--need-app", "--master-fifo", str(fifo),
            "--module", "tests.contrib.apps.uwsgi_app:application",
        ],
        server_env(collector),
    )  # fmt: skip
    try:
        server.wait_for("spawned uWSGI worker 2")
        answers = hit(port, 100)
        assert collector.event_count() == 0  # queued in the workers
        fifo.write_text("q")  # uWSGI's graceful shutdown: workers finish, then run uwsgi.atexit
        code = server.stop(None)
    finally:
        server.kill()
    assert code == 0, server.output
    assert {a["user"] for a in answers} == {f"user-{i}" for i in range(100)}
    assert sum("uWSGI worker closed" in line for line in server.seen) == 2, server.output
    assert_each_event_once(collector, users=100)
