"""The durable spool: what it adds to the caller, how fast a backlog replays, what it costs on disk.

Three measurements, each with the spool on and off in the same run:

* ``cost``: caller cost of ``track`` and ``decide`` (with its impression) for a
  client without a spool and one with a spool, each in its own process (one
  client per process, as in an application), in alternating rounds that this
  process asks for over pipes (all over a dispatcher that drops requests, so
  delivery runs at full speed behind the caller). Reports p50/p99/p99.9 and the added cost.
  ``--dirs`` picks where the spool lives (default: a temporary directory on
  the disk that holds /tmp, and /dev/shm).
* ``replay``: a child process writes ``--backlog`` events to a spool and dies
  without closing it; this process adopts the directory and delivers the
  backlog to the lean sink (``delivery_collector.py``, its own process) while
  a live thread calls ``track`` at ``--live-rate`` calls/s. Reports the replay
  rate, and the live caller's p50 and its events' delivery during the drain
  against the same live load alone.
* ``bytes``: segment bytes on disk per event against the event's JSON in a request body.
* ``design``: the two designs the spool chose between, on the caller's thread with
  the same event bytes: one ``EventSpool.append`` (serialize, frame, one
  ``os.write``) against one SQLite insert committed in WAL mode with
  ``synchronous=NORMAL`` (crash-safe, no fsync per commit), one connection per
  writer as one process would hold; and the same with four writer threads
  contending, as four gunicorn workers sharing one database file would.

    .venv/bin/python bench/spool.py [cost|replay|design|all] [--rounds 10] [--cost-calls 10000] [--calls 2000] [--backlog 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import BASIC_DATAFILE, machine_info, median, percentile, sample, table

import flagstream
from flagstream.delivery import BatchEventProcessor

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from delivery_collector import CollectorProcess  # noqa: E402

ATTRIBUTES = {"age": 30, "country": "de"}


class DropDispatcher:
    def dispatch_event(self, log_event: object) -> None:
        pass


def _client(spool: str | None, endpoint: str | None = None):
    """A client over a dispatcher that drops requests, or, with ``endpoint``, one that posts there."""
    dispatcher = None if endpoint else DropDispatcher()
    processor = BatchEventProcessor(dispatcher, spool=spool or False)
    return flagstream.Optimizely(BASIC_DATAFILE, event_processor=processor, event_endpoint=endpoint)


def _ops(client):
    users = [client.create_user_context(f"user-{i}", ATTRIBUTES) for i in range(64)]
    return {
        "track": lambda i: client.track("purchase", f"user-{i & 1023}", ATTRIBUTES),
        "decide": lambda i: users[i & 63].decide("banner"),
    }


_COST_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from _common import sample
from spool import _client, _ops
client = _client(sys.argv[2] or None)
ops = _ops(client)
for op in ops.values():  # warm up caches and the first segment
    sample(op, 500)
print("ready", flush=True)
for line in sys.stdin:
    name, calls = line.split()
    print(json.dumps(sample(ops[name], int(calls))), flush=True)
client.close()
"""


class _CostChild:
    """One client in its own process, timing rounds of calls when asked (over its pipes)."""

    def __init__(self, spool: str | None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _COST_CHILD, str(HERE), spool or ""],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("a cost child did not start")

    def run(self, op: str, calls: int) -> list[float]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(f"{op} {calls}\n")
        self.process.stdin.flush()
        return [float(v) for v in json.loads(self.process.stdout.readline())]

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


def cost(args: argparse.Namespace) -> None:
    # One client per process, as in an application. Three clients in one process measured
    # each other: a spool on /tmp showed +200-260 us of p99 that it does not have alone.
    dirs = args.dirs.split(",") if args.dirs else [tempfile.gettempdir(), "/dev/shm"]
    made = []
    children = {"off": _CostChild(None)}
    for base in dirs:
        if os.path.isdir(base):
            path = tempfile.mkdtemp(prefix="flagstream-bench-spool-", dir=base)
            made.append(path)
            children[f"on ({base})"] = _CostChild(path)
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for op_name in ("track", "decide"):
            for name, child in children.items():
                samples.setdefault((name, op_name), []).extend(child.run(op_name, args.cost_calls))
    print(f"caller cost, {args.rounds} rounds x {args.cost_calls} calls, {machine_info()}")
    rows = []
    for op_name in ("track", "decide"):
        base = samples[("off", op_name)]
        for name in children:
            values = samples[(name, op_name)]
            added = (
                ""
                if name == "off"
                else (
                    f"+{median(values) - median(base):.2f} / +{percentile(values, 0.99) - percentile(base, 0.99):.1f}"
                )
            )
            rows.append(
                [
                    op_name,
                    name,
                    f"{median(values):.2f}",
                    f"{percentile(values, 0.99):.1f}",
                    f"{percentile(values, 0.999):.1f}",
                    added,
                ]
            )
    print(table(["call", "spool", "p50 us", "p99 us", "p99.9 us", "added p50 / p99 us"], rows))
    for child in children.values():
        child.close()
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


