"""A spool directory damaged on disk (flipped bytes, zeroed ranges, truncation, deleted or copied
segment and acknowledgement files) is adopted by a new processor: nothing raises, every intact
record is delivered, and the damage is counted exactly (``spool_corrupt``)."""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import tempfile
import time

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from tests.spool.robust_helpers import (
    Capture,
    KeeperDriver,
    Template,
    acked_seqs,
    drain_backlog,
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

N_EVENTS = 40
SETTLED = 3  # the first three are acknowledged in the template


@functools.lru_cache(maxsize=1)
def template() -> Template:
    with tempfile.TemporaryDirectory() as directory:
        made = write_template(directory, N_EVENTS, segment_bytes=4096, settle_first=SETTLED, pad=120)
    assert len(made.segments) >= 3, made.segments
    assert any(n.endswith(".ack") for n in made.files)
    return made


# -- damage ----------------------------------------------------------------------------------------

frac = st.integers(0, 10**6)
ops = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 50), frac, st.integers(1, 255)),
    st.tuples(st.just("zero"), st.integers(0, 50), frac, st.integers(1, 400)),
    st.tuples(st.just("truncate"), st.integers(0, 50), frac),
    st.tuples(st.just("delete"), st.integers(0, 50)),
    st.tuples(st.just("duplicate"), st.integers(0, 50)),
    st.tuples(st.just("garbage"), st.integers(0, 50), st.binary(max_size=120)),
    st.tuples(st.just("delete_lock")),
)


def damage(directory: str, ops_list: list[tuple], sources: dict[str, str]) -> list[str]:
    """Apply ``ops_list``; ``sources`` maps each segment name to the template segment it copies."""
    done = []
    for n, op in enumerate(ops_list):
        files = sorted(f for f in os.listdir(directory) if f.endswith((".seg", ".ack")))
        kind = op[0]
        if kind == "delete_lock":
            for f in os.listdir(directory):
                if f.endswith(".lock"):
                    os.unlink(os.path.join(directory, f))
            done.append("delete_lock")
            continue
        if not files:
            continue
        name = files[op[1] % len(files)]
        path = os.path.join(directory, name)
        with open(path, "rb") as f:
            data = bytearray(f.read())
        if kind == "flip" and data:
            at = op[2] * (len(data) - 1) // 10**6
            data[at] ^= op[3]
            done.append(f"flip {name}@{at}")
        elif kind == "zero" and data:
            at = op[2] * (len(data) - 1) // 10**6
            data[at : at + op[3]] = bytes(len(data[at : at + op[3]]))
            done.append(f"zero {name}@{at}+{op[3]}")
        elif kind == "truncate":
            at = op[2] * len(data) // 10**6
            del data[at:]
            done.append(f"truncate {name}@{at}")
        elif kind == "garbage":
            data = bytearray(op[2])
            done.append(f"garbage {name}")
        elif kind == "delete":
            os.unlink(path)
            sources.pop(name, None)
            done.append(f"delete {name}")
            continue
        elif kind == "duplicate":
            segments = [f for f in files if f.endswith(".seg")]
            if name.endswith(".seg"):
                owner = name.split("-")[0]
                copy = f"{owner}-{90 + n:08d}.seg"
                shutil.copyfile(path, os.path.join(directory, copy))
                sources[copy] = sources[name]
                done.append(f"duplicate {name} as {copy}")
            elif segments:  # an acknowledgement file copied beside another segment
                other = (
                    segments[(segments.index(name[:-4] + ".seg") + 1) % len(segments)]
                    if (name[:-4] + ".seg" in segments)
                    else segments[0]
                )
                shutil.copyfile(path, os.path.join(directory, other[:-4] + ".ack"))
                done.append(f"copy {name} beside {other}")
            continue
        with open(path, "wb") as f:
            f.write(data)
    if "delete_lock" in done:
        # The lock went long after the owner died: its files are untouched for longer than the
        # grace a lock-less owner gets (a live owner whose lock was deleted by hand keeps
        # touching its active segment, and must not be adopted).
        old = time.time() - 3600
        for f in os.listdir(directory):
            os.utime(os.path.join(directory, f), (old, old))
    return done


