"""The on-disk format: segment headers, framed records, torn tails, acknowledgement files."""

from __future__ import annotations

import os
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.spool.robust_helpers import KeeperDriver, make_events, slots_of, visitor_bytes

from flagstream.delivery.spool import format as fmt
from flagstream.delivery.spool import spool as spool_module
from flagstream.delivery.spool.spool import EventSpool

owners = st.binary(min_size=16, max_size=16)
created = st.integers(min_value=0, max_value=2**64 - 1)


@given(created, owners)
def test_a_header_reads_back_as_written(created_ms, owner):
    data = fmt.encode_header(created_ms, owner)
    assert len(data) == fmt.HEADER_SIZE
    assert fmt.decode_header(data) == fmt.Header(fmt.VERSION, created_ms, owner)
    # What follows the header is not the header's business.
    assert fmt.decode_header(data + b"\x00" * 7) == fmt.Header(fmt.VERSION, created_ms, owner)


def _signed(head: bytes) -> bytes:
    return head + struct.pack("<I", zlib.crc32(head))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "header is 0 bytes"),
        (fmt.encode_header(1, b"o" * 16)[:39], "header is 39 bytes"),
        (_signed(struct.pack("<8sHHQ16s", b"NOTSPOOL", 1, 40, 1, b"o" * 16)), "bad magic"),
        (_signed(struct.pack("<8sHHQ16s", b"FLGSPOOL", 2, 40, 1, b"o" * 16)), "version 2 is not supported"),
        (_signed(struct.pack("<8sHHQ16s", b"FLGSPOOL", 1, 48, 1, b"o" * 16)), "not supported"),
        (fmt.encode_header(1, b"o" * 16)[:36] + b"\0\0\0\0", "checksum mismatch"),
        (b"\0" * 40, "bad magic"),
    ],
    ids=["empty", "short", "magic", "version", "size", "crc", "zeros"],
)
def test_every_unreadable_header_is_a_header_error(data, message):
    with pytest.raises(fmt.HeaderError, match=message):
        fmt.decode_header(data)


@given(created, owners, st.integers(0, 39), st.integers(1, 255))
def test_any_flipped_header_byte_is_a_header_error(created_ms, owner, position, xor):
    data = bytearray(fmt.encode_header(created_ms, owner))
    data[position] ^= xor
    with pytest.raises(fmt.HeaderError):
        fmt.decode_header(bytes(data))


records = st.lists(
    st.tuples(
        st.integers(0, 2**64 - 1),
        st.sampled_from([fmt.EVENT, fmt.CONTEXT]),
        st.integers(0, 2**16 - 1),
        st.binary(max_size=300),
    ),
    max_size=12,
)


def _segment(items) -> tuple[bytes, list[tuple[int, int]]]:
    data = bytearray(fmt.encode_header(0, b"o" * 16))
    spans = []
    for seq, kind, ctx, payload in items:
        start = len(data)
        data += fmt.encode_record(seq, kind, ctx, payload)
        spans.append((start, len(data)))
    return bytes(data), spans


@given(records)
def test_scan_returns_every_record_of_valid_data(items):
    data, spans = _segment(items)
    found = list(fmt.scan(data, fmt.HEADER_SIZE, len(data), at_end=True))
    assert all(isinstance(r, fmt.Record) for r in found)
    assert [(r.seq, r.kind, r.context, r.data) for r in found] == items
    assert [(r.offset, r.end) for r in found] == spans


@given(records, st.data())
def test_scanning_a_prefix_that_is_not_the_end_yields_only_complete_records(items, data):
    segment, spans = _segment(items)
    cut = data.draw(st.integers(fmt.HEADER_SIZE, len(segment)))
    found = list(fmt.scan(segment, fmt.HEADER_SIZE, cut, at_end=False))
    assert all(isinstance(r, fmt.Record) for r in found)
    assert [(r.offset, r.end) for r in found] == [s for s in spans if s[1] <= cut]


@given(records, st.binary(min_size=1, max_size=64), st.data())
def test_garbage_between_records_is_one_corrupt_stretch_and_the_rest_survives(items, garbage, data):
    segment, spans = _segment(items)
    boundaries = [fmt.HEADER_SIZE] + [end for _, end in spans]
    at = data.draw(st.sampled_from(boundaries))
    damaged = segment[:at] + garbage + segment[at:]
    found = list(fmt.scan(damaged, fmt.HEADER_SIZE, len(damaged), at_end=True))
    good = [r for r in found if isinstance(r, fmt.Record)]
    bad = [c for c in found if isinstance(c, fmt.Corrupt)]
    assert [(r.seq, r.kind, r.context, r.data) for r in good] == items
    # The garbage is reported where it is, whole (it may absorb nothing else).
    assert [(c.offset, c.end) for c in bad] == [(at, at + len(garbage))]
    if at < len(segment):
        assert not bad[0].torn  # records follow it: damage, not a torn tail


