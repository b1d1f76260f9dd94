"""Several worker processes on one spool directory, killed with SIGKILL and replaced while they work.

Each worker is a ``producer.py`` process (an ``Optimizely`` client with
``spool=DIR``). The harness keeps several alive, SIGKILLs one at random
moments and starts a new one, with the collector slow or failing part of the
time. Live workers adopt the dead ones' files (one adopter per dead owner: a
second one would send the whole backlog again, far beyond the duplicate bound
checked here), and a last processor in the test takes what is left when the
run ends.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import pytest
from tests.delivery.factories import context, conversion
from tests.spool.crash_helpers import DirSampler, Fleet, Ledger, check_delivery, drain, files_of, stored_uuids

from flagstream.collector import Collector, FaultConfig
from flagstream.delivery.spool import EventSpool
from flagstream.delivery.spool.spool import ACCEPTED, ACCEPTED_WAKE

BATCH = 20
IN_FLIGHT = 4


def _worker(
    fleet: Fleet, rng: random.Random, collector: Collector, spool: dict[str, Any], **extra: Any
) -> None:
    fleet.start(
        {
            "seed": rng.randrange(1 << 30),
            "endpoint": collector.events_url,
            "spool": spool,
            "batch_size": BATCH,
            "max_in_flight": IN_FLIGHT,
            "deadline": 90.0,
            **extra,
        }
    )


def run_workers(
    tmp_path: Path, *, seed: int, workers: int, kills: int, budget: float, cap: bool = False
) -> dict[str, Any]:
    """Keep ``workers`` alive, kill and replace ``kills`` of them, then let the rest finish."""
    rng = random.Random(seed)
    directory = str(tmp_path / "spool")
    logs = tmp_path / "logs"
    logs.mkdir()
    if cap:  # small caps, the collector down: the directory is full the whole time
        spool = {"directory": directory, "max_bytes": 1 << 20, "segment_bytes": 128 << 10}
        extra = {"large_every": 3, "large_bytes": 20_000, "close_timeout": 1.0}
    else:
        spool = {"directory": directory, "max_bytes": 256 << 20, "segment_bytes": 128 << 10}
        extra = {"large_every": 20, "close_timeout": 10.0}
    ledger = Ledger()
    fleet = Fleet(ledger, logs)
    started = time.monotonic()
    # The cap holds for the directory as a whole: max_bytes plus one (active) segment per process
    # with files there: the live ones, and a killed one until its files are adopted. A segment
    # ends with the record that crosses segment_bytes (records never span two segments).
    record = extra["large_bytes"] + 4096 if "large_bytes" in extra else 4096

    def bound() -> int:
        try:
            locks = sum(1 for name in os.listdir(directory) if name.endswith(".lock"))
        except FileNotFoundError:  # before the first worker made it
            locks = 0
        owners = max(len(fleet.live), locks, 1)
        return spool["max_bytes"] + (spool["segment_bytes"] + record) * owners

    with Collector(keep_raw_bodies=True) as collector:
        if cap:
            collector.set_faults(FaultConfig(fail_rate=1.0, status=503))
        try:
            with DirSampler(directory, bound) as sampler:
                for _ in range(workers):
                    _worker(fleet, rng, collector, spool, count=rng.randint(300, 900), **extra)
                for kill in range(kills):
                    assert time.monotonic() - started < budget, f"past the {budget}s guard after {kill} kills"
                    if not cap:
                        collector.set_faults(
                            rng.choice(
                                [
                                    FaultConfig(),
                                    FaultConfig(latency=0.05),
                                    FaultConfig(fail_rate=0.4, status=503, seed=seed * 100 + kill),
                                ]
                            )
                        )
                    goal = fleet.reported + rng.randint(20, 200)
                    fleet.pump(lambda g=goal: fleet.reported >= g or not fleet.live, timeout=30.0)
                    fleet.pump(lambda: False, rng.uniform(0.0, 0.03))  # the kill lands at a random moment
                    if fleet.live:
                        fleet.kill(rng.choice(fleet.live))
                    _worker(fleet, rng, collector, spool, count=rng.randint(300, 900), **extra)
                collector.set_faults(FaultConfig())
                assert fleet.wait_all(timeout=max(30.0, budget - (time.monotonic() - started))), (
                    f"workers still running after {budget}s (see {logs})"
                )
            # What the finished workers adopted and delivered, before the last processor takes the rest.
            replayed_by_workers = sum(int(s["replayed"]) for s in ledger.stats)
            drained = drain(collector, directory, ledger.durable if not cap else (), spool, timeout=60.0)
            check = check_delivery(collector, ledger, expect=None if not cap else ())
            stored = stored_uuids(collector)
        finally:
            fleet.close()
    if not cap:
        assert not ledger.in_memory, f"the healthy spool refused {len(ledger.in_memory)} events"
    for dead in fleet.killed:
        assert dead.owner is not None
        # Headerless *.corrupt files (a kill while creating a segment) are the known bug of
        # test_crash_artifacts.py; drain() checked they hold less than a header.
        left = [n for n in files_of(directory, dead.owner) if not n.endswith(".seg.corrupt")]
        assert left == [], f"files of killed owner {dead.owner} remain: {left}"
    drops: dict[str, int] = {}
    for counts in [*(s["dropped"] for s in ledger.stats), drained]:
        for reason, n in counts.items():
            if reason.startswith("spool_"):
                drops[reason] = drops.get(reason, 0) + int(n)
    summary: dict[str, Any] = {
        "workers": workers,
        "kills": len(fleet.killed),
        "finished": len(fleet.finished),
        "reported": check.reported if not cap else len(ledger.durable),
        "stored": len(stored),
        "duplicates": check.duplicates,
        "unreported_delivered": check.unreported_delivered,
        "replayed_by_workers": replayed_by_workers,
        "drain": drained,
        "counted_drops_by_survivors": drops,
        "dir_samples": sampler.samples,
        "dir_max_bytes": sampler.max_bytes,
        "dir_worst_excess_over_bound": sampler.worst_excess,
        "seconds": round(time.monotonic() - started, 1),
    }
    summary["over_bound"] = sampler.over
    print(
        f"multi-process (seed {seed}, cap={cap}): { {k: v for k, v in summary.items() if k != 'over_bound'} }"
    )
    assert sampler.samples > 0
    return summary


def _assert_cap_held(summary: dict[str, Any]) -> None:
    over = summary["over_bound"]
    assert isinstance(over, list)
    assert not over, (
        f"the directory exceeded max_bytes + one segment per live process in {len(over)} samples, "
        f"by up to {summary['dir_worst_excess_over_bound']} bytes; (seconds, bytes, bound): {over[:5]}"
    )


def test_workers_killed_and_replaced_on_one_directory_deliver_every_accepted_event(tmp_path: Path) -> None:
    summary = run_workers(tmp_path, seed=5, workers=5, kills=8, budget=240.0)
    # Each kill, and each worker that closes while adopted windows are still on the wire,
    # may leave at most its in-flight windows sent but unacknowledged; replaying a dead
    # owner twice (two adopters at once) would go far past this.
    bound = (summary["kills"] + summary["finished"]) * IN_FLIGHT * BATCH
    assert summary["duplicates"] <= bound, summary
    assert summary["replayed_by_workers"] > 0, "live workers adopted nothing"
    _assert_cap_held(summary)


@pytest.fixture(scope="module")
def capped_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run with small caps and the collector down while 4 workers write and 4 are killed."""
    return run_workers(tmp_path_factory.mktemp("capped"), seed=6, workers=4, kills=4, budget=240.0, cap=True)


