"""Memory held by queued events: peak RSS of a process with 100 000 events waiting in the queue.

Each child builds a client over an Event API that never answers (an outage:
the windows the workers took stay in flight, the rest stays queued), makes ``--events`` calls of one kind with a new
user each (``decide`` with its impression, or ``track``), and reports its peak
RSS and what it grew by from just before the calls. ``--source DIR`` runs the
same children on another checkout's ``src`` (an older commit, to compare), and
``--compiled`` adds the compiled build of ``make compiled``.

    .venv/bin/python bench/queued_memory.py [--events 100000] [--source /path/to/old/src] [--compiled]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import BASIC_DATAFILE, machine_info, table  # noqa: E402

COMPILED = HERE.parent / ".build" / "compiled"


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class _Outage:
    """An Event API that never answers: the windows taken stay in flight, the rest stays queued."""

    def __init__(self) -> None:
        import threading

        self._never = threading.Event()

    def dispatch_event(self, log_event: object) -> None:
        self._never.wait()


def child(kind: str, events: int) -> int:
    import flagstream

    build = getattr(getattr(flagstream, "_build", None), "BUILD", "pure-python (before the build switch)")
    client = flagstream.Optimizely(
        BASIC_DATAFILE,
        event_dispatcher=_Outage(),
        event_processor_options={
            "batch_size": events + 1,
            "flush_interval": 600,
            "max_queue_events": events + 1,
        },
    )
    attrs = {"country": "de", "age": 30}
    # Warm up on a few calls (imports, caches, compiled plans), then flush them away.
    for i in range(200):
        client.create_user_context(f"warm-{i}", attrs).decide("banner", ["DISABLE_DECISION_EVENT"])
    before = _rss_kib()
    if kind == "decide":
        for i in range(events):
            client.create_user_context(f"user-{i}", attrs).decide("banner")
    else:
        for i in range(events):
            client.track("purchase", f"user-{i}", attrs)
    after = _rss_kib()
    stats = client.event_processor.stats()
    queued = stats.queued_events + stats.in_flight
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"build": build, "peak_kib": peak, "grew_kib": after - before, "queued": queued}))
    sys.stdout.flush()
    os._exit(0)


def _run(kind: str, events: int, env: dict[str, str]) -> dict:
    command = [sys.executable, str(Path(__file__)), "--child", kind, "--events", str(events)]
    done = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **env}, timeout=600, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--source", help="another checkout's src directory, run the same way")
    parser.add_argument("--compiled", action="store_true", help="also the build in .build/compiled")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.events)
    variants = {"this checkout, pure-python": {"FLAGSTREAM_PURE_PYTHON": "1"}}
    if args.compiled:
        variants["this checkout, compiled"] = {"PYTHONPATH": str(COMPILED)}
    if args.source:
        variants[f"{args.source}"] = {"PYTHONPATH": args.source, "FLAGSTREAM_PURE_PYTHON": "1"}
    print(f"start: {machine_info()}")
    rows = []
    for kind in ("decide", "track"):
        for name, env in variants.items():
            runs = [_run(kind, args.events, env) for _ in range(args.rounds)]
            peak = sorted(r["peak_kib"] for r in runs)[len(runs) // 2]
            grew = sorted(r["grew_kib"] for r in runs)[len(runs) // 2]
            rows.append(
                [
                    kind,
                    name,
                    runs[0]["build"],
                    f"{runs[0]['queued']:,}",
                    f"{peak / 1024:.1f}",
                    f"{grew / 1024:.1f}",
                ]
            )
    print(f"end: {machine_info()}")
    print(table(["call", "code", "build", "queued", "peak RSS MiB", "grew MiB"], rows))
    print(f"(medians of {args.rounds} runs; 'grew': RSS after the calls minus before them)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
