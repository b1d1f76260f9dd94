"""The append's write with the interpreter lock held, where it is used, and how it stops being used.

On a local file system the spool writes through libc with the lock held (see
``flagstream.delivery.spool.writer``); on others, and once one such write was
slow, it writes with ``os.write``. Either way the bytes on disk are the same.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from tests.delivery.factories import context, conversion

from flagstream.delivery.spool import EventSpool
from flagstream.delivery.spool import format as fmt
from flagstream.delivery.spool import spool as spool_module
from flagstream.delivery.spool import writer as writer_module
from flagstream.delivery.spool.writer import ACCEPTED, ACCEPTED_WAKE, FALLBACK
from flagstream.events.payload import visitor_bytes


def _visitors_on_disk(directory: Path) -> list[bytes]:
    out = []
    for path in sorted(directory.glob("*.seg")):
        data = path.read_bytes()
        for item in fmt.scan(data, fmt.HEADER_SIZE, len(data), at_end=True):
            assert not isinstance(item, fmt.Corrupt)
            if item.kind == fmt.EVENT:
                out.append(item.data)
    return out


def _append_some(spool: EventSpool, count: int) -> list[bytes]:
    events = [conversion(context(), user=f"user-{i}") for i in range(count)]
    assert all(spool.append(event) in (ACCEPTED, ACCEPTED_WAKE) for event in events)
    return [visitor_bytes(event) for event in events]


def test_a_spool_on_a_local_disk_writes_with_the_lock_held_and_the_records_are_whole(tmp_path):
    spool = EventSpool(tmp_path, fsync="never")
    try:
        assert spool._write_held, f"{spool_module.filesystem_type(str(tmp_path))} is a local file system"
        written = _append_some(spool, 50)
        assert _visitors_on_disk(tmp_path) == written
    finally:
        spool._keeper.stop()
        spool.close()


def test_a_spool_on_a_network_file_system_writes_with_os_write(tmp_path, monkeypatch):
    monkeypatch.setattr(spool_module, "filesystem_type", lambda directory: "nfs4")
    spool = EventSpool(tmp_path, fsync="never")
    try:
        assert not spool._write_held
        written = _append_some(spool, 20)
        assert _visitors_on_disk(tmp_path) == written
    finally:
        spool._keeper.stop()
        spool.close()


def test_one_slow_held_write_turns_held_writes_off_with_one_warning(tmp_path, monkeypatch, caplog):
    logger = logging.getLogger("test-held-write")
    spool = EventSpool(tmp_path, fsync="never", logger=logger)
    try:
        assert spool._write_held
        monkeypatch.setattr(writer_module, "SLOW_HELD_WRITE", -1.0)  # every held write is "slow"
        with caplog.at_level(logging.WARNING, logger="test-held-write"):
            written = _append_some(spool, 10)
        assert not spool._write_held
        warnings = [r for r in caplog.records if "release the interpreter lock" in r.getMessage()]
        assert len(warnings) == 1
        assert _visitors_on_disk(tmp_path) == written  # the slow write itself was kept
    finally:
        spool._keeper.stop()
        spool.close()


def test_a_failing_held_write_reports_its_errno_and_the_event_stays_in_memory(tmp_path):
    spool = EventSpool(tmp_path, fsync="never")
    read_only = os.open(os.devnull, os.O_RDONLY)
    try:
        assert spool._write_held
        before = _append_some(spool, 3)
        segment = spool._own[-1]
        os.dup2(read_only, segment.fd)  # the segment's descriptor now refuses writes: EBADF
        assert spool.append(conversion(context(), user="refused")) == FALLBACK
        assert spool.degraded_events == 1
        assert spool.last_error is not None
        assert "Bad file descriptor" in spool.last_error
        assert _visitors_on_disk(tmp_path) == before  # nothing torn, nothing lost
    finally:
        os.close(read_only)
        spool._keeper.stop()
        spool.close()