def test_a_full_shared_directory_drops_and_counts_the_oldest_events(capped_run: dict[str, Any]) -> None:
    # run_workers already checked: nothing unknown stored, one byte string per event, the
    # killed owners' files gone once the last processor drained the directory.
    drops = capped_run["counted_drops_by_survivors"]
    assert isinstance(drops, dict)
    assert drops.get("spool_cap", 0) > 0, "a full directory must drop (and count) its oldest events"
    assert capped_run["stored"] > 0


def test_a_shared_directory_never_exceeds_max_bytes_plus_one_segment_per_process(
    capped_run: dict[str, Any],
) -> None:
    _assert_cap_held(capped_run)


def test_a_segment_stays_within_segment_bytes_while_the_keeper_lags(tmp_path: Path) -> None:
    # The keeper prepares the next segment on its first pass, 0.2 s after start (and in a
    # forked child); a starved keeper (4 busy writers on 2 cores above) is late the same way.
    # Stopping it makes the lag exact: a burst right after start.
    spool = EventSpool(tmp_path, max_bytes=256 << 10, segment_bytes=64 << 10, fsync="never")
    spool._keeper.stop()
    ctx = context()
    try:
        for i in range(200):  # about 2 MB
            event = conversion(ctx, user=f"burst-{i}", tags={"blob": "x" * 10_000})
            assert spool.append(event) in (ACCEPTED, ACCEPTED_WAKE)
        sizes = sorted(os.path.getsize(tmp_path / n) for n in os.listdir(tmp_path) if n.endswith(".seg"))
    finally:
        spool.close()
    record = 10_200  # one event's record, about
    assert sizes[-1] <= (64 << 10) + record, f"a segment of {sizes[-1]} bytes for segment_bytes=64 KiB"
    assert sum(sizes) <= (256 << 10) + (64 << 10), f"{sum(sizes)} bytes on disk for max_bytes=256 KiB"


@pytest.mark.soak
@pytest.mark.timeout(1200)
def test_many_workers_killed_and_replaced_over_minutes(tmp_path: Path) -> None:
    summary = run_workers(tmp_path, seed=7, workers=8, kills=60, budget=900.0)
    assert summary["duplicates"] <= (summary["kills"] + summary["finished"]) * IN_FLIGHT * BATCH
    _assert_cap_held(summary)
