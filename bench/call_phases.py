"""Where a ``decide`` and a ``track`` spend their time, phase by phase, and what they leave for the GC.

Each phase is one of the calls the public call makes, timed on its own with the
inputs the real call gives it (``bench/client_calls.py``'s datafile and user).
A phase's figure is the fastest of ``--rounds`` loops of ``--calls`` calls, in
µs per call: the minimum, not the median, because the machine is shared and
noise only ever adds time. The phases of one call add up to a little less than
the whole call (the glue between them is not timed on its own).

GC: how many GC-tracked objects a call leaves alive while its event is queued
(they drive generation-0 passes and are what generation-2 passes traverse),
counted with the collector disabled.

    .venv/bin/python bench/call_phases.py [--calls 2000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time

from _common import BASIC_DATAFILE, machine_info, table

import flagstream
from flagstream.calls.decide import snapshot as snapshot_of
from flagstream.delivery.processor import BatchEventProcessor
from flagstream.events.factory import conversion_event, impression_event
from flagstream.events.payload import build_log_event

ATTRIBUTES = {"country": "de", "age": 30}


class NullDispatcher:
    def dispatch_event(self, log_event: object) -> None:
        pass


def fastest(fn, calls: int, rounds: int) -> float:
    """µs per call of ``fn(i)``: the fastest of ``rounds`` loops of ``calls`` calls."""
    clock = time.perf_counter_ns
    best = float("inf")
    for _ in range(rounds):
        start = clock()
        for i in range(calls):
            fn(i)
        best = min(best, (clock() - start) / calls / 1000)
    return best


def tracked_kept(fn, calls: int = 400) -> float:
    """GC-tracked objects left alive per call of ``fn(i)`` (its result dropped), the collector off.

    CPython starts a generation-0 pass when tracked allocations minus deallocations
    pass 700, and a full pass when enough objects survived into the old generation:
    objects a call leaves alive (a queued event's tuples) drive both. 400 calls stay
    under a batch of 500, so the worker takes no window while they are counted.
    """
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        for i in range(calls):
            fn(i)
        after = len(gc.get_objects())
    finally:
        gc.enable()
    return (after - before) / calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    calls, rounds = args.calls, args.rounds

    # Batches of 100 000 and a 60 s interval: the workers take no window while a loop is
    # timed (flush() between loops sends everything), so each figure is the caller's own
    # cost. The worker's share is timed separately below.
    processor = BatchEventProcessor(NullDispatcher(), batch_size=100_000, flush_interval=60.0)
    client = flagstream.Optimizely(BASIC_DATAFILE, event_processor=processor)
    config = client.config_manager.get_config()
    context = client._delivery.context(config)
    feature = config.feature_key_map["banner"]
    users = [client.create_user_context(f"user-{i}", ATTRIBUTES) for i in range(64)]
    snapshot = snapshot_of(users[0])
    decision = client._decisions.decide_flag(config, snapshot, feature, [])
    event = config.event_key_map["purchase"]
    no_event = ["DISABLE_DECISION_EVENT"]

    rows = []

    def phase(group: str, name: str, fn, *, gc_count: bool = False) -> float:
        us = fastest(fn, calls, rounds)
        client.flush(10.0)
        kept = ""
        if gc_count:
            kept = f"{tracked_kept(fn):.1f}"
            client.flush(10.0)
        rows.append([group, name, f"{us:.2f}", kept])
        return us

    phase(
        "decide",
        "user.decide (whole call, impression)",
        lambda i: users[i & 63].decide("banner"),
        gc_count=True,
    )
    gc.disable()
    phase("decide", "user.decide (impression, GC off)", lambda i: users[i & 63].decide("banner"))
    gc.enable()
    phase(
        "decide",
        "user.decide (whole call, no event)",
        lambda i: users[i & 63].decide("banner", no_event),
        gc_count=True,
    )
    phase(
        "decide",
        "  create_user_context",
        lambda i: client.create_user_context("user-1", ATTRIBUTES),
        gc_count=True,
    )
    phase("decide", "  snapshot (per decide)", lambda i: snapshot_of(users[i & 63]), gc_count=True)
    phase("decide", "  _merge_options", lambda i: client._merge_options(None))
    phase(
        "decide",
        "  decide_flag (audiences, bucketing)",
        lambda i: client._decisions.decide_flag(config, snapshot, feature, []),
        gc_count=True,
    )
    phase(
        "decide",
        "  _finish_decision, no event (decision, variables)",
        lambda i: client._finish_decision(config, snapshot, "banner", decision, no_event, False),
        gc_count=True,
    )
    impression = impression_event(
        config,
        context,
        decision.experiment,
        decision.variation,
        "banner",
        decision.experiment.key if decision.experiment else "",
        str(decision.source),
        True,
        "user-1",
        ATTRIBUTES,
    )
    phase(
        "decide",
        "  impression_event (the user event)",
        lambda i: impression_event(
            config,
            context,
            decision.experiment,
            decision.variation,
            "banner",
            "rule",
            "rollout",
            True,
            "user-1",
            ATTRIBUTES,
        ),
        gc_count=True,
    )
    phase("decide", "  processor.process (queue it)", lambda i: processor.process(impression), gc_count=True)
    phase(
        "track",
        "client.track (whole call)",
        lambda i: client.track("purchase", f"user-{i & 1023}", ATTRIBUTES),
        gc_count=True,
    )
    gc.disable()
    phase(
        "track", "client.track (GC off)", lambda i: client.track("purchase", f"user-{i & 1023}", ATTRIBUTES)
    )
    gc.enable()
    phase(
        "track",
        "  conversion_event (the user event)",
        lambda i: conversion_event(config, context, event.id, "purchase", "user-1", ATTRIBUTES, None),
        gc_count=True,
    )
    conversion = conversion_event(config, context, event.id, "purchase", "user-1", ATTRIBUTES, None)
    phase("track", "  processor.process (queue it)", lambda i: processor.process(conversion), gc_count=True)
    for name, user_event in (("decide", impression), ("track", conversion)):
        batch = [user_event] * 500
        cpu = time.thread_time_ns
        best = float("inf")
        for _ in range(rounds):
            start = cpu()
            build_log_event(batch)
            best = min(best, (cpu() - start) / 500 / 1000)
        rows.append([name, "  worker: request body, per event (CPU)", f"{best:.2f}", ""])
    client.close()

    print(f"phases of a call, µs per call (fastest of {rounds} x {calls}; {machine_info()})")
    print(
        f"flagstream {flagstream.__version__}; GC: tracked objects a call leaves alive (its result dropped)"
    )
    print(table(["call", "phase", "µs", "GC-tracked kept"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