# -- the oracle ------------------------------------------------------------------------------------


class Expected:
    def __init__(self) -> None:
        self.required: set[str] = set()  # intact, not acknowledged: must be delivered
        self.corrupt = 0  # damaged stretches + unusable events + unreadable headers
        self.corrupt_files: set[str] = set()


def expect(directory: str, made: Template, sources: dict[str, str]) -> Expected:
    out = Expected()
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".seg"):
            continue
        source = made.files[sources[name]]
        with open(os.path.join(directory, name), "rb") as f:
            data = f.read()
        if len(data) < fmt.HEADER_SIZE or data[: fmt.HEADER_SIZE] != source[: fmt.HEADER_SIZE]:
            out.corrupt += 1
            out.corrupt_files.add(name)
            continue
        ack_path = os.path.join(directory, name[:-4] + ".ack")
        acked: set[int] = set()
        if os.path.exists(ack_path):
            with open(ack_path, "rb") as f:
                acked = acked_seqs(f.read())
        contexts: set[int] = set()
        in_damage = False
        for slot in slots_of(source):
            if slot.offset >= len(data):
                break  # cut off exactly at a record boundary: absent, not damage
            intact = slot.end <= len(data) and data[slot.offset : slot.end] == source[slot.offset : slot.end]
            if not intact:
                if not in_damage:
                    out.corrupt += 1  # one stretch per run of adjacent damaged records
                in_damage = True
                continue
            in_damage = False
            if slot.kind == fmt.CONTEXT:
                contexts.add(slot.context)
            elif slot.seq not in acked:
                if slot.context in contexts:
                    out.required.add(made.uuid_by_seq[slot.seq])
                else:
                    out.corrupt += 1  # its context record is damaged: it cannot be sent
    return out


# -- the tests -------------------------------------------------------------------------------------


def adopt_and_drain(directory: str, dispatcher: object, logger: logging.Logger) -> dict[str, int]:
    processor = BatchEventProcessor(
        dispatcher,  # type: ignore[arg-type]
        spool=spool_options(directory),
        batch_size=7,
        flush_interval=0.05,
        max_in_flight=2,
        logger=logger,
    )
    try:
        spool = processor.spool
        assert spool is not None
        keeper = KeeperDriver(spool)
        keeper.run()  # adopts the dead owner's files
        drain_backlog(processor, keeper)  # and the owner is released: its lock and leftovers go
        dropped = dict(spool.stats().dropped)
        leftovers = [
            f for f in os.listdir(directory) if not f.startswith(spool.owner) and not f.endswith(".corrupt")
        ]
        assert leftovers == [], leftovers
    finally:
        processor.close(timeout=5)
    return dropped


def check_delivered(made: Template, exp: Expected, bodies: list[bytes], counts) -> None:
    unknown = set(counts) - set(made.visitors)
    assert not unknown, f"{len(unknown)} unknown uuids delivered"
    missing = exp.required - set(counts)
    assert not missing, f"{len(missing)} intact events not delivered"
    for body in bodies:
        for uuid in uuids_of(body):
            assert made.visitors[uuid] in body, "a delivered visitor differs from the bytes spooled"


def check_corrupt_files(directory: str, exp: Expected) -> None:
    corrupt = {f[: -len(".corrupt")] for f in os.listdir(directory) if f.endswith(".corrupt")}
    assert corrupt == exp.corrupt_files


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(ops, min_size=1, max_size=4))
# Found by the soak: the lock and every segment deleted left an acknowledgement file for good.
@example(ops_list=[("delete", 1), ("delete_lock",), ("delete", 1), ("delete", 1), ("delete", 1)])
def test_a_damaged_directory_delivers_every_intact_record_and_counts_the_damage(ops_list):
    damaged_directory_case(ops_list)


@pytest.mark.soak
@settings(max_examples=3_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(ops, min_size=1, max_size=8))
def test_many_more_damaged_directories(ops_list):
    damaged_directory_case(ops_list)


