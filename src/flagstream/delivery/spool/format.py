"""The on-disk format of spool segments and acknowledgement files (no I/O here).

A segment file starts with a 40-byte header and holds framed records::

    header  b"FLGSPOOL" | version u16 | header size u16 | created ms u64 | owner 16 bytes | crc32 u32
    record  magic u32 | length u32 | crc32 u32 | seq u64 | kind u8 | context index u16 | data (length bytes)

``crc32`` (zlib's, CRC-32/ISO-HDLC: in the standard library and fast in C)
covers the data and then ``seq | kind | context index``, so a flipped length
fails the check too. The data comes first so that the caller can checksum its
event before it takes the lock that assigns the sequence number. The
magic in front of every record lets a reader find the next good record after
a damaged one instead of losing the rest of the file. An *event* record's data
is the visitor's JSON exactly as it goes into a request body; a *context*
record defines a context index once per segment (the request-level fields,
as JSON), before the first event that uses it.

An acknowledgement file ``<segment>.ack`` is a sequence of 16-byte records
``first seq u64 | count u32 | crc32 u32``: those events are settled (delivered
or dropped with a counted reason). Losing or damaging it can only cause
duplicates, never loss.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "ACK",
    "CONTEXT",
    "EVENT",
    "FRAME",
    "HEADER_SIZE",
    "MAGIC",
    "VERSION",
    "Corrupt",
    "Header",
    "HeaderError",
    "Record",
    "decode_header",
    "encode_acks",
    "encode_header",
    "encode_record",
    "parse_acks",
    "scan",
]

MAGIC = b"FLGSPOOL"
VERSION = 1
HEADER_SIZE = 40
_HEADER = struct.Struct("<8sHHQ16s")  # 36 bytes, then the crc32 of those
FRAME = struct.Struct("<IIIQBH")  # magic, length, crc, seq, kind, context index: 23 bytes
HEAD = struct.Struct("<III")  # magic, length, crc
META = struct.Struct("<QBH")  # seq, kind, context index
RECORD_MAGIC = 0x5EED_F1A6
_RECORD_MAGIC_BYTES = struct.pack("<I", RECORD_MAGIC)
EVENT = 1
CONTEXT = 2
ACK = struct.Struct("<QII")  # first seq, count, crc32 of the first 12 bytes
_ACK_BODY = struct.Struct("<QI")
#: A record larger than this is damage, not data (no request may exceed 3.5 MB).
MAX_RECORD = 8 * 1024 * 1024


class HeaderError(ValueError):
    """A segment whose header cannot be read: wrong magic, unknown version, bad checksum."""


@dataclass(frozen=True, slots=True)
class Header:
    """What a segment's header says."""

    version: int
    created_ms: int
    owner: bytes


def encode_header(created_ms: int, owner: bytes) -> bytes:
    """The 40 header bytes of a new segment."""
    head = _HEADER.pack(MAGIC, VERSION, HEADER_SIZE, created_ms, owner)
    return head + struct.pack("<I", zlib.crc32(head))


def decode_header(data: bytes) -> Header:
    """Parse a segment header; raises :class:`HeaderError` if it is not one we can read."""
    if len(data) < HEADER_SIZE:
        raise HeaderError(f"header is {len(data)} bytes, expected {HEADER_SIZE}")
    magic, version, size, created, owner = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise HeaderError("not a flagstream spool segment (bad magic)")
    (crc,) = struct.unpack_from("<I", data, _HEADER.size)
    if crc != zlib.crc32(data[: _HEADER.size]):
        raise HeaderError("segment header checksum mismatch")
    if version != VERSION or size != HEADER_SIZE:
        raise HeaderError(f"segment format version {version} is not supported (this build reads {VERSION})")
    return Header(version, created, owner)


def encode_record(seq: int, kind: int, context: int, data: bytes, data_crc: int | None = None) -> bytes:
    """One framed record (``data_crc``: ``zlib.crc32(data)``, if the caller has it already)."""
    meta = META.pack(seq, kind, context)
    crc = zlib.crc32(meta, zlib.crc32(data) if data_crc is None else data_crc)
    return b"".join((HEAD.pack(RECORD_MAGIC, len(data), crc), meta, data))


