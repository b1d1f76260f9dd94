"""gunicorn --preload workers and a 3-master Redis Cluster, each with real forwarder processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.cluster
from tests.broker.helpers import poisoned_body, stored_visitors, wait_until
from tests.broker.servers import ROOT, ForwarderProcess, RedisCluster, RedisServer, free_port
from tests.collector.helpers import impression

from flagstream.broker import RedisStreamDispatcher
from flagstream.broker.layout import StreamLayout
from flagstream.collector import Collector
from flagstream.delivery import BatchEventProcessor

Start = Callable[..., ForwarderProcess]

APP = """
import os
from flagstream import Optimizely
from flagstream.demo import demo_datafile

# A long flush interval: the master's events are still queued when it forks, and every
# process delivers its queue at exit (the exit drain), so a child that inherited the
# master's queue would send those events again.
client = Optimizely(demo_datafile(), event_processor_options={{"broker": {url!r}, "flush_interval": 60}})
for i in range(5):
    client.track("purchase", f"parent-{{i}}")

def app(environ, start_response):
    user = environ["QUERY_STRING"].split("=", 1)[1]
    client.track("purchase", user)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
"""


def test_gunicorn_preload_children_deliver_their_own_events_exactly_once(
    redis_server: RedisServer, collector: Collector, forwarders: Start, tmp_path: Path
) -> None:
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    if gunicorn is None:
        pytest.fail("gunicorn is a dev dependency; reinstall with make test")
    (tmp_path / "brokerapp.py").write_text(APP.format(url=redis_server.url))
    port = free_port()
    server = subprocess.Popen(
        [gunicorn, "--preload", "-w", "2", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "10", "brokerapp:app"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{tmp_path}"},
    )  # fmt: skip
    try:

        def get(user: str) -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/?user={user}", timeout=5) as response:
                return str(response.read().decode())

        assert wait_until(lambda: get("warmup"), 30)
        pids = Counter(get(f"child-{i}") for i in range(60))
    finally:
        server.send_signal(signal.SIGTERM)  # workers drain their processors at exit
        _, stderr = server.communicate(timeout=30)
    assert server.returncode == 0, stderr.decode()[-2000:]
    fw = forwarders(redis_server.url, "fw", collector.events_url, "--min-idle", "5")
    expected = [f"parent-{i}" for i in range(5)] + [f"child-{i}" for i in range(60)] + ["warmup"]
    if not collector.wait_for_events(len(expected), 30):
        missing = sorted(set(expected) - set(stored_visitors(collector)))
        pytest.fail(f"missing {len(missing)}: {missing[:10]}; gunicorn said: {stderr.decode()[-3000:]}")
    fw.stop()
    visitors = stored_visitors(collector)
    assert sorted(visitors) == sorted(expected)
    assert collector.state.store.duplicate_count == 0  # nothing arrived twice: not the parent's either
    received = Counter(v for body in collector.raw_bodies() for v in _visitor_ids(body))
    assert all(n == 1 for n in received.values()), received.most_common(3)
    assert len(pids) >= 1


def _visitor_ids(body: bytes) -> list[str]:
    return [v["visitor_id"] for v in json.loads(body)["visitors"]]


def test_a_three_master_cluster_spreads_shards_and_forwarders_drain_every_shard(
    cluster: RedisCluster, collector: Collector, forwarders: Start
) -> None:
    layout = StreamLayout(shards=3)
    client = redis.cluster.RedisCluster.from_url(cluster.url)
    owners = {client.get_node_from_key(layout.events(k)).port for k in range(3)}
    assert len(owners) == 3  # one shard per master
    users: list[str] = []
    for p in range(3):  # three producers, each spreading its requests over the shards
        dispatcher = RedisStreamDispatcher(cluster.url, shards=3)
        processor = BatchEventProcessor(dispatcher, batch_size=10, flush_interval=0.05)
        for i in range(300):
            users.append(f"c{p}-{i}")
            processor.process(impression(users[-1]))
        report = processor.close(timeout=20)
        assert report.pending == 0
        assert not report.dropped
        assert dispatcher.counters.failures == 0
    lengths = [client.xlen(layout.events(k)) for k in range(3)]
    assert all(n > 0 for n in lengths)
    assert sum(int(f[b"n"]) for k in range(3) for _, f in client.xrange(layout.events(k))) == 900
    body, bad = poisoned_body(good=3)  # a dead letter: XADD to the DLQ + XACK in one MULTI per shard
    RedisStreamDispatcher(cluster.url, shards=3, shard=2).send(_log_event(body))
    fleet = [forwarders(cluster.url, f"cfw{i}", collector.events_url, "--shards", "3", "--min-idle", "5")
             for i in range(2)]  # fmt: skip
    assert collector.wait_for_events(len(users) + 3, 30)
    assert wait_until(lambda: client.xlen(layout.dlq(2)) == 1, 10)
    assert bad not in stored_visitors(collector)
    for k in range(3):
        assert wait_until(lambda k=k: client.xpending(layout.events(k), "forwarders")["pending"] == 0, 10)
    summaries = [fw.stop() for fw in fleet]
    client.close()
    assert all(s["redis_errors"] == 0 for s in summaries), summaries
    for fw in fleet:
        assert b"CROSSSLOT" not in fw.stderr
    client.close()


def _log_event(body: bytes) -> object:
    from flagstream.events.log_event import LogEvent

    return LogEvent("https://logx.optimizely.com/v1/events", body=body)
