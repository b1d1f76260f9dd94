"""Caller stalls from the delivery worker: a caller thread timing each ``decide``.

The caller makes N back-to-back ``user.decide(...)`` calls (each queues one
impression) with the client's default ``BatchEventProcessor`` over a
dispatcher that does nothing, so the delivery workers run at full load (a
batch of 500 every 500 calls) and nothing else competes for the interpreter
lock. Every call is timed; a call that waits while a worker holds the lock
shows up in the tail. Printed: p50/p99/p99.9/max, how many calls passed 200 µs
and 1 ms, and the longest stalls with their position in the run.

``--trace`` also times the worker's phases (taking a window, building the
request body, sending, settling) on the worker threads, and names the phases
that overlapped each of the longest stalls: that is how a long hold is found.

``--spool DIR`` delivers through a durable spool (a new directory under DIR),
so ``process()`` writes each event to disk and the workers read windows back.

``--src DIR`` runs another checkout's ``src`` (e.g. the code before a change)
in the same way, for a before/after comparison in one session:

    .venv/bin/python bench/stall_probe.py [--calls 20000] [--rounds 3] [--trace]
"""

from __future__ import annotations

import argparse
import functools
import gc
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable

from _common import BASIC_DATAFILE, machine_info, percentile


class NullDispatcher:
    def dispatch_event(self, log_event: object) -> None:
        pass


# -- worker phase tracing (--trace) ------------------------------------------------------

_spans: list[tuple[int, int, str]] = []  # (start ns, end ns, phase) on worker threads
_cpu: dict[str, list[float]] = {}  # thread CPU µs of each phase call
_faults: dict[str, list[int]] = {}  # page faults (minor) taken in each phase call


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt


def _timed(name: str, fn: Callable) -> Callable:
    clock, cpu = time.perf_counter_ns, time.thread_time_ns
    main = threading.main_thread()

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if threading.current_thread() is main:
            return fn(*args, **kwargs)
        start, cpu_start, faults = clock(), cpu(), _minor_faults()
        try:
            return fn(*args, **kwargs)
        finally:
            _spans.append((start, clock(), name))
            _cpu.setdefault(name, []).append((cpu() - cpu_start) / 1000)
            _faults.setdefault(name, []).append(_minor_faults() - faults)

    return wrapper


def _gc_callback(phase: str, info: dict) -> None:
    # Collections run on whichever thread triggered them and stop every other thread.
    if phase == "start":
        _gc_start[0] = time.perf_counter_ns()
    elif _gc_start[0]:
        _spans.append((_gc_start[0], time.perf_counter_ns(), f"gc gen{info['generation']}"))
        _gc_start[0] = 0


_gc_start = [0]


_holds: list[float] = []  # worker CPU µs between two points where it lets the lock go
_edges: dict[str, list[float]] = {
    "first": [],
    "last": [],
}  # the stretches before the first / after the last yield
_mark = threading.local()


def _cpu_stretches(deliver: Callable, pause: Callable | None) -> tuple[Callable, Callable | None]:
    """Wrap ``_deliver`` and the worker's pause so the CPU time between yields is recorded.

    Thread CPU time does not run while the OS has the thread off the CPU, so this
    stays meaningful on a loaded machine, where wall-clock stalls are mostly noise.
    """
    cpu = time.thread_time_ns

    def deliver_wrapper(self, *args):
        _mark.t = cpu()
        _mark.first = True
        try:
            return deliver(self, *args)
        finally:
            _holds.append((cpu() - _mark.t) / 1000)
            _edges["last"].append(_holds[-1])

    def pause_wrapper(self):
        now = cpu()
        _holds.append((now - _mark.t) / 1000)
        if _mark.first:
            _edges["first"].append(_holds[-1])
            _mark.first = False
        try:
            return pause(self)
        finally:
            _mark.t = cpu()

    return deliver_wrapper, (pause_wrapper if pause is not None else None)