_WRITER = """
import os, sys
import flagstream
from flagstream.delivery import BatchEventProcessor
datafile, directory, endpoint, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
class Down:
    def dispatch_event(self, log_event):
        raise ConnectionError("the Event API is down")
processor = BatchEventProcessor(Down(), spool={"directory": directory, "max_bytes": 4 << 30},
                                start_on_init=False)
client = flagstream.Optimizely(open(datafile).read(), event_processor=processor, event_endpoint=endpoint)
attrs = {"age": 30, "country": "de"}
for i in range(n):
    client.track("purchase", f"user-{i}", attrs)
print(processor.stats().enqueued, flush=True)
os._exit(0)  # dies without closing: the files stay for the next process
"""


def _live_load(client, rate: float, stop: threading.Event, out: list[float]) -> None:
    period = 1.0 / rate
    clock = time.perf_counter_ns
    next_at = time.monotonic()
    i = 0
    while not stop.is_set():
        start = clock()
        client.track("purchase", f"live-{i}", ATTRIBUTES)
        out.append((clock() - start) / 1000)
        i += 1
        next_at += period
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)


def replay(args: argparse.Namespace) -> None:
    directory = tempfile.mkdtemp(prefix="flagstream-bench-backlog-")
    datafile = directory + ".json"
    Path(datafile).write_text(BASIC_DATAFILE)
    with CollectorProcess(server="sink") as sink:
        started = time.monotonic()
        writer = subprocess.run(
            [sys.executable, "-c", _WRITER, datafile, directory, sink.events_url, str(args.backlog)],
            capture_output=True,
            text=True,
            check=True,
        )
        written = int(writer.stdout.split()[-1])
        wrote_for = time.monotonic() - started
        seg_bytes = sum(p.stat().st_size for p in Path(directory).glob("*.seg"))
        sample_body = _sample_body_bytes()
        print(f"backlog: {written:,} track events written in {wrote_for:.1f} s by a process that then died")
        print(
            f"disk: {seg_bytes / written:.1f} bytes per event in segments; the same event is "
            f"{sample_body:.1f} bytes of JSON in a request body ({seg_bytes / written / sample_body:.3f}x)"
        )

        # The live load alone first (its own spool), then the same load while the backlog drains.
        base = _live_phase(sink, None, args)
        processor = BatchEventProcessor(spool={"directory": directory, "max_bytes": 4 << 30})
        live_dir = tempfile.mkdtemp(prefix="flagstream-bench-live-")
        client = _client(live_dir, endpoint=sink.events_url)
        stop = threading.Event()
        live: list[float] = []
        thread = threading.Thread(target=_live_load, args=(client, args.live_rate, stop, live))
        t0 = time.monotonic()
        before = sink.count()
        thread.start()
        while processor.stats().replayed + processor.stats().dropped_total < written:
            if time.monotonic() - t0 > 600:
                break
            time.sleep(0.05)
        drained_for = time.monotonic() - t0
        live_during, accepted_during = sink.count() - before - processor.stats().replayed, len(live)
        stop.set()
        thread.join()
        client.close()
        processor.close()
        replayed, dropped = processor.stats().replayed, processor.stats().dropped_total
        print(
            f"replay: {written:,} events in {drained_for:.1f} s = {written / drained_for:,.0f} events/s "
            f"(replayed {replayed:,}, dropped {dropped:,})"
        )
        rows = [
            [
                "alone",
                f"{median(base[0]):.2f}",
                f"{percentile(base[0], 0.99):.1f}",
                f"{base[1]:,} of {len(base[0]):,}",
            ],
            [
                "during the replay",
                f"{median(live):.2f}",
                f"{percentile(live, 0.99):.1f}",
                f"{live_during:,} of {accepted_during:,} while it ran",
            ],
        ]
        headers = [f"live track at {args.live_rate:.0f}/s", "caller p50 us", "caller p99 us", "delivered"]
        print(table(headers, rows))
        print(
            f"live caller p50 during the replay: {median(live) / median(base[0]):.2f}x alone; {machine_info()}"
        )
        shutil.rmtree(live_dir, ignore_errors=True)
    shutil.rmtree(directory, ignore_errors=True)
    os.unlink(datafile)


def _live_phase(sink: CollectorProcess, _unused: object, args: argparse.Namespace) -> tuple[list[float], int]:
    live_dir = tempfile.mkdtemp(prefix="flagstream-bench-live-")
    client = _client(live_dir, endpoint=sink.events_url)
    stop = threading.Event()
    live: list[float] = []
    before = sink.count()
    thread = threading.Thread(target=_live_load, args=(client, args.live_rate, stop, live))
    thread.start()
    stop.wait(args.live_seconds)
    stop.set()
    thread.join()
    client.close()
    delivered = sink.count() - before
    shutil.rmtree(live_dir, ignore_errors=True)
    return live, delivered


def _sample_body_bytes() -> float:
    from flagstream.testing import CapturingEventDispatcher

    capture = CapturingEventDispatcher()
    client = flagstream.Optimizely(
        BASIC_DATAFILE, event_processor=BatchEventProcessor(capture, batch_size=500)
    )
    for i in range(1000):
        client.track("purchase", f"user-{i}", ATTRIBUTES)
    client.close()
    return sum(len(b) for b in capture.bodies()) / 1000


