"""What a kill leaves half-done in a spool directory, and what the next process makes of it.

The kill -9 loop (test_crash_kill9.py) meets these at random; here each one
is built exactly, on a directory whose owner is dead (no lock held), and a
new spool adopts it.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import pytest

from flagstream.delivery.spool import EventSpool
from flagstream.delivery.spool import format as fmt
from flagstream.delivery.spool.files import list_dir, segment_name


def _adopt(directory: Path) -> EventSpool:
    """A new spool on ``directory`` whose keeper has run its adoption pass (on this thread)."""
    spool = EventSpool(directory, fsync="never")
    spool._keeper.stop()  # its passes run here instead, one at a time
    spool._keeper.run_pass(time.monotonic() + 3600.0)  # scan and adopt now, not in 2 s
    return spool


def _dead_owner_segment(directory: Path, data: bytes) -> tuple[str, Path]:
    owner = secrets.token_hex(16)
    path = directory / segment_name(owner, 1)
    path.write_bytes(data)
    (directory / f"{owner}.lock").touch()  # its lock file, free: the owner is dead
    return owner, path


@pytest.mark.parametrize("written", [0, 1, 20, fmt.HEADER_SIZE - 1, fmt.HEADER_SIZE])
def test_a_segment_killed_while_being_created_leaves_a_temporary_file_that_the_adopter_removes(
    tmp_path: Path, written: int
) -> None:
    # A segment is written under a temporary name and renamed once its header is whole, so a
    # SIGKILL in between leaves ``.<segment>.tmp`` (no event can be in it), never a segment
    # with a partial header. The kill loop hit the old window on its own.
    header = fmt.encode_header(int(time.time() * 1000), secrets.token_bytes(16))
    owner, path = _dead_owner_segment(tmp_path, header)
    temp = tmp_path / f".{segment_name(owner, 2)}.tmp"
    temp.write_bytes(header[:written])
    spool = _adopt(tmp_path)
    try:
        spool._keeper.run_pass(time.monotonic() + 7200.0)  # release the drained owner
        dropped = spool.stats().dropped
    finally:
        spool.close()
    assert dropped == {}, "no event was lost, so none may be counted as dropped"
    assert sorted(os.listdir(tmp_path)) == [], "nothing of the dead owner may stay behind"
    assert not path.exists()


@pytest.mark.parametrize("written", [0, 1, 20, fmt.HEADER_SIZE - 1])
def test_a_segment_cut_inside_its_header_is_set_aside_and_counted(tmp_path: Path, written: int) -> None:
    # Segments only ever appear with a whole header, so a shorter one was damaged after it was
    # written (truncated): it may have held events, which are counted lost.
    header = fmt.encode_header(int(time.time() * 1000), secrets.token_bytes(16))
    _, path = _dead_owner_segment(tmp_path, header[:written])
    spool = _adopt(tmp_path)
    try:
        assert spool.stats().dropped == {"spool_corrupt": 1}
    finally:
        spool.close()
    assert not path.exists()
    assert (tmp_path / (path.name + ".corrupt")).exists()


def test_a_segment_with_a_whole_header_and_no_records_is_adopted_and_removed(tmp_path: Path) -> None:
    header = fmt.encode_header(int(time.time() * 1000), secrets.token_bytes(16))
    _dead_owner_segment(tmp_path, header)
    spool = _adopt(tmp_path)
    try:
        assert spool.stats().dropped == {}
    finally:
        spool.close()


def test_a_segment_its_owner_started_after_the_listing_is_adopted_with_its_acknowledgements(
    tmp_path: Path,
) -> None:
    # The keeper lists the directory, then adopts. An owner alive at the listing may start a
    # segment and die before the claim: adopting only what the listing saw left that segment
    # out, and releasing the owner then deleted its acknowledgements (all replayed, later).
    header = fmt.encode_header(int(time.time() * 1000), secrets.token_bytes(16))

    def event(seq: int) -> bytes:
        return fmt.encode_record(seq, fmt.CONTEXT, 0, b"{}") + fmt.encode_record(seq, fmt.EVENT, 0, b"{}")

    spool = EventSpool(tmp_path, fsync="never")
    spool._keeper.stop()  # before the dead owner appears: adoption happens only below
    try:
        owner, _first = _dead_owner_segment(tmp_path, header + event(0))
        stale = list_dir(str(tmp_path))  # the listing of the pass, taken before the owner's last segment
        (tmp_path / segment_name(owner, 2)).write_bytes(header + event(1))
        (tmp_path / f"{owner}-00000002.ack").write_bytes(fmt.encode_acks([(1, 1)]))
        spool._keeper._adopt(stale)
        adopted = sorted((s.number, s.settled.ranges()) for s in spool._backlog)
    finally:
        spool.close()
    assert adopted == [(1, []), (2, [(1, 1)])]