def damaged_directory_case(ops_list: list[tuple]) -> None:
    made = template()
    logger, handler = quiet_logger()
    with tempfile.TemporaryDirectory() as directory:
        made.write_to(directory)
        sources = {n: n for n in made.segments}
        done = damage(directory, ops_list, sources)
        exp = expect(directory, made, sources)
        event(f"spool_corrupt expected: {min(exp.corrupt, 3)}{'+' if exp.corrupt >= 3 else ''}")
        event(f"corrupt files: {len(exp.corrupt_files)}")
        capture = Capture()
        dropped = adopt_and_drain(directory, capture, logger)
        check_delivered(made, exp, capture.ledger.bodies, capture.ledger.counts)
        assert dropped.get("spool_corrupt", 0) == exp.corrupt, (done, dropped)
        assert set(dropped) <= {"spool_corrupt"}, dropped
        check_corrupt_files(directory, exp)
    failures = [
        r.getMessage() for r in handler.records if "died" in r.getMessage() or "error:" in r.getMessage()
    ]
    assert not [m for m in failures if "keeper error" in m or "worker died" in m or "unexpected" in m], (
        failures
    )


def test_an_undamaged_directory_is_delivered_whole_except_what_was_acknowledged():
    made = template()
    logger, _ = quiet_logger()
    with tempfile.TemporaryDirectory() as directory:
        made.write_to(directory)
        capture = Capture()
        dropped = adopt_and_drain(directory, capture, logger)
    acked = {made.uuid_by_seq[s] for s in range(SETTLED)}
    assert set(capture.ledger.counts) == set(made.visitors) - acked
    assert max(capture.ledger.counts.values()) == 1
    assert dropped == {}


def test_damage_of_every_kind_at_once_reaches_a_real_collector_byte_for_byte():
    made = template()
    segments = made.segments
    logger, handler = quiet_logger()
    with tempfile.TemporaryDirectory() as directory:
        made.write_to(directory)
        sources = {n: n for n in segments}
        paths = [os.path.join(directory, n) for n in segments]
        first, second = slots_of(made.files[segments[0]]), slots_of(made.files[segments[1]])
        with open(paths[0], "r+b") as f:  # a flipped byte in an event record of the first segment
            f.seek(first[6].offset + 30)
            byte = f.read(1)
            f.seek(first[6].offset + 30)
            f.write(bytes([byte[0] ^ 0x40]))
        with open(paths[1], "r+b") as f:  # two records zeroed across their boundary
            f.seek(second[4].end - 10)
            f.write(bytes(20))
        with open(paths[2], "r+b") as f:  # an unreadable header
            f.write(b"NOTSPOOL")
        last = slots_of(made.files[segments[-1]])[-1]
        os.truncate(paths[-1], last.offset + 7)  # a torn tail
        ack = os.path.join(directory, segments[0][:-4] + ".ack")
        os.unlink(ack)  # the acknowledgement is lost: its events are replayed (duplicates, never loss)
        exp = expect(directory, made, sources)
        with Collector(keep_raw_bodies=True) as collector:
            # The events' endpoint is a placeholder: every request goes to the collector instead.
            sender = RedirectingDispatcher(HttpDispatcher(), collector.events_url)
            try:
                dropped = adopt_and_drain(directory, sender, logger)
            finally:
                sender.close()
            bodies = collector.raw_bodies()
            counts: dict[str, int] = {}
            for body in bodies:
                for uuid in uuids_of(body):
                    counts[uuid] = counts.get(uuid, 0) + 1
            assert collector.event_count() == len(counts)
        check_delivered(made, exp, bodies, counts)
        assert {made.uuid_by_seq[s] for s in range(SETTLED)} <= set(counts)  # replayed: the ack was lost
        assert dropped == {"spool_corrupt": exp.corrupt}
        assert exp.corrupt >= 4
        check_corrupt_files(directory, exp)
        assert exp.corrupt_files == {segments[2]}
    assert not [r for r in handler.records if "keeper error" in r.getMessage()]


def test_the_template_names_match_the_spools_layout():
    assert all(re.fullmatch(r"[0-9a-f]{32}-\d{8}\.seg", n) for n in template().segments)
