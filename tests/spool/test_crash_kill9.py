"""kill -9 conservation: a producer SIGKILLed at random moments, restarted on the same spool, many times.

Each life of the producer (``producer.py``: an ``Optimizely`` client whose
processor writes to the spool and sends to a real collector) reports every
event whose ``track``/``decide`` call returned. The harness kills it after a
seeded random number of reports plus a random few milliseconds, or as soon as
a call with a large event (~100 KB of attributes) has begun, so that the kill
may cut its write, or at once (while the new life adopts and replays the last
one's files); and with the collector slow, failing or resetting
connections in some lives, so that kills land while batches are unacknowledged.
A last processor in the test adopts what is left. Then: every reported event
is stored, nothing unknown is, each event went out with one byte string, and
the duplicates stay within what can be in flight when a process dies.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest
from tests.spool.crash_helpers import Ledger, check_delivery, drain, start_producer, torn_tails

from flagstream.collector import Collector, FaultConfig

BATCH = 20
IN_FLIGHT = 4
# Far above what a run writes (the soak writes a few hundred MB): no event may be dropped for the cap.
SPOOL = {"segment_bytes": 256 * 1024, "max_bytes": 2 * 1024**3}


def _faults(rng: random.Random, seed: int) -> FaultConfig:
    return rng.choice(
        [
            FaultConfig(),
            FaultConfig(latency=0.05),
            FaultConfig(fail_rate=0.5, status=503, seed=seed),
            FaultConfig(reset_rate=0.3, seed=seed),
            FaultConfig(latency=0.2, fail_rate=0.2, status=500, seed=seed),
        ]
    )


def run_kill_loop(tmp_path: Path, *, seed: int, kills: int, budget: float) -> dict[str, Any]:
    rng = random.Random(seed)
    directory = str(tmp_path / "spool")
    logs = tmp_path / "logs"
    logs.mkdir()
    ledger = Ledger()
    started = time.monotonic()
    torn = 0
    moments = {"early": 0, "large": 0, "reports": 0}
    with Collector(keep_raw_bodies=True) as collector:
        for life in range(kills):
            assert time.monotonic() - started < budget, f"past the {budget}s guard after {life} kills"
            collector.set_faults(_faults(rng, seed * 1000 + life))
            # Some lives die at once, before or while their keeper adopts the last one's files
            # (its first adoption pass is 0.2 s after start); some just as a call with a large
            # event (up to 1 MB in those lives) has begun, so that the kill may cut its write;
            # the others after some reports.
            moment = rng.choices(["early", "large", "reports"], [0.2, 0.3, 0.5])[0]
            moments[moment] += 1
            producer = start_producer(
                {
                    "name": f"life{life}",
                    "seed": rng.randrange(1 << 30),
                    "endpoint": collector.events_url,
                    "spool": {"directory": directory, **SPOOL},
                    "batch_size": BATCH,
                    "max_in_flight": IN_FLIGHT,
                    "large_every": 5,
                    "large_bytes": 1_000_000 if moment == "large" else 100_000,
                    "deadline": 120.0,
                },
                ledger,
                logs,
            )
            if moment == "early":
                producer.pump_for(rng.uniform(0.0, 0.6))
            elif moment == "large":
                nth = rng.randint(1, 8)
                assert producer.pump(lambda p=producer, n=nth: p.large_started >= n, timeout=30.0)
            else:
                target = rng.randint(1, 300)
                assert producer.pump(lambda p=producer, t=target: p.reported >= t, timeout=30.0), (
                    f"life {life} reported {producer.reported}/{target} (see {logs})"
                )
                producer.pump_for(rng.uniform(0.0, 0.03))  # the kill lands at a random moment
            assert producer.alive(), f"life {life} ended on its own (see {logs})"
            producer.kill()
            assert producer.owner is not None
            torn += torn_tails(directory, producer.owner)
        # Counted drops are not silent losses, but none of these may happen here: the caps are
        # far off and the disk is fine (torn tails and damage are spool_corrupt, counted by
        # adopters). Said by producers as they happen, since a killed one cannot say it at the end.
        capped = {o: d for o, d in ledger.dropped.items() if set(d) - {"spool_corrupt"}}
        assert not capped, f"producers dropped events with the disk far from full: {capped}"
        collector.set_faults(FaultConfig())
        drained = drain(collector, directory, ledger.durable, SPOOL, timeout=60.0)
        check = check_delivery(collector, ledger)
    assert not ledger.in_memory, f"the healthy spool refused {len(ledger.in_memory)} events"
    bound = kills * IN_FLIGHT * BATCH
    assert check.duplicates <= bound, f"{check.duplicates} duplicates, more than {bound} could be in flight"
    assert check.unreported_delivered <= kills  # at most the one call each kill interrupted
    summary = {
        "kills": kills,
        "kill_moments": moments,
        "torn_tails": torn,
        "reported": check.reported,
        "stored": check.stored,
        "duplicates": check.duplicates,
        "duplicate_bound": bound,
        "unreported_delivered": check.unreported_delivered,
        "bodies": check.bodies,
        "drain": drained,
        "seconds": round(time.monotonic() - started, 1),
    }
    print(f"kill -9 conservation (seed {seed}): {summary}")
    return summary


def test_every_event_reported_before_a_kill_9_reaches_the_collector_once_restarted(tmp_path: Path) -> None:
    summary = run_kill_loop(tmp_path, seed=8, kills=15, budget=240.0)
    assert summary["reported"] > 0


@pytest.mark.soak
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_conservation_over_many_restarts(tmp_path: Path, seed: int) -> None:
    run_kill_loop(tmp_path, seed=seed, kills=120, budget=900.0)
