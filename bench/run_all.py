"""Run every side-by-side benchmark in turn (``make bench``); results go to stdout.

Each script runs in its own process so one benchmark's threads and memory do
not colour the next. Quote medians and ratios: this is a shared 2-core machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHMARKS = [
    ["client_calls.py"],
    ["call_phases.py"],
    ["decision_bucketing.py"],
    ["delivery_process_cost.py"],
    ["payload_writer.py"],
    ["delivery_throughput.py"],
    ["delivery_inflight.py"],
    ["collector_ingest.py"],
    ["django_middleware.py"],
    ["stall_probe.py", "--rounds", "1"],
]


def main() -> int:
    failed = 0
    for command in BENCHMARKS:
        print(f"\n=== {' '.join(command)}", flush=True)
        failed += (
            subprocess.call([sys.executable, str(HERE / command[0]), *command[1:]], cwd=HERE.parent) != 0
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
