"""flagstream's two builds side by side: the pure-Python reference and the mypyc-compiled hot modules.

Each build runs in its own child process, on ``client_calls.py``'s datafile and
calls (the default batch processor over a dispatcher that drops requests):
wall-clock p50 per call over ``--rounds`` child runs alternating between the
builds, so a noisy minute hits both alike. ``--instructions`` also counts CPU
instructions per call under valgrind's callgrind (a run of N calls minus a run
of N/5, so start-up cancels out): repeatable whatever else the machine does,
which is what the ratios should be read from on a shared 2-core machine.

The compiled build is the one ``make compiled`` installs in ``.build/compiled``.

    .venv/bin/python bench/builds.py [--rounds 6] [--calls 4000] [--instructions]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import BASIC_DATAFILE, machine_info, table  # noqa: E402

COMPILED = HERE.parent / ".build" / "compiled"
BUILDS = {
    "pure-python": {"FLAGSTREAM_PURE_PYTHON": "1"},
    "compiled": {"PYTHONPATH": str(COMPILED)},
}
OPERATIONS = ["decide (impression)", "decide (no event)", "activate", "track", "is_feature_enabled"]


def _operations(client):
    from client_calls import operations  # imported in the child, after the build is chosen

    calls = operations(client)
    attrs = {"age": 30}
    calls["is_feature_enabled"] = lambda i: client.is_feature_enabled("banner", f"user-{i & 1023}", attrs)
    return calls


class _Drop:
    def dispatch_event(self, log_event: object) -> None:
        pass


def child(operation: str, calls: int, timed: bool) -> int:
    import flagstream
    from flagstream import _build

    # A batch far above the calls: the worker takes no window while the caller is measured.
    client = flagstream.Optimizely(
        BASIC_DATAFILE,
        event_dispatcher=_Drop(),
        event_processor_options={"batch_size": 1_000_000, "flush_interval": 600},
    )
    fn = _operations(client)[operation]
    for i in range(500):
        fn(i)
    clock = time.perf_counter_ns
    durations = []
    for i in range(calls):
        start = clock()
        fn(i)
        if timed:
            durations.append(clock() - start)
    durations.sort()
    p50 = durations[len(durations) // 2] / 1000 if durations else 0.0
    print(json.dumps({"build": _build.BUILD, "p50": p50}))
    sys.stdout.flush()
    os._exit(0)  # no close(): the queued events are not part of the measurement


def _run(build: str, operation: str, calls: int, valgrind: bool = False) -> dict:
    command = [sys.executable, str(Path(__file__)), "--child", operation, "--calls", str(calls)]
    if valgrind:
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command, "--untimed"]
    env = {**os.environ, **BUILDS[build]}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if valgrind:
        collected = [line for line in done.stderr.splitlines() if "Collected" in line]
        result["instructions"] = int(collected[-1].split()[-1].replace(",", ""))
    return result


def _instructions(build: str, operation: str, calls: int) -> float:
    small, large = calls // 5, calls
    a = _run(build, operation, small, valgrind=True)["instructions"]
    b = _run(build, operation, large, valgrind=True)["instructions"]
    return (b - a) / (large - small)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--instructions", action="store_true", help="also count instructions (callgrind)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--untimed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.calls, not args.untimed)
    if not (COMPILED / ".built").exists():
        print(f"no compiled build in {COMPILED}: run `make compiled` first")
        return 2
    if args.instructions and shutil.which("valgrind") is None:
        print("--instructions needs valgrind (apt-get install valgrind)")
        return 2
    print(f"start: {machine_info()}")
    p50s: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for operation in OPERATIONS:
            for build in BUILDS:
                result = _run(build, operation, args.calls)
                assert result["build"].startswith(build), result
                p50s.setdefault((build, operation), []).append(result["p50"])
    counts = {}
    if args.instructions:
        for operation in OPERATIONS:
            for build in BUILDS:
                counts[build, operation] = _instructions(build, operation, max(args.calls, 2500))
    print(f"end: {machine_info()}")

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    rows = []
    for operation in OPERATIONS:
        pure, compiled = median(p50s["pure-python", operation]), median(p50s["compiled", operation])
        row = [operation, f"{pure:.2f}", f"{compiled:.2f}", f"{pure / compiled:.2f}x"]
        if counts:
            ipure, icompiled = counts["pure-python", operation], counts["compiled", operation]
            row += [f"{ipure:,.0f}", f"{icompiled:,.0f}", f"{ipure / icompiled:.2f}x"]
        rows.append(row)
    headers = ["call", "pure p50 µs", "compiled p50 µs", "speed-up"]
    if counts:
        headers += ["pure instr/call", "compiled instr/call", "speed-up (instr)"]
    print(table(headers, rows))
    print(f"(p50: median over {args.rounds} child runs of {args.calls} calls each, builds alternating)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