def test_a_torn_last_record_cut_at_every_offset_leaves_every_earlier_record_and_appends_cleanly():
    items = [(i, fmt.EVENT, 0, f"visitor-{i}".encode() * (i + 1)) for i in range(6)]
    segment, spans = _segment(items)
    last_start, last_end = spans[-1]
    for cut in range(last_start + 1, last_end):
        torn = segment[:cut]
        found = list(fmt.scan(torn, fmt.HEADER_SIZE, len(torn), at_end=True))
        assert [r.seq for r in found[:-1]] == [0, 1, 2, 3, 4], cut
        assert found[-1] == fmt.Corrupt(last_start, cut, torn=True), cut
        # Truncated at the torn record's offset, the file takes new records as if nothing happened.
        repaired = torn[: found[-1].offset] + fmt.encode_record(9, fmt.EVENT, 0, b"after")
        again = list(fmt.scan(repaired, fmt.HEADER_SIZE, len(repaired), at_end=True))
        assert [(r.seq, r.data) for r in again] == [(i, d) for i, _, _, d in items[:-1]] + [(9, b"after")]


def test_a_torn_tail_on_disk_is_counted_once_cut_off_and_every_earlier_event_replayed(tmp_path):
    """A real segment whose last event is cut at every byte offset, adopted by a new spool."""
    events = make_events(5, pad=200)
    writer = EventSpool(tmp_path / "w", fsync="never")
    KeeperDriver(writer)
    for event in events:
        assert writer.append(event) in (spool_module.ACCEPTED, spool_module.ACCEPTED_WAKE)
    writer.close()
    (name,) = [n for n in os.listdir(tmp_path / "w") if n.endswith(".seg")]
    original = (tmp_path / "w" / name).read_bytes()
    last = slots_of(original)[-1]
    assert last.kind == fmt.EVENT
    expected = [visitor_bytes(e) for e in events[:-1]]
    cuts = range(last.offset + 1, last.end)
    for i, cut in enumerate(cuts):
        directory = tmp_path / f"d{i}"
        directory.mkdir()
        for other in os.listdir(tmp_path / "w"):
            if other != name:
                (directory / other).write_bytes((tmp_path / "w" / other).read_bytes())
        (directory / name).write_bytes(original[:cut])
        reader = EventSpool(directory, fsync="never")
        try:
            KeeperDriver(reader).run()
            window = reader.take(100, 1 << 30, 0.0, 1.0, False)
            assert window is not None, cut
            assert [e.visitor for e in window.events] == expected, cut
            assert reader.stats().dropped == {"spool_corrupt": 1}, cut
            assert (directory / name).stat().st_size == last.offset, cut  # the torn tail is cut off
            assert reader.settle(window, len(window.events), delivered=True)
            assert not (directory / name).exists(), cut  # fully settled: removed
        finally:
            reader.close()
    assert len(cuts) == last.end - last.offset - 1 > 200


@given(st.lists(st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1)), max_size=8), st.data())
def test_acknowledgements_parse_and_damaged_ones_are_skipped_and_counted(ranges, data):
    encoded = bytearray(fmt.encode_acks(ranges))
    assert fmt.parse_acks(bytes(encoded)) == (ranges, 0)
    damaged = set()
    if ranges:
        for index in data.draw(st.sets(st.integers(0, len(ranges) - 1), max_size=3)):
            byte = data.draw(st.integers(0, 15))
            encoded[index * 16 + byte] ^= data.draw(st.integers(1, 255))
            damaged.add(index)
    tail = data.draw(st.binary(max_size=15))  # a torn last record
    parsed, bad = fmt.parse_acks(bytes(encoded) + tail)
    assert parsed == [r for i, r in enumerate(ranges) if i not in damaged]
    assert bad == len(damaged) + (1 if tail else 0)


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_scan_and_parse_acks_never_raise_on_arbitrary_bytes(blob):
    for item in fmt.scan(blob, 0, len(blob), at_end=True):
        assert 0 <= item.offset < item.end <= len(blob)
    list(fmt.scan(blob, 0, len(blob), at_end=False))
    fmt.parse_acks(blob)


def test_a_reader_never_sees_an_unsettled_sequence_number_as_settled_while_ranges_are_added():
    # A worker reads a segment outside the spool's lock while another worker's window settles,
    # so a thread switch may land between any two lines of SeqRanges.add. The reader's question
    # is asked at every one of them here (sys.settrace), for numbers that are never settled: it
    # must always hear "no" (a "yes" skipped the event for good in the kill -9 soak).
    import random
    import sys

    from flagstream.delivery.spool.ranges import SeqRanges

    ranges = SeqRanges()
    never = [20 * k + 15 for k in range(200)]  # inside the gaps between the settled blocks
    seen: list[object] = []

    def ask() -> None:
        try:
            seen.extend(seq for seq in never if seq in ranges)
        except Exception as exc:  # e.g. an index past the ends of the ranges
            seen.append(exc)

    def trace(frame, event, arg):  # type: ignore[no-untyped-def]
        if frame.f_code is SeqRanges.add.__code__:
            return local
        return None

    def local(frame, event, arg):  # type: ignore[no-untyped-def]
        if event == "line":
            sys.settrace(None)  # not inside the reader's own calls
            ask()
            sys.settrace(trace)
        return local

    blocks = list(range(200))
    random.Random(7).shuffle(blocks)
    sys.settrace(trace)
    try:
        for k in blocks:
            ranges.add(20 * k, 10)
    finally:
        sys.settrace(None)
    assert not seen, seen[:3]
    assert len(ranges) == 2_000