def _install_trace() -> None:
    from flagstream.delivery import core, plan, processor

    gc.callbacks.append(_gc_callback)

    plan.build_log_event = _timed("build_log_event", plan.build_log_event)
    try:  # the sliced builder: in delivery/workers.py, or processor.py before the split
        from flagstream.delivery import workers as builder
    except ImportError:
        builder = processor
    if hasattr(builder, "build_log_event"):  # (after issue 11)
        builder.build_log_event = _timed("build_log_event", builder.build_log_event)
    plan.group_by_context = _timed("group_by_context", plan.group_by_context)
    core.BatchCore.take = _timed("BatchCore.take", core.BatchCore.take)
    from flagstream.delivery.spool import spool as spool_module

    spool_module.EventSpool.take = _timed("EventSpool.take", spool_module.EventSpool.take)
    spool_module.EventSpool.settle = _timed("EventSpool.settle", spool_module.EventSpool.settle)
    processor.BatchEventProcessor._deliver_spooled = _timed(
        "_deliver_spooled (whole window)", processor.BatchEventProcessor._deliver_spooled
    )
    from flagstream.delivery import spooling
    from flagstream.events import payload

    spooling.log_event_from_visitors = _timed("join visitors", spooling.log_event_from_visitors)

    payload.log_event_from_visitors = _timed("join visitors", payload.log_event_from_visitors)
    cls = processor.BatchEventProcessor
    deliver, pause = _cpu_stretches(cls._deliver, getattr(cls, "_yield_to_callers", None))
    cls._deliver = _timed("_deliver (whole window)", deliver)
    if pause is not None:
        cls._yield_to_callers = pause
    processor.BatchEventProcessor._send = _timed("_send", processor.BatchEventProcessor._send)
    processor.BatchEventProcessor._settle = _timed("_settle", processor.BatchEventProcessor._settle)


# -- the run --------------------------------------------------------------------------


def run(
    calls: int, unique: bool, options: list[str] | None, spool: str | None = None
) -> tuple[list[float], list[int], dict[str, int]]:
    import flagstream

    extra = {"event_processor_options": {"spool": spool}} if spool else {}
    client = flagstream.Optimizely(BASIC_DATAFILE, event_dispatcher=NullDispatcher(), **extra)
    attributes = {"country": "de", "age": 30}
    for i in range(200):  # warm caches and start the workers
        client.create_user_context(f"warm-{i}", attributes).decide("banner")
    client.flush(5.0)
    gc.collect()
    _spans.clear()  # trace only the timed calls (not the collection just made)
    for values in (_holds, *_edges.values()):
        values.clear()
    clock = time.perf_counter_ns
    starts = [0] * calls
    durations = [0.0] * calls
    make_user = client.create_user_context
    for i in range(calls):
        # A new context per call, as a request handler makes one; only decide is timed.
        user = make_user(f"user-{i}" if unique else "user-1", attributes)
        start = clock()
        user.decide("banner", options)
        end = clock()
        starts[i] = start
        durations[i] = (end - start) / 1000
    client.close(10.0)
    delivery = client.event_processor.stats()
    stats = {"delivered": delivery.delivered, "dropped": sum(delivery.dropped.values())}
    return durations, starts, stats


def _overlapping(start_ns: int, end_ns: int) -> str:
    names: dict[str, float] = {}
    for s, e, name in _spans:
        overlap = min(e, end_ns) - max(s, start_ns)
        if overlap > 0:
            names[name] = names.get(name, 0.0) + overlap / 1000
    return ", ".join(f"{n} {us:.0f} µs" for n, us in sorted(names.items(), key=lambda kv: -kv[1])) or "-"


