"""Where the broker meets the durable spool: a producer that cannot reach Redis keeps its events on disk.

With ``{"spool": DIR, "broker": URL}`` the spool sits in front of the
RedisStreamDispatcher: a failed XADD is a retryable result, an event whose
retries run out stays in the spool, and whoever opens the directory next
(the same process later, or a new one after a crash) sends it to the stream.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.broker.servers import RedisServer, wait_until

ROOT = Path(__file__).resolve().parents[2]
DATAFILE = ROOT / "tests" / "fixtures" / "basic_datafile.json"

_APP = """
import json, os, sys, time
import flagstream
from flagstream.delivery import RetryPolicy
from flagstream.events.ids import format_uuid
datafile, spool, broker, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
class Seen:
    uuids = []
client = flagstream.Optimizely(
    open(datafile).read(),
    event_processor_options={
        "spool": spool, "broker": broker, "flush_interval": 0.05,
        "retry": RetryPolicy(deadline=0.5, backoff_base=0.05, backoff_max=0.1),
    },
)
processor = client.event_processor
original = processor.process
def process(event):
    original(event)
    Seen.uuids.append(format_uuid(event.uuid))
processor.process = process
for i in range(count):
    client.track("purchase", f"user-{i}", {"age": 30})
print(json.dumps(Seen.uuids), flush=True)
if count:
    time.sleep(3600)  # killed by the test, with Redis still down
else:
    deadline = time.monotonic() + 30
    while processor.stats().replayed < int(sys.argv[5]) and time.monotonic() < deadline:
        time.sleep(0.05)
    print(json.dumps({"replayed": processor.stats().replayed}), flush=True)
    client.close()
"""


def _app(spool: Path, url: str, count: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _APP, str(DATAFILE), str(spool), url, str(count), *extra],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def test_events_made_while_redis_is_down_wait_in_the_spool_and_survive_a_crash(
    tmp_path, collector, forwarders
):
    spool = tmp_path / "spool"
    redis = RedisServer(tmp_path / "redis")  # a port, and nobody listening on it yet
    app = _app(spool, redis.url, 200)
    assert app.stdout is not None
    made = json.loads(app.stdout.readline())
    assert len(made) == 200
    # Retries against the missing Redis run out (0.5 s) and the events stay on disk.
    assert wait_until(
        lambda: any(p.name.endswith(".seg") and p.stat().st_size > 40 for p in spool.iterdir()), 5
    )
    app.send_signal(signal.SIGKILL)
    app.wait(10)
    app.stdout.close()

    redis.start()
    try:
        forwarders(redis.url, "f1", collector.events_url)
        later = _app(spool, redis.url, 0, "200")  # adopts the dead app's files and sends them to Redis
        out, _ = later.communicate(timeout=60)
        assert later.returncode == 0
        assert json.loads(out.splitlines()[-1])["replayed"] == 200
        assert wait_until(lambda: collector.event_count() >= 200, 30)
        stored = set()
        for body in collector.raw_bodies():
            for visitor in json.loads(body)["visitors"]:
                stored.update(e["uuid"] for s in visitor["snapshots"] for e in s["events"])
        assert stored == set(made)
        assert not [p for p in spool.iterdir() if p.name.endswith(".seg") and p.stat().st_size > 40]
    finally:
        redis.stop()
