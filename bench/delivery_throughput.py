"""End-to-end event delivery: optimizely-sdk vs flagstream, side by side in one run.

For ``track``, ``activate`` and ``decide`` (with its impression), each
configuration makes N calls from a tight loop in a fresh process and we
measure: events delivered to the server (running in its own process), the
time from the first call until the server had them all (or delivery
stalled), caller latency p50/p99, and the process's peak RSS.

Servers (``--server``, see ``delivery_collector.py``): ``sink``, a lean
counting server, so that as little of the 2 cores as possible goes to the
receiving side, and ``collector``, flagstream's own collector (validation,
SQLite, de-duplication). ``both`` (the default) runs the whole table against
each in turn.

Configurations:
  opt-default  optimizely-sdk 5.7 ``Optimizely()`` with its default processor and
               dispatcher (requests; one request per event, a new connection each);
  opt-best     optimizely-sdk with BatchEventProcessor(batch_size=100,
               flush_interval=0.1, unbounded queue);
  flagstream   ``flagstream.client.Optimizely()`` with its defaults.

optimizely-sdk's dispatcher is pointed at the collector by rewriting the URL
only (its own ``EventDispatcher`` does the sending); flagstream uses
``event_endpoint=``. Usage:
``python bench/delivery_throughput.py [N] [--server sink|collector|both] [--ops track,decide]``.
"""

from __future__ import annotations

import json
import os
import platform
import queue
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from delivery_collector import CollectorProcess  # noqa: E402

DATAFILE = (ROOT / "tests" / "fixtures" / "basic_datafile.json").read_text()
ATTRIBUTES = {"age": 30, "country": "de"}  # passes the audiences of checkout_test and the banner rollout
OPS = ("track", "activate", "decide")
CONFIGS = ("opt-default", "opt-best", "flagstream")


def _client(config: str, url: str):
    if config == "flagstream":
        from flagstream.client import Optimizely

        return Optimizely(DATAFILE, event_endpoint=url)
    from optimizely import optimizely as opt
    from optimizely.event.event_processor import BatchEventProcessor
    from optimizely.event_dispatcher import EventDispatcher

    class ToCollector:
        """optimizely-sdk's own dispatcher, with only the URL changed."""

        @staticmethod
        def dispatch_event(event):
            event.url = url
            EventDispatcher.dispatch_event(event)

    if config == "opt-default":
        return opt.Optimizely(DATAFILE, event_dispatcher=ToCollector())
    processor = BatchEventProcessor(
        ToCollector(),
        batch_size=100,
        flush_interval=0.1,
        event_queue=queue.Queue(maxsize=0),
        start_on_init=True,
    )
    return opt.Optimizely(DATAFILE, event_dispatcher=ToCollector(), event_processor=processor)


def _child(op: str, config: str, url: str, n: int) -> None:
    """Runs in a fresh process: n calls, then waits for the parent's go to close."""
    client = _client(config, url)
    users = [f"user-{i}" for i in range(n)]
    if op == "track":
        call = lambda user: client.track("purchase", user, ATTRIBUTES)  # noqa: E731
    elif op == "activate":
        call = lambda user: client.activate("checkout_test", user, ATTRIBUTES)  # noqa: E731
    else:
        call = lambda user: client.create_user_context(user, ATTRIBUTES).decide("banner")  # noqa: E731
    latencies = [0] * n
    clock = time.perf_counter_ns
    start = time.monotonic()
    for i, user in enumerate(users):
        t = clock()
        call(user)
        latencies[i] = clock() - t
    loop_end = time.monotonic()
    latencies.sort()
    print(
        json.dumps(
            {
                "start": start,
                "loop": loop_end - start,
                "p50_us": latencies[n // 2] / 1000,
                "p99_us": latencies[int(n * 0.99)] / 1000,
            }
        ),
        flush=True,
    )
    sys.stdin.readline()  # the parent saw delivery finish (or stall)
    client.close()
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_rss_mb": rss_kb / 1024}), flush=True)


def _measure(op: str, config: str, n: int, server: str) -> dict[str, float]:
    with CollectorProcess(server=server) as collector:
        child = subprocess.Popen(
            [sys.executable, __file__, "--child", op, config, collector.events_url, str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(ROOT),
        )
        assert child.stdout is not None
        assert child.stdin is not None
        caller = json.loads(child.stdout.readline())
        delivered, last = collector.settle(n, stall=3.0, limit=120.0)
        child.stdin.write("go\n")
        child.stdin.flush()
        rss = json.loads(child.stdout.readline())
        child.wait(60)
        child.stdin.close()
        child.stdout.close()
    elapsed = max(last - caller["start"], 1e-9)
    return {
        "delivered": delivered,
        "elapsed": elapsed,
        "eps": delivered / elapsed,
        "p50_us": caller["p50_us"],
        "p99_us": caller["p99_us"],
        "rss_mb": rss["peak_rss_mb"],
        "loop": caller["loop"],
    }


def _machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), "
        f"Python {platform.python_version()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def _arguments() -> tuple[int, list[str], list[str]]:
    n, servers, ops = 50_000, ["sink", "collector"], list(OPS)
    args = sys.argv[1:]
    while args:
        arg = args.pop(0)
        if arg == "--server":
            choice = args.pop(0)
            servers = ["sink", "collector"] if choice == "both" else [choice]
        elif arg == "--ops":
            ops = args.pop(0).split(",")
        else:
            n = int(arg)
    return n, servers, ops


def main() -> None:
    n, servers, ops = _arguments()
    import optimizely.version

    print(f"# delivery throughput, {n} events per run; {_machine()}")
    print(f"# optimizely-sdk {optimizely.version.__version__}; the server runs in its own process")
    for server in servers:
        _table(server, n, ops)


def _table(server: str, n: int, ops: list[str]) -> None:
    print(f"\n## server: {server}")
    results: dict[tuple[str, str], dict[str, float]] = {}
    for op in ops:
        for config in CONFIGS:
            results[op, config] = r = _measure(op, config, n, server)
            print(
                f"{op:9} {config:12} delivered {int(r['delivered']):6}/{n} ({100 * r['delivered'] / n:5.1f} %)"
                f"  {r['eps']:9.0f} ev/s  in {r['elapsed']:6.2f} s  caller p50 {r['p50_us']:7.1f} us"
                f"  p99 {r['p99_us']:8.1f} us  loop {r['loop']:5.2f} s  peak RSS {r['rss_mb']:6.1f} MB",
                flush=True,
            )
    print()
    print("| op | config | delivered | end-to-end ev/s | caller p50 µs | caller p99 µs | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for (op, config), r in results.items():
        print(
            f"| {op} | {config} | {100 * r['delivered'] / n:.1f} % | {r['eps']:,.0f} | {r['p50_us']:.1f} | "
            f"{r['p99_us']:.1f} | {r['rss_mb']:.0f} |"
        )
    print()
    print("| op | ev/s flagstream / opt-best | ev/s flagstream / opt-default | p50 opt-best / flagstream |")
    print("|---|---|---|---|")
    for op in ops:
        fs, best, default = results[op, "flagstream"], results[op, "opt-best"], results[op, "opt-default"]
        print(
            f"| {op} | {fs['eps'] / best['eps']:.1f}x | {fs['eps'] / default['eps']:.1f}x | "
            f"{best['p50_us'] / fs['p50_us']:.1f}x |"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()