def _report(
    label: str, durations: list[float], starts: list[int], stats: dict[str, int], args
) -> tuple[float, ...]:
    p50, p99, p999 = (percentile(durations, q) for q in (0.5, 0.99, 0.999))
    worst = max(durations)
    over_200 = sum(d > 200 for d in durations)
    over_1ms = sum(d > 1000 for d in durations)
    print(
        f"{label}: p50 {p50:.1f} µs  p99 {p99:.1f}  p99.9 {p999:.1f}  max {worst:.0f}  "
        f"calls >200 µs: {over_200}  >1 ms: {over_1ms}  "
        f"(delivered {stats['delivered']}, dropped {stats['dropped']}; {machine_info()})"
    )
    longest = sorted(range(len(durations)), key=durations.__getitem__, reverse=True)[: args.top]
    for i in sorted(longest):
        where = f"call {i:>6} at {(starts[i] - starts[0]) / 1e6:7.1f} ms: {durations[i]:7.0f} µs"
        if args.trace:
            end = starts[i] + int(durations[i] * 1000)
            where += f"  worker: {_overlapping(starts[i], end)}"
        print("   ", where)
    if args.trace and _holds:
        print(
            f"    worker CPU between yields while delivering: n={len(_holds)}  "
            f"median {percentile(_holds, 0.5):.0f} µs  p99 {percentile(_holds, 0.99):.0f}  max {max(_holds):.0f}"
        )
        for edge, values in _edges.items():
            if values:
                print(
                    f"      {edge} stretch of a window: median {percentile(values, 0.5):.0f} µs  max {max(values):.0f}"
                )
    if args.trace:
        by_phase: dict[str, list[float]] = {}
        for s, e, name in _spans:
            by_phase.setdefault(name, []).append((e - s) / 1000)
        for name, values in sorted(by_phase.items()):
            cpu = _cpu.get(name)
            print(
                f"    worker phase {name:<24} n={len(values):<5} "
                f"wall median {percentile(values, 0.5):7.0f} µs  max {max(values):7.0f}"
                + (f"  CPU median {percentile(cpu, 0.5):6.0f} µs  max {max(cpu):6.0f}" if cpu else "")
                + (f"  faults median {percentile(_faults[name], 0.5):.0f}" if name in _faults else "")
            )
    return (p50, p99, p999, worst, over_200, over_1ms)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="independent runs; each is reported")
    parser.add_argument("--repeated", action="store_true", help="one user for every call (default: unique)")
    parser.add_argument("--trace", action="store_true", help="time the worker's phases too")
    parser.add_argument("--top", type=int, default=8, help="longest stalls to list")
    parser.add_argument("--src", help="import flagstream from this src directory instead")
    parser.add_argument("--spool", help="deliver through a durable spool in a new directory under this one")
    args = parser.parse_args()
    if args.src:
        sys.path.insert(0, args.src)
    import flagstream

    if args.trace:
        _install_trace()
    print(f"stall probe: flagstream {flagstream.__version__} from {flagstream.__file__}")
    print(
        f"{args.calls} back-to-back decide calls per round, {'one user' if args.repeated else 'a new user each call'}"
    )
    rows: dict[str, list[tuple[float, ...]]] = {"impression": [], "no event": []}
    for round_no in range(args.rounds):
        for label, options in (("no event", ["DISABLE_DECISION_EVENT"]), ("impression", None)):
            _spans.clear()
            _holds.clear()
            _cpu.clear()
            _faults.clear()
            for values in _edges.values():
                values.clear()
            spool = None
            if args.spool:
                spool = tempfile.mkdtemp(prefix="stall-probe-", dir=args.spool)
            durations, starts, stats = run(args.calls, not args.repeated, options, spool)
            if spool:
                shutil.rmtree(spool, ignore_errors=True)
            row = _report(f"round {round_no + 1}, {label}", durations, starts, stats, args)
            rows[label].append(row)
    if args.rounds > 1:
        for label, values in rows.items():
            med = [sorted(col)[len(col) // 2] for col in zip(*values, strict=True)]
            print(
                f"median of rounds, {label}: p50 {med[0]:.1f} µs  p99 {med[1]:.1f}  p99.9 {med[2]:.1f}  "
                f"max {med[3]:.0f}  >200 µs {med[4]:.0f}  >1 ms {med[5]:.0f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