@dataclass(frozen=True, slots=True)
class Record:
    """A record that passed its checksum; ``end`` is the offset just after it."""

    offset: int
    end: int
    seq: int
    kind: int
    context: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Corrupt:
    """Bytes between ``offset`` and ``end`` that are not a valid record (counted once).

    ``torn`` is true when they are an incomplete last record: a write cut short
    by a crash or a full disk, at the very end of the data.
    """

    offset: int
    end: int
    torn: bool


def _frame_at(buf: bytes, pos: int, limit: int) -> Record | bool | None:
    """The record at ``pos``; ``None`` if it is damaged; ``False`` if it runs past ``limit``."""
    if pos + FRAME.size > limit:
        return False
    magic, length, crc, seq, kind, context = FRAME.unpack_from(buf, pos)
    if magic != RECORD_MAGIC or length > MAX_RECORD:
        return None
    start = pos + FRAME.size
    end = start + length
    if end > limit:
        return False
    data = buf[start:end]
    if zlib.crc32(buf[pos + HEAD.size : start], zlib.crc32(data)) != crc:
        return None
    return Record(pos, end, seq, kind, context, data)


def scan(buf: bytes, pos: int, limit: int, *, at_end: bool) -> Iterator[Record | Corrupt]:
    """Records and damaged stretches of ``buf[pos:limit]``, in order; never raises.

    ``at_end`` says that ``limit`` is the end of the file: an incomplete record
    there is a torn tail. Otherwise scanning stops before an incomplete record
    (the caller reads more and calls again from the offset of the last item + 1).
    After damage, scanning resumes at the next record magic whose record checks out.
    """
    while pos < limit:
        found = _frame_at(buf, pos, limit)
        if isinstance(found, Record):
            yield found
            pos = found.end
            continue
        if found is False and not at_end:
            return  # incomplete: more bytes are needed
        if found is False:
            # An incomplete record at the end of the file: a torn tail, unless a good
            # record starts inside it (then it is damage followed by data).
            nxt = _next_good(buf, pos + 1, limit)
            yield Corrupt(pos, nxt if nxt is not None else limit, torn=nxt is None)
            if nxt is None:
                return
            pos = nxt
            continue
        nxt = _next_good(buf, pos + 1, limit)
        if nxt is None and not at_end:
            # No good record in what we have: skip all but a possible split magic.
            yield Corrupt(pos, max(pos + 1, limit - FRAME.size), torn=False)
            return
        yield Corrupt(pos, nxt if nxt is not None else limit, torn=False)
        if nxt is None:
            return
        pos = nxt


def _next_good(buf: bytes, pos: int, limit: int) -> int | None:
    """Offset of the next complete record that passes its checksum, from ``pos`` on."""
    while True:
        pos = buf.find(_RECORD_MAGIC_BYTES, pos, limit)
        if pos < 0:
            return None
        if isinstance(_frame_at(buf, pos, limit), Record):
            return pos
        pos += 1


def encode_acks(ranges: list[tuple[int, int]]) -> bytes:
    """Acknowledgement records for ``(first seq, count)`` ranges."""
    out = []
    for first, count in ranges:
        body = _ACK_BODY.pack(first, count)
        out.append(body + struct.pack("<I", zlib.crc32(body)))
    return b"".join(out)


def parse_acks(data: bytes) -> tuple[list[tuple[int, int]], int]:
    """The ranges in an acknowledgement file, and how many of its records were damaged."""
    ranges: list[tuple[int, int]] = []
    bad = 0
    for pos in range(0, len(data) - ACK.size + 1, ACK.size):
        first, count, crc = ACK.unpack_from(data, pos)
        if zlib.crc32(data[pos : pos + 12]) == crc:
            ranges.append((first, count))
        else:
            bad += 1
    if len(data) % ACK.size:
        bad += 1
    return ranges, bad
