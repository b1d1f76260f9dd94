"""The broker's parts on their own: layout, body splitting, settings, janitor, status, metrics, asyncio, CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.broker.helpers import EVENTS, pending_of, produce, stored_visitors, wait_until, write_body
from tests.broker.servers import ROOT, ForwarderProcess, RedisServer, free_port
from tests.collector.helpers import body_of, impression

from flagstream import _json
from flagstream.broker import AsyncRedisStreamDispatcher, Forwarder, ForwarderSettings, StreamLayout
from flagstream.broker.layout import Entry, MalformedEntry, key_slot
from flagstream.broker.metrics import MetricsServer
from flagstream.broker.posting import split_body
from flagstream.cli import main
from flagstream.collector import Collector
from flagstream.delivery import AsyncBatchEventProcessor
from flagstream.errors import ConfigurationError

_MADE: list[Forwarder] = []


def _forwarder(url: str, settings: ForwarderSettings) -> Forwarder:
    forwarder = Forwarder(url, settings)
    _MADE.append(forwarder)
    return forwarder


@pytest.fixture(autouse=True)
def _close_forwarders() -> Iterator[None]:
    yield
    while _MADE:
        _MADE.pop().close()


Start = Callable[..., ForwarderProcess]


@given(st.integers(min_value=1, max_value=64))
def test_every_shard_of_a_layout_gets_its_own_share_of_the_slot_space(shards: int) -> None:
    layout = StreamLayout(shards=shards)
    for k in range(shards):
        tag = layout.events(k).split("{", 1)[1].split("}", 1)[0]
        assert k * 16384 // shards <= key_slot(tag) < (k + 1) * 16384 // shards
        assert layout.dlq(k).split("}")[0] == layout.events(k).split("}")[0]  # one slot per shard


def test_every_name_the_broker_package_exports_exists_and_is_documented() -> None:
    import flagstream.broker as broker

    for name in broker.__all__:
        member = getattr(broker, name)
        if callable(member):
            assert member.__doc__, f"{name} has no docstring"


def test_key_slot_matches_redis_crc16() -> None:
    from redis.crc import key_slot as redis_slot

    for tag in ("s0", "s1-3", "flagstream", "123456789"):
        assert key_slot(tag) == redis_slot(tag.encode())


def test_layout_refuses_braces_and_bad_shard_counts() -> None:
    with pytest.raises(ConfigurationError):
        StreamLayout("a{b}")
    with pytest.raises(ConfigurationError):
        StreamLayout(shards=0)


@given(st.integers(min_value=2, max_value=40))
def test_split_body_keeps_the_envelope_and_every_visitor_in_order(n: int) -> None:
    body = body_of([impression(f"v{i}") for i in range(n)])
    halves = split_body(body)
    assert halves is not None
    original = _json.loads(body)
    parts = [_json.loads(h) for h in halves]
    assert [v for p in parts for v in p["visitors"]] == original["visitors"]
    for part in parts:
        assert {k: v for k, v in part.items() if k != "visitors"} == {
            k: v for k, v in original.items() if k != "visitors"
        }


def test_split_body_refuses_one_visitor_and_garbage() -> None:
    assert split_body(body_of([impression("one")])) is None
    assert split_body(b"not json") is None


def test_entry_decode_says_what_is_wrong() -> None:
    with pytest.raises(MalformedEntry, match="no body"):
        Entry.decode(b"1-0", {b"u": b"https://x"})
    with pytest.raises(MalformedEntry, match="headers"):
        Entry.decode(b"1-0", {b"b": b"{}", b"u": b"https://x", b"h": b"[1]"})
    with pytest.raises(MalformedEntry, match="unreadable"):
        Entry.decode(b"1-0", {b"b": b"{}", b"u": b"https://x", b"n": b"many"})


def test_a_blocking_read_longer_than_the_socket_timeout_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="block_ms"):
        ForwarderSettings(block_ms=6000, socket_timeout=5.0)
    with pytest.raises(ConfigurationError, match="post_timeout"):
        ForwarderSettings(min_idle=1.0, post_timeout=2.0)


def test_the_janitor_removes_idle_consumers_with_nothing_pending_and_never_one_with_pending(
    redis_server: RedisServer,
) -> None:
    produce(redis_server.url, ["j0", "j1"], batch_size=1)
    client = redis_server.client()
    client.xreadgroup("forwarders", "busy", {EVENTS: ">"}, count=1)  # one entry pending forever
    client.xgroup_createconsumer(EVENTS, "forwarders", "idle")
    settings = ForwarderSettings(name="janitor", janitor_idle=0.001, min_idle=60)
    forwarder = _forwarder(redis_server.url, settings)
    assert wait_until(lambda: min(c["idle"] for c in client.xinfo_consumers(EVENTS, "forwarders")) > 5, 5)
    forwarder.maintenance.janitor()
    names = {c["name"] for c in client.xinfo_consumers(EVENTS, "forwarders")}
    assert b"busy" in names
    assert b"idle" not in names
    assert forwarder.metrics.snapshot()["consumers_removed"] >= 1
    assert pending_of(client, "busy") == 1


def test_forward_status_reports_each_shard(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    for b in range(3):
        write_body(redis_server.url, body_of([impression(f"s{b}-{i}") for i in range(10)]))
    client = redis_server.client()
    client.xreadgroup("forwarders", "reader", {EVENTS: ">"}, count=1)
    assert main(["forward", "status", "--redis", redis_server.url, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["length"], row["lag"], row["pending"], row["consumers"], row["dead_letters"]) == (
        3,
        2,
        1,
        1,
        0,
    )
    assert row["oldest_pending_age"] is not None
    assert row["oldest_pending_age"] >= 0
    assert main(["forward", "status", "--redis", redis_server.url]) == 0
    assert "flagstream:events (forwarders)" in capsys.readouterr().out


def test_forward_status_without_redis_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forward", "status", "--redis", f"redis://127.0.0.1:{free_port()}/0"]) == 1
    assert "cannot read from Redis" in capsys.readouterr().err


def test_metrics_and_health_endpoints(redis_server: RedisServer) -> None:
    forwarder = _forwarder(redis_server.url, ForwarderSettings(name="m"))
    server = MetricsServer(forwarder.metrics, 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as response:
            text = response.read().decode()
        assert "flagstream_forwarder_acked_total 0" in text
        assert "flagstream_forwarder_up 1" in text
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=5) as response:
            assert response.status == 200
        forwarder.request_stop(0.1)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
        assert refused.value.code == 503
        refused.value.close()
    finally:
        server.close()


def test_flagstream_help_does_not_import_redis() -> None:
    code = "import sys, flagstream.cli; flagstream.cli.build_parser(); print('redis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_async_producer_delivers_and_is_rebuilt_after_fork(
    redis_server: RedisServer, collector: Collector, forwarders: Start
) -> None:
    async def produce_async(prefix: str, n: int) -> None:
        dispatcher = AsyncRedisStreamDispatcher(redis_server.url)
        processor = AsyncBatchEventProcessor(dispatcher, batch_size=10, flush_interval=0.05)
        for i in range(n):
            processor.process(impression(f"{prefix}-{i}"))
        report = await processor.aclose(timeout=10)
        assert report.pending == 0, report
        assert not report.dropped, report
        await dispatcher.aclose()

    asyncio.run(produce_async("parent", 20))
    pid = os.fork()
    if pid == 0:  # the child: a new loop, a new client, a new producer id
        try:
            asyncio.run(produce_async("child", 20))
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    fw = forwarders(redis_server.url, "fw", collector.events_url, "--min-idle", "5")
    assert collector.wait_for_events(40, 20)
    fw.stop()
    assert sorted(stored_visitors(collector)) == sorted(
        [f"parent-{i}" for i in range(20)] + [f"child-{i}" for i in range(20)]
    )
    producers = {fields[b"p"] for _, fields in redis_server.client().xrange(EVENTS)}
    assert len(producers) == 2


def test_forward_draws_a_live_view_in_a_terminal(redis_server: RedisServer) -> None:
    import pty
    import select
    import signal
    import time

    argv = [sys.executable, "-m", "flagstream", "forward", "--redis", redis_server.url, "--name", "tty",
            "--endpoint", "http://127.0.0.1:9/v1/events"]  # fmt: skip
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdout is the terminal
        os.chdir(ROOT)
        os.execv(sys.executable, argv)
    out = b""
    deadline = time.monotonic() + 20
    try:
        while b"healthy" not in out and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                out += os.read(fd, 65536)
        os.kill(pid, signal.SIGTERM)
        while time.monotonic() < deadline and b"finished_in_time" not in out:
            if select.select([fd], [], [], 0.2)[0]:
                out += os.read(fd, 65536)
    except OSError:  # the terminal closed as the child exited
        pass
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"flagstream forward: tty" in out
    assert b"consumers_removed" in out


def test_a_script_that_exits_without_close_hands_its_events_to_redis_at_exit(
    redis_server: RedisServer,
) -> None:
    # The first send happens in the exit drain, after the interpreter began shutting down.
    script = (
        "from flagstream import Optimizely\n"
        "from flagstream.demo import demo_datafile\n"
        f"client = Optimizely(demo_datafile(), event_processor_options={{'broker': {redis_server.url!r}, "
        "'flush_interval': 60})\n"
        "for i in range(7):\n"
        "    client.track('purchase', f'script-{i}')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "dropped" not in done.stderr
    entries = redis_server.client().xrange(EVENTS)
    assert sum(int(fields[b"n"]) for _, fields in entries) == 7


def test_lease_keeping_never_takes_back_an_entry_a_peer_owns(redis_server: RedisServer) -> None:
    produce(redis_server.url, ["mine", "theirs"], batch_size=1)
    client = redis_server.client()
    forwarder = _forwarder(redis_server.url, ForwarderSettings(name="me"))
    [[_, entries]] = client.xreadgroup("forwarders", "me", {EVENTS: ">"}, count=2)
    ids = [entry_id for entry_id, _ in entries]
    forwarder.leases.hold(0, ids)
    client.xclaim(EVENTS, "forwarders", "peer", 0, [ids[1]])  # a peer took the second one
    forwarder.maintenance.keep_leases()
    records = forwarder.leases.records(0, ids)
    assert not records[ids[0]].lost
    assert records[ids[1]].lost
    owners = {
        row["message_id"]: row["consumer"]
        for row in client.xpending_range(EVENTS, "forwarders", "-", "+", 10)
    }
    assert owners == {ids[0]: b"me", ids[1]: b"peer"}


def test_acks_use_xack_on_redis_7_and_fall_back_from_a_refused_xackdel(redis_server: RedisServer) -> None:
    produce(redis_server.url, ["a", "b"], batch_size=1)
    client = redis_server.client()
    forwarder = _forwarder(redis_server.url, ForwarderSettings(name="acker"))
    [[_, entries]] = client.xreadgroup("forwarders", "acker", {EVENTS: ">"}, count=2)
    forwarder._ack(0, [entries[0][0]])
    assert forwarder.use_xackdel is False  # Redis 7.0: no XACKDEL
    forwarder.use_xackdel = True  # as if the server claimed 8.2 but refused the command
    forwarder._ack(0, [entries[1][0]])
    assert forwarder.use_xackdel is False
    assert pending_of(client) == 0
