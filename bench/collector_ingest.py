"""How many events per second the collector ingests from batched requests on loopback.

The collector runs in this process (as in tests and the demo); the load comes
from separate client processes so they do not share its GIL. Bodies are real
flagstream payloads (impressions with a decision and conversions with tags,
three attributes per visitor), built before the clock starts, every event with
its own uuid so nothing is de-duplicated away. Each run posts ``--requests``
bodies of ``--batch`` events over ``--connections`` keep-alive connections;
the figure is events stored / wall time, median of ``--runs``. The collector
runs with ``decode_workers=2`` (``--decode-workers``; 0 decodes in the request
threads, the default of ``Collector``), started before the clock. The
collector's own CPU time, its decode workers' included, is reported too
(events per CPU-second): on a busy machine the wall-clock rate measures the
neighbours, the CPU figure measures the collector.

    .venv/bin/python bench/collector_ingest.py [--batch 1000 --requests 60 --connections 2 --runs 5
                                                --db file --decode-workers 2]
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from flagstream.collector import Collector
from flagstream.events.payload import build_log_event
from flagstream.events.user_event import (
    ConversionEvent,
    DecisionMetadata,
    EventContext,
    ImpressionEvent,
    UserEvent,
    visitor_attribute,
)

CONTEXT = EventContext("12345", "67890", "42", "python-sdk", "5.7.0", False, True, "US", "")


def make_body(n: int, seed: int) -> bytes:
    events: list[UserEvent] = []
    for i in range(n):
        user = f"user-{seed}-{i}"
        attrs = (
            visitor_attribute("100", "country", "DE"),
            visitor_attribute("101", "plan", "premium"),
            visitor_attribute("$opt_bot_filtering", "$opt_bot_filtering", True, "custom"),
        )
        ts = 1_700_000_000_000 + i
        if i % 2 == 0:
            meta = DecisionMetadata("checkout_flag", "checkout_test", "feature-test", "treatment", True)
            events.append(
                ImpressionEvent(CONTEXT, user, attrs, str(uuid.uuid4()), ts, "2001", "2002", "2003", meta)
            )
        else:
            tags = {"revenue": 4200, "category": "shoes"}
            events.append(
                ConversionEvent(
                    CONTEXT, user, attrs, str(uuid.uuid4()), ts, "3001", "purchase", tags, 4200, None
                )
            )
    return build_log_event(events).body


def client(url: str, requests: int, batch: int, seed: int) -> None:
    """Build bodies, wait for 'go' on stdin, post them all, print the elapsed time."""
    bodies = [make_body(batch, seed * 100_000 + r) for r in range(requests)]
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    conn.connect()
    print("ready", flush=True)
    sys.stdin.readline()
    for body in bodies:
        conn.request("POST", "/v1/events", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 204, resp.status
    conn.close()
    print("done", flush=True)


def _cpu(pids: list[int]) -> float:
    """CPU seconds of this process and of ``pids`` (the collector's decode workers)."""
    total = time.process_time()
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:  # Linux; the workers are not this process's threads
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run_once(args: argparse.Namespace, run: int, db: str) -> tuple[float, float, int]:
    with Collector(db=db, decode_workers=args.decode_workers) as collector:
        workers = collector.decode_worker_pids()
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--client", collector.url, "--requests", str(args.requests),
                 "--batch", str(args.batch), "--seed", str(run * 100 + c)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
            for c in range(args.connections)
        ]  # fmt: skip
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready"
        expected = args.requests * args.batch * args.connections
        start = time.perf_counter()
        cpu_start = _cpu(workers)
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        ok = collector.wait_for_events(expected, timeout=300)
        elapsed = time.perf_counter() - start
        cpu = _cpu(workers) - cpu_start
        for p in procs:
            p.communicate(timeout=60)
        assert ok, f"only {collector.event_count()} of {expected} events stored"
        return elapsed, cpu, collector.event_count()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", choices=["memory", "file"], default="file")
    parser.add_argument("--decode-workers", type=int, default=2, help="Collector(decode_workers=N); 0: none")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client(args.client, args.requests, args.batch, args.seed)
        return
    rates, capacities = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            db = ":memory:" if args.db == "memory" else str(Path(tmp) / f"run{run}.db")
            elapsed, cpu, stored = run_once(args, run, db)
            rates.append(stored / elapsed)
            capacities.append(stored / cpu)
            print(
                f"run {run + 1}: {stored} events in {elapsed:.2f} s = {stored / elapsed:,.0f} events/s"
                f" (collector CPU {cpu:.2f} s = {stored / cpu:,.0f} events per CPU-second)"
            )
    print(
        f"collector ingest ({args.db} db, batches of {args.batch}, {args.connections} connections,"
        f" {args.decode_workers} decode workers): "
        f"median {statistics.median(rates):,.0f} events/s (min {min(rates):,.0f}, max {max(rates):,.0f}); "
        f"median {statistics.median(capacities):,.0f} events per collector CPU-second"
    )


if __name__ == "__main__":
    main()
