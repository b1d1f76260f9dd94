"""Fixtures of the broker tests: a fresh redis-server per test, a 3-master Cluster, forwarder processes."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.broker.servers import ForwarderProcess, RedisCluster, RedisServer  # noqa: E402

from flagstream.broker.producer import RedisStreamDispatcher  # noqa: E402
from flagstream.collector import Collector  # noqa: E402


@pytest.fixture(autouse=True)
def _close_what_the_test_opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close the dispatchers a test made (a processor closes only those it made itself), then
    collect: a socket left open shows up as a ResourceWarning, an error, in this test rather
    than in whichever later test the garbage collector happens to run."""
    made: list[RedisStreamDispatcher] = []
    original = RedisStreamDispatcher.__init__

    def remember(self: RedisStreamDispatcher, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(RedisStreamDispatcher, "__init__", remember)
    yield
    for dispatcher in made:
        dispatcher.close()
    gc.collect()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    nodes = RedisCluster(tmp_path / "cluster")
    try:
        yield nodes.start()
    finally:
        nodes.stop()


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector(keep_raw_bodies=True) as running:
        yield running


@pytest.fixture
def forwarders() -> Iterator[Callable[..., ForwarderProcess]]:
    started: list[ForwarderProcess] = []

    def start(redis_url: str, name: str, endpoint: str, *extra: str) -> ForwarderProcess:
        process = ForwarderProcess(redis_url, name, endpoint, *extra)
        started.append(process)
        return process.wait_ready()

    yield start
    for process in started:
        if process.process.poll() is None:
            process.kill()
