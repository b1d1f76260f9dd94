"""Damage that is not a dead process's directory: bytes flipped under a live writer, a record that
is well framed but is not a visitor, and a live process's lock file deleted under it."""

from __future__ import annotations

import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.spool.robust_helpers import (
    CTX_A,
    CTX_B,
    Capture,
    KeeperDriver,
    Ledger,
    drain_backlog,
    make_events,
    quiet_logger,
    slots_of,
    spool_options,
    uuids_of,
    write_template,
)

from flagstream.collector import Collector
from flagstream.delivery.http import HttpDispatcher
from flagstream.delivery.processor import BatchEventProcessor
from flagstream.delivery.spool import format as fmt
from flagstream.delivery.spool.redirect import RedirectingDispatcher

frac = st.integers(0, 10**6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(frac, st.integers(1, 255)), min_size=1, max_size=5))
def test_a_segment_damaged_under_its_live_writer_delivers_the_rest_and_counts_every_lost_event(flips):
    """Bytes flipped in the active segment of a running process, before its workers read it."""
    logger, handler = quiet_logger()
    with tempfile.TemporaryDirectory() as directory:
        capture = Capture()
        # Nothing is due before flush(): a batch is 50 events and the flush interval 30 s.
        processor = BatchEventProcessor(
            capture, spool=spool_options(directory), batch_size=50, flush_interval=30, logger=logger
        )
        try:
            spool = processor.spool
            KeeperDriver(spool)
            events = make_events(30, pad=50, contexts=(CTX_A, CTX_B))
            for user_event in events:
                processor.process(user_event)
            # The active segment: the keeper may also have made the next one before it stopped.
            (path,) = [s.path for s in spool._own]
            with open(path, "rb") as f:
                original = f.read()
            damaged = bytearray(original)
            for where, xor in flips:
                damaged[fmt.HEADER_SIZE + where * (len(damaged) - fmt.HEADER_SIZE - 1) // 10**6] ^= xor
            with open(path, "r+b") as f:
                f.write(damaged)
            intact = set()
            contexts: set[int] = set()
            for slot in slots_of(original):
                if damaged[slot.offset : slot.end] != original[slot.offset : slot.end]:
                    continue
                if slot.kind == fmt.CONTEXT:
                    contexts.add(slot.context)
                elif slot.context in contexts:
                    intact.add(str(events[slot.seq].uuid))
            report = processor.flush(timeout=10)
            assert report.pending == 0, report
            corrupt = spool.stats().dropped.get("spool_corrupt", 0)
        finally:
            processor.close(timeout=5)
    delivered = set(capture.ledger.counts)
    assert delivered <= {str(e.uuid) for e in events}
    assert intact <= delivered
    # Own events are counted one by one: each of the 30 is delivered or counted, none vanishes.
    assert len(delivered) + corrupt == 30, (len(delivered), corrupt)
    assert not [r for r in handler.records if "keeper error" in r.getMessage() or "died" in r.getMessage()]


def test_a_well_framed_record_of_garbage_is_dead_lettered_alone_and_the_rest_reach_the_collector():
    """A record whose checksum is right but whose bytes are not a visitor (a bug, a foreign
    writer): the collector refuses the body, bisection isolates it, only it is dead-lettered."""
    logger, _ = quiet_logger()
    dead: list[object] = []
    with tempfile.TemporaryDirectory() as directory:
        made = write_template(directory, 20, segment_bytes=4096, settle_first=3, pad=120)
        last = os.path.join(directory, made.segments[-1])
        context_index = next(
            s.context for s in slots_of(made.files[made.segments[-1]]) if s.kind == fmt.CONTEXT
        )
        with open(last, "ab") as f:
            f.write(fmt.encode_record(10_000, fmt.EVENT, context_index, b'{"visitor_id": 7, "snapsh'))
        with Collector(keep_raw_bodies=True) as collector:
            sender = RedirectingDispatcher(HttpDispatcher(), collector.events_url)
            processor = BatchEventProcessor(
                sender,
                spool=spool_options(directory),
                batch_size=50,
                flush_interval=0.05,
                max_in_flight=1,
                logger=logger,
                dead_letter=lambda event, result: dead.append((event, result)),
            )
            try:
                keeper = KeeperDriver(processor.spool)
                keeper.run()
                drain_backlog(processor, keeper)
                stats = processor.stats()
            finally:
                processor.close(timeout=5)
                sender.close()
            expected = set(made.visitors) - {made.uuid_by_seq[s] for s in range(3)}
            assert collector.wait_for_events(len(expected), timeout=10)
            received = {
                u for body in collector.raw_bodies() if body.startswith(b"{") for u in _uuids_or_none(body)
            }
    assert received == expected
    assert [(e.visitor, r.status) for e, r in dead] == [(b'{"visitor_id": 7, "snapsh', 400)]
    assert stats.dropped == {"rejected": 1}


def _uuids_or_none(body: bytes) -> list[str]:
    try:
        return uuids_of(body)
    except ValueError:
        return []  # the refused body with the garbage in it


def test_a_deleted_lock_file_of_a_live_process_does_not_let_a_peer_adopt_its_files():
    ledger = Ledger()
    with tempfile.TemporaryDirectory() as directory:
        live = BatchEventProcessor(
            Capture(ledger, mode="fail"), spool=spool_options(directory), batch_size=5, max_in_flight=1
        )
        peer = BatchEventProcessor(
            Capture(ledger), spool=spool_options(directory), batch_size=5, max_in_flight=1
        )
        try:
            live_keeper, peer_keeper = KeeperDriver(live.spool), KeeperDriver(peer.spool)
            for user_event in make_events(20):
                live.process(user_event)
            os.unlink(os.path.join(directory, f"{live.spool.owner}.lock"))  # an operator's mistake
            peer_keeper.run()
            adopted = set(peer.spool._adopted)
            drain_backlog(peer, peer_keeper)
            live_keeper.run()
            live.event_dispatcher.mode = "ok"
            assert live.flush(timeout=10).pending == 0
        finally:
            live.close(timeout=5)
            peer.close(timeout=5)
    assert live.spool.owner not in adopted, "a live process's files were adopted"
    assert max(ledger.counts.values()) == 1, "events of a live process were sent by two processes"
