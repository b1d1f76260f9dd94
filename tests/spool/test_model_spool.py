"""A model-based test of the spool behind a processor: hypothesis drives process / keeper pass /
send ok / send fail / send reject / crash / restart / disk full / disk free, and a reference
model of accepted and settled events checks that everything accepted is eventually delivered or
dropped with a reason, and that nothing unknown is ever delivered.

Delivery is deterministic: the dispatcher's answer is the machine's current mode, the keeper runs
only when the machine says so, and ``flush`` (with a deadline) is the sync point. A crash abandons
the processor with its files and locks as SIGKILL would (``robust_helpers.crash``); the next
incarnation adopts them on its first keeper pass. Fork is covered by the fork tests, not here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from tests.spool.robust_helpers import (
    CTX_A,
    CTX_B,
    Capture,
    KeeperDriver,
    Ledger,
    SegmentWriteFaults,
    crash,
    drain_backlog,
    make_events,
    spool_options,
    uuid_of,
    windows_in_flight,
)

from flagstream import _json
from flagstream.delivery.processor import BatchEventProcessor
from flagstream.delivery.retry import RetryPolicy
from flagstream.delivery.spool.segment import SpooledEvent

BATCH = 6
IN_FLIGHT = 2
PATIENT = RetryPolicy(backoff_base=0.002, backoff_max=0.02, max_attempts=1_000_000, deadline=600)


def dead_uuid(event: object) -> str:
    if isinstance(event, SpooledEvent):
        visitor = _json.loads(event.visitor)
        return str(visitor["snapshots"][0]["events"][0]["uuid"])
    return uuid_of(event)  # type: ignore[arg-type]


class Life:
    """One process using the spool directory: its processor, dispatcher and keeper driver."""

    def __init__(self, machine: SpoolMachine) -> None:
        self.capture = Capture(machine.ledger, mode=machine.mode)
        # A spool constructed on a full disk starts degraded (test_disk_full.py).
        self.processor = BatchEventProcessor(
            self.capture,
            spool=spool_options(machine.directory, segment_bytes=4096, reprobe_interval=0.01),
            batch_size=BATCH,
            flush_interval=0.02,
            max_in_flight=IN_FLIGHT,
            retry=PATIENT,
            dead_letter=machine.dead_letter,
        )
        self.spool = self.processor.spool
        self.keeper = KeeperDriver(self.spool)
        self.volatile: set[str] = set()  # kept in memory (the disk was failing): lost if it dies
        self.written = 0  # events it put on disk


class SpoolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="spool-model-")
        self.directory = os.path.join(self.tmp, "spool")
        self.ledger = Ledger()
        self.faults = SegmentWriteFaults()
        self.faults.install()
        self.known: set[str] = set()
        self.durable: set[str] = set()  # on disk when process() returned: must be settled eventually
        self.may_be_lost: set[str] = set()  # memory-only events of a process that died or closed
        self.dead_lock = threading.Lock()
        self.dead_lettered: set[str] = set()
        self.memory_total = 0
        self.mode = "ok"
        self.ends = 0  # crashes + restarts: each may replay at most the windows it had in flight
        self.peak = 1
        self.alive: list[Life] = []
        self.consistent = False

    def dead_letter(self, event: object, result: object) -> None:
        with self.dead_lock:
            self.dead_lettered.add(dead_uuid(event))

    @initialize(n=st.integers(0, 30))
    def start(self, n: int) -> None:
        self.alive.append(Life(self))
        self.consistent = True
        self._process(self.alive[0], n, 0)

    def _life(self, which: int) -> Life:
        return self.alive[which % len(self.alive)]

    def _end(self, life: Life) -> None:
        self.alive.remove(life)
        self.may_be_lost |= life.volatile - set(self.ledger.counts)
        self.ends += 1
        if not self.alive:
            self.alive.append(Life(self))

    def _flush_all(self, timeout: float) -> list:
        return [life.processor.flush(timeout=timeout) for life in self.alive]

    def _set_mode(self, mode: str) -> None:
        self.mode = mode
        for life in self.alive:
            life.capture.mode = mode

    # -- rules -----------------------------------------------------------------------------

    @rule(which=st.integers(0, 1), n=st.integers(1, 15), pad=st.sampled_from([0, 40, 900]))
    def process(self, which: int, n: int, pad: int) -> None:
        self._process(self._life(which), n, pad)

    @rule(which=st.integers(0, 1), n=st.integers(10, 40))
    def process_more(self, which: int, n: int) -> None:
        self._process(self._life(which), n, 0)

    def _process(self, life: Life, n: int, pad: int) -> None:
        spool = life.spool
        for user_event in make_events(n, pad=pad, contexts=(CTX_A, CTX_B)):
            uuid = uuid_of(user_event)
            self.known.add(uuid)
            accepted, degraded = spool.accepted, spool.degraded_events
            life.processor.process(user_event)  # never raises
            if spool.accepted == accepted + 1:
                self.durable.add(uuid)
                life.written += 1
            else:
                assert spool.degraded_events == degraded + 1, "neither on disk nor kept in memory"
                life.volatile.add(uuid)
                self.memory_total += 1

    @rule(which=st.integers(0, 1))
    def keeper_pass(self, which: int) -> None:
        self._life(which).keeper.run()

    @rule()
    def send_ok(self) -> None:
        self._set_mode("ok")
        for report in self._flush_all(15):
            assert report.pending == 0, report

    @rule()
    def send_fail(self) -> None:
        self._set_mode("fail")
        self._flush_all(0.03)  # nothing can be delivered: windows retry, events stay

    @rule()
    def send_reject(self) -> None:
        self._set_mode("reject")
        for report in self._flush_all(15):
            assert report.pending == 0, report

    @precondition(lambda self: len(self.alive) < 2)
    @rule()
    def start_a_peer(self) -> None:
        """A second live process on the same directory: it adopts the dead, never the living."""
        self.alive.append(Life(self))
        self.peak = 2

    @rule(which=st.integers(0, 1))
    def crash(self, which: int) -> None:
        life = self._life(which)
        crash(life.processor, life.capture)
        self._end(life)

    @precondition(lambda self: any(life.written for life in self.alive))  # model state: no races
    @rule(which=st.integers(0, 1))
    def crash_between_delivery_and_acknowledgement(self, which: int) -> None:
        """The server answered 200 for a window, and the process dies before acknowledging it."""
        life = self._life(which)
        hold = threading.Event()
        life.capture.hold = hold
        self._set_mode("ok")
        life.processor.flush(timeout=0)  # makes own events due and wakes a worker
        # If everything was delivered already no request comes: then this is a plain crash.
        busy = life.spool.unsettled_own() or windows_in_flight(life.spool)
        life.capture.held.wait(2 if busy else 0)
        crash(life.processor, life.capture, then=hold.set)
        self._end(life)

    @rule(which=st.integers(0, 1))
    def restart(self, which: int) -> None:
        life = self._life(which)
        report = life.processor.close(timeout=0.3 if self.mode == "fail" else 10)
        undelivered = life.volatile - set(self.ledger.counts) - self.dead_lettered
        # Memory-only events that close could not deliver are dropped with a count, never silently.
        assert report.dropped.get("shutdown", 0) + report.pending >= len(undelivered), (
            report,
            len(undelivered),
        )
        self._end(life)

    @rule()
    def disk_full(self) -> None:
        self.faults.full = True

    @precondition(lambda self: self.faults.full)
    @rule()
    def disk_free(self) -> None:
        self.faults.full = False
        for life in self.alive:
            life.keeper.run()  # the re-probe
            assert life.spool.healthy

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def nothing_unknown_is_delivered(self) -> None:
        with self.ledger.lock:
            delivered = set(self.ledger.counts)
        assert delivered <= self.known
        with self.dead_lock:
            assert self.dead_lettered <= self.known

    @invariant()
    def the_spool_is_healthy_unless_the_disk_failed(self) -> None:
        if self.faults.full:
            return
        for life in self.alive:
            if not life.spool.healthy:
                life.keeper.run()
                assert life.spool.healthy

    @invariant()
    def no_live_owner_is_adopted(self) -> None:
        owners = {life.spool.owner for life in self.alive}
        for life in self.alive:
            with life.spool._lock:
                adopted = set(life.spool._adopted)
            assert not adopted & owners, "a live process's files were adopted"

    # -- the end: everything accepted is settled -------------------------------------------

    def teardown(self) -> None:
        try:
            if not self.alive or not self.consistent:
                return  # a rule failed: that failure is the report
            self.faults.full = False
            self._set_mode("ok")
            while len(self.alive) > 1:  # a peer closes cleanly; the last one adopts what it leaves
                peer = self.alive.pop()
                assert peer.processor.close(timeout=10).pending == 0
            last = self.alive[0]
            last.keeper.run()  # probe, and adopt every earlier process's files
            assert last.processor.flush(timeout=15).pending == 0
            drain_backlog(last.processor, last.keeper)
            report = last.processor.close(timeout=10)
            assert report.spooled == 0, report
            assert report.pending == 0, report
            with self.ledger.lock:
                counts = dict(self.ledger.counts)
            delivered = set(counts)
            missing = self.durable - delivered - self.dead_lettered
            assert not missing, f"{len(missing)} of {len(self.durable)} events accepted on disk never settled"
            missing = {u for life in self.alive for u in life.volatile} - delivered - self.dead_lettered
            assert not missing, f"{len(missing)} memory-only events of a live process never settled"
            duplicates = sum(c - 1 for c in counts.values())
            event(f"crashes+restarts: {min(self.ends, 4)}{'+' if self.ends >= 4 else ''}")
            size = "0" if not self.durable else "1-49" if len(self.durable) < 50 else "50+"
            event(f"events accepted on disk: {size}")
            event(f"memory-only events: {'0' if not self.memory_total else '1+'}")
            event(f"dead-lettered: {'0' if not self.dead_lettered else '1+'}")
            event(f"duplicates: {'0' if not duplicates else '1+'}")
            event(f"live processes at once: {self.peak}")
            assert duplicates <= (self.ends + self.peak) * IN_FLIGHT * BATCH, (duplicates, self.ends)
            assert os.listdir(self.directory) == [], sorted(os.listdir(self.directory))
        finally:
            for life in self.alive:
                if not life.processor._closed:
                    crash(life.processor, life.capture)
            self.faults.uninstall()
            shutil.rmtree(self.tmp, ignore_errors=True)


SpoolMachine.TestCase.settings = settings(
    max_examples=80,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_the_spool_settles_everything_it_accepts = SpoolMachine.TestCase


@pytest.mark.soak
class TestSpoolMachineSoak(SpoolMachine.TestCase):
    settings = settings(
        max_examples=400, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