def design(args: argparse.Namespace) -> None:
    import sqlite3

    from flagstream.delivery.spool import EventSpool
    from flagstream.events.payload import visitor_bytes

    class Keep:
        def __init__(self) -> None:
            self.events: list[object] = []

        def process(self, event: object) -> None:
            self.events.append(event)

        def stop(self) -> None:
            pass

    keep = Keep()
    client = flagstream.Optimizely(BASIC_DATAFILE, event_processor=keep)
    for i in range(1000):
        client.track("purchase", f"user-{i}", ATTRIBUTES)
    events = keep.events
    root = tempfile.mkdtemp(prefix="flagstream-bench-design-")
    spool = EventSpool(os.path.join(root, "spool"), max_bytes=8 << 30, segment_bytes=64 << 20)
    db = sqlite3.connect(os.path.join(root, "spool.db"), isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")

    def sqlite_put(i: int) -> None:
        db.execute("INSERT INTO events (body) VALUES (?)", (visitor_bytes(events[i % 1000]),))  # type: ignore[arg-type]

    rows = []
    for _ in range(3):
        seg = sample(lambda i: spool.append(events[i % 1000]), args.calls * 5)  # type: ignore[arg-type]
        lite = sample(sqlite_put, args.calls * 5)
        rows.append((median(seg), percentile(seg, 0.99), median(lite), percentile(lite, 0.99)))
    spool.close()
    db.close()
    seg50, seg99, lite50, lite99 = (median([r[k] for r in rows]) for k in range(4))
    print(f"one writer, {machine_info()}")
    print(
        table(
            ["design", "p50 us", "p99 us"],
            [
                ["segment append (EventSpool.append)", f"{seg50:.2f}", f"{seg99:.1f}"],
                ["SQLite WAL insert + commit", f"{lite50:.2f}", f"{lite99:.1f}"],
            ],
        )
    )
    # Four processes, one file: SQLite has one writer lock (busy_timeout waits on the caller);
    # segments need no shared lock at all (one file per process).
    print(_contended(root, events, args.calls))
    shutil.rmtree(root, ignore_errors=True)


_CONTENDED = """
import os, sqlite3, sys, time
mode, path, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
import flagstream
from flagstream.delivery.spool import EventSpool
from flagstream.events.payload import visitor_bytes
class Keep:
    events = []
    def process(self, e): self.events.append(e)
    def stop(self): pass
keep = Keep()
client = flagstream.Optimizely(open(sys.argv[4]).read(), event_processor=keep)
for i in range(1000):
    client.track("purchase", f"user-{i}", {"age": 30, "country": "de"})
if mode == "segments":
    spool = EventSpool(path, max_bytes=8 << 30, segment_bytes=64 << 20)
    put = lambda e: spool.append(e)
else:
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    db.execute("PRAGMA synchronous=NORMAL")
    put = lambda e: db.execute("INSERT INTO events (body) VALUES (?)", (visitor_bytes(e),))
out = []
for i in range(calls):
    t = time.perf_counter_ns()
    put(keep.events[i % 1000])
    out.append((time.perf_counter_ns() - t) / 1000)
out.sort()
print(out[len(out) // 2], out[int(len(out) * 0.99)])
"""


def _contended(root: str, _events: object, calls: int) -> str:
    datafile = os.path.join(root, "datafile.json")
    Path(datafile).write_text(BASIC_DATAFILE)
    db = os.path.join(root, "shared.db")
    con = sqlite3_setup(db)
    con.close()
    rows = []
    for mode, path in (("segments", os.path.join(root, "shared-spool")), ("sqlite", db)):
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _CONTENDED, mode, path, str(calls * 5), datafile],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        results = [tuple(map(float, p.communicate(timeout=300)[0].split())) for p in procs]
        rows.append(
            [
                f"4 processes, {'one spool directory' if mode == 'segments' else 'one SQLite WAL file'}",
                f"{median([r[0] for r in results]):.2f}",
                f"{max(r[1] for r in results):.1f}",
            ]
        )
    return table(["design", "p50 us (median of 4)", "p99 us (worst of 4)"], rows)


def sqlite3_setup(path: str):  # type: ignore[no-untyped-def]
    import sqlite3

    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    return con


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", default="all", choices=("cost", "replay", "design", "all"))
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=2000, help="calls per design measurement")
    parser.add_argument(
        "--cost-calls", type=int, default=10_000, help="calls per round of cost (shorter rounds start cold)"
    )
    parser.add_argument("--dirs", default="", help="comma-separated parent directories of the spool (cost)")
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--live-rate", type=float, default=2000.0)
    parser.add_argument("--live-seconds", type=float, default=5.0)
    args = parser.parse_args()
    if args.what in ("cost", "all"):
        cost(args)
    if args.what in ("replay", "all"):
        replay(args)
    if args.what in ("design", "all"):
        design(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
