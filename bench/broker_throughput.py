"""Scale-out through Redis Streams beside direct HTTP delivery, measured in one run.

1. Caller cost of ``track`` and ``decide`` (p50/p99, µs): the default client
   delivering over HTTP to the sink, and the same client with
   ``event_processor_options={"broker": url}``; alternating rounds.
2. Producer throughput of one process: events/s from ``process()`` until every
   event is in Redis (RedisStreamDispatcher) or at the sink (HttpDispatcher),
   and raw ``send`` rate in requests/s of 100-event bodies.
3. Forwarder throughput with 1, 2 and 4 ``flagstream forward`` processes
   against the sink: the stream is filled with 100-event bodies after the
   forwarders are reading, and the clock runs until the sink counted them all.
4. End-to-end latency from ``track`` to the sink (p50/p99), with the
   processors' default 1 s flush interval and with 0.05 s, direct and brokered.

Needs ``redis-server`` on PATH. Usage: ``python bench/broker_throughput.py [--quick]``.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import redis  # noqa: E402
from _common import BASIC_DATAFILE, machine_info, percentile, sample, table  # noqa: E402
from delivery_collector import CollectorProcess  # noqa: E402
from tests.broker.servers import free_port, wait_until  # noqa: E402
from tests.collector.helpers import body_of, impression  # noqa: E402

from flagstream import Optimizely  # noqa: E402
from flagstream.broker import RedisStreamDispatcher  # noqa: E402
from flagstream.broker.layout import StreamLayout, entry_fields  # noqa: E402
from flagstream.delivery import BatchEventProcessor, HttpDispatcher  # noqa: E402
from flagstream.events.log_event import LogEvent  # noqa: E402

QUICK = "--quick" in sys.argv
ATTRS = {"country": "de", "age": 30}


def start_redis(directory: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", directory],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis(port=port)
    assert wait_until(client.ping, 10)
    client.close()
    return process, url


def caller_cost(sink_url: str, redis_url: str) -> list[list[str]]:
    direct = Optimizely(BASIC_DATAFILE, event_endpoint=sink_url)
    broker = Optimizely(BASIC_DATAFILE, event_processor_options={"broker": redis_url})
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(3 if QUICK else 8):
        for name, client in (("direct HTTP", direct), ("Redis broker", broker)):
            users = [client.create_user_context(f"user-{i}", ATTRS) for i in range(64)]
            ops = {
                "track": lambda i, c=client: c.track("purchase", f"user-{i & 1023}", ATTRS),
                "decide": lambda i, u=users: u[i & 63].decide("banner"),
            }
            for op, fn in ops.items():
                results.setdefault((op, name), []).extend(sample(fn, 2000))
            client.flush(10)
    direct.close()
    broker.close()
    rows = []
    for op in ("track", "decide"):
        d, b = results[(op, "direct HTTP")], results[(op, "Redis broker")]
        rows.append([op, f"{percentile(d, 0.5):.1f}", f"{percentile(d, 0.99):.1f}",
                     f"{percentile(b, 0.5):.1f}", f"{percentile(b, 0.99):.1f}",
                     f"{percentile(b, 0.5) / percentile(d, 0.5):.2f}"])  # fmt: skip
    return rows


def producer_throughput(sink: CollectorProcess, redis_url: str) -> list[list[str]]:
    n = 50_000 if QUICK else 200_000
    events = [impression(f"p{i}") for i in range(n)]
    rows = []
    before = sink.count()
    for name, dispatcher in (
        ("direct HTTP (HttpDispatcher)", HttpDispatcher(endpoint=sink.events_url)),
        ("Redis broker (RedisStreamDispatcher)", RedisStreamDispatcher(redis_url, stream="bench:producer")),
    ):
        processor = BatchEventProcessor(dispatcher, max_queue_events=n + 1, max_queue_bytes=1 << 30)
        started = time.perf_counter()
        for event in events:
            processor.process(event)
        report = processor.close(timeout=120)
        took = time.perf_counter() - started
        assert report.pending == 0
        assert not report.dropped, report
        assert not processor.stats().dropped, processor.stats()
        rows.append([name, f"{n / took:,.0f}"])
        if isinstance(dispatcher, HttpDispatcher):
            assert sink.wait_for(before + n, 60) is not None
    body = body_of([impression(f"raw{i}") for i in range(100)])
    dispatcher = RedisStreamDispatcher(redis_url, stream="bench:raw")
    log_event = LogEvent("https://logx.optimizely.com/v1/events", body=body)
    count = 2000 if QUICK else 10_000
    started = time.perf_counter()
    for _ in range(count):
        assert dispatcher.send(log_event).ok
    took = time.perf_counter() - started
    rows.append([f"send() of {len(body):,}-byte 100-event bodies, one thread",
                 f"{count / took:,.0f} requests/s = {count * 100 / took:,.0f} events/s"])  # fmt: skip
    dispatcher.close()
    return rows


def _cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def forwarder_throughput(sink: CollectorProcess, redis_url: str, fleet: int, entries: int) -> list[str]:
    stream = f"bench:fw{fleet}"
    layout = StreamLayout(stream)
    client = redis.Redis.from_url(redis_url)
    client.xgroup_create(layout.events(0), "forwarders", id="0", mkstream=True)
    processes = []
    for i in range(fleet):
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "flagstream", "forward", "--redis", redis_url, "--stream", stream,
             "--name", f"bench-{fleet}-{i}", "--endpoint", sink.events_url, "--no-live",
             "--concurrency", "4", "--window", "50"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT,
        ))  # fmt: skip
    for p in processes:
        assert p.stdout is not None
        assert "reading" in p.stdout.readline().decode()
    before = sink.count()
    sink_pid = sink._proc.pid
    cpu_before = [_cpu(p.pid) for p in processes], _cpu(sink_pid), _redis_cpu(client)
    prefix = f"f{fleet}"
    bodies = [body_of([impression(f"{prefix}-{e}-{i}") for i in range(100)]) for e in range(entries)]
    started = time.monotonic()
    pipe = client.pipeline(transaction=False)
    for e, body in enumerate(bodies):
        pipe.xadd(
            layout.events(0), entry_fields(LogEvent("https://x/v1/events", body=body), body, b"bench", e)
        )
        if e % 200 == 199:
            pipe.execute()
    pipe.execute()
    done = sink.wait_for(before + entries * 100, 120)
    fw_cpu = sum(_cpu(p.pid) for p in processes) - sum(cpu_before[0])
    sink_cpu = _cpu(sink_pid) - cpu_before[1]
    redis_cpu = _redis_cpu(client) - cpu_before[2]
    for p in processes:
        p.send_signal(signal.SIGTERM)
    for p in processes:
        p.communicate(timeout=30)
    client.close()
    assert done is not None, "the sink did not receive every event"
    wall = done - started
    return [str(fleet), f"{entries * 100 / wall:,.0f}", f"{wall:.2f}", f"{fw_cpu / wall:.2f}",
            f"{redis_cpu / wall:.2f}", f"{sink_cpu / wall:.2f}", machine_info().rsplit("load ", 1)[1]]  # fmt: skip


def _redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"] + info["used_cpu_sys"])


class _LatencySink(BaseHTTPRequestHandler):
    """Records (arrival ms - event timestamp ms) for every event; in this process (small rates only)."""

    protocol_version = "HTTP/1.1"
    latencies: list[float] = []  # noqa: RUF012
    _TS = re.compile(rb'"timestamp":(\d+)')

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        now = time.time() * 1000
        self.latencies.extend(now - int(ts) for ts in self._TS.findall(body))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def end_to_end(redis_url: str) -> list[list[str]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LatencySink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1/events"
    fw = subprocess.Popen(
        [sys.executable, "-m", "flagstream", "forward", "--redis", redis_url, "--stream", "bench:e2e",
         "--name", "e2e", "--endpoint", url, "--no-live", "--block-ms", "1000"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    assert fw.stdout is not None
    fw.stdout.readline()
    rows = []
    calls = 300 if QUICK else 1000
    for flush in (1.0, 0.05):
        for name in ("direct HTTP", "Redis broker"):
            options: dict[str, object] = {"flush_interval": flush}
            if name == "Redis broker":
                options["broker"] = redis_url
            client = Optimizely(BASIC_DATAFILE, event_endpoint=url, event_processor_options=options)
            if name == "Redis broker":  # the bench stream, not the default one
                client.event_processor.event_dispatcher.layout = StreamLayout("bench:e2e")
            _LatencySink.latencies = []
            for i in range(calls):
                client.track("purchase", f"e2e-{i}", ATTRS)
                time.sleep(0.002)  # ~400 calls/s: latency at a steady, modest rate
            client.flush(10)
            assert wait_until(lambda: len(_LatencySink.latencies) >= calls, 20)
            lat = _LatencySink.latencies
            rows.append(
                [
                    f"{name}, flush_interval {flush} s",
                    f"{percentile(lat, 0.5):.0f}",
                    f"{percentile(lat, 0.99):.0f}",
                ]
            )
            client.close()
    fw.send_signal(signal.SIGTERM)
    fw.communicate(timeout=30)
    server.shutdown()
    return rows


def main() -> int:
    print(machine_info())
    with tempfile.TemporaryDirectory() as tmp, CollectorProcess(server="sink") as sink:
        process, url = start_redis(tmp)
        try:
            print("\n1. caller cost, µs per call")
            print(table(["op", "direct p50", "direct p99", "broker p50", "broker p99", "broker/direct p50"],
                        caller_cost(sink.events_url, url)))  # fmt: skip
            print(f"   ({machine_info()})")
            print("\n2. producer throughput, one process, events/s into Redis vs to the sink")
            print(table(["path", "rate"], producer_throughput(sink, url)))
            print(f"   ({machine_info()})")
            print("\n3. forwarder throughput against the sink, 100-event bodies")
            entries = 1000 if QUICK else 3000
            rows = [forwarder_throughput(sink, url, fleet, entries) for fleet in (1, 2, 4)]
            print(table(["forwarders", "events/s", "wall s", "forwarder cores", "redis cores", "sink cores", "load"],
                        rows))  # fmt: skip
            print("\n4. end-to-end latency, track() to the sink, ms")
            print(table(["path", "p50", "p99"], end_to_end(url)))
            print(f"   ({machine_info()})")
            info = redis.Redis.from_url(url).info("cpu")
            print(json.dumps({"redis_cpu_seconds": info["used_cpu_user"] + info["used_cpu_sys"]}))
        finally:
            process.terminate()
            process.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
