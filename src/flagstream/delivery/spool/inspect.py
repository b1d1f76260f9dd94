"""Reading a spool directory from outside: what ``flagstream spool status`` and ``verify`` report.

Nothing here writes: owners are tested for life with a shared ``flock`` that is
released at once (a live owner holds its lock exclusively), and segments are
read and checked record by record.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass, field

from flagstream.delivery.spool import format as fmt
from flagstream.delivery.spool.files import list_dir
from flagstream.delivery.spool.ranges import SeqRanges

__all__ = ["DirectoryReport", "OwnerReport", "SegmentReport", "inspect_directory", "owner_alive"]


@dataclass(slots=True)
class SegmentReport:
    """One segment file, checked."""

    name: str
    bytes: int
    created: float  # time.time(); 0.0 when the header is unreadable
    events: int = 0
    settled: int = 0
    corrupt: int = 0  # damaged stretches, torn tail included
    torn: bool = False
    header_error: str | None = None

    @property
    def unsettled(self) -> int:
        """Events waiting to be delivered."""
        return self.events - self.settled


@dataclass(slots=True)
class OwnerReport:
    """The files of one writing process."""

    owner: str
    alive: bool
    segments: list[SegmentReport] = field(default_factory=list)

    @property
    def unsettled(self) -> int:
        """Events of this owner waiting to be delivered."""
        return sum(s.unsettled for s in self.segments)


@dataclass(slots=True)
class DirectoryReport:
    """A whole spool directory."""

    directory: str
    owners: list[OwnerReport]
    bytes: int
    corrupt_files: list[str]

    @property
    def unsettled(self) -> int:
        """Events waiting to be delivered, over every owner."""
        return sum(o.unsettled for o in self.owners)

    @property
    def oldest(self) -> float:
        """Creation time of the oldest segment holding unsettled events (0.0: none)."""
        times = [s.created for o in self.owners for s in o.segments if s.unsettled and s.created]
        return min(times) if times else 0.0

    @property
    def damaged(self) -> int:
        """Damaged records, unreadable headers and set-aside files."""
        records = sum(s.corrupt + (s.header_error is not None) for o in self.owners for s in o.segments)
        return records + len(self.corrupt_files)

    def age(self, now: float | None = None) -> float:
        """Seconds since the oldest unsettled segment was created."""
        oldest = self.oldest
        return max(0.0, (now or time.time()) - oldest) if oldest else 0.0


def owner_alive(directory: str, owner: str) -> bool:
    """Whether the process that writes as ``owner`` is running (it holds its lock)."""
    try:
        fd = os.open(os.path.join(directory, f"{owner}.lock"), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also releases our shared lock at once
    return False


def check_segment(path: str) -> SegmentReport:
    """Read one segment and its acknowledgements completely."""
    report = SegmentReport(os.path.basename(path), 0, 0.0)
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        report.header_error = f"cannot read: {exc}"
        return report
    report.bytes = len(data)
    try:
        header = fmt.decode_header(data[: fmt.HEADER_SIZE])
    except fmt.HeaderError as exc:
        report.header_error = str(exc)
        return report
    report.created = header.created_ms / 1000.0
    settled = SeqRanges()
    with contextlib.suppress(OSError), open(path[: -len(".seg")] + ".ack", "rb") as file:
        for first, count in fmt.parse_acks(file.read())[0]:
            settled.add(first, count)
    for item in fmt.scan(data, fmt.HEADER_SIZE, len(data), at_end=True):
        if isinstance(item, fmt.Corrupt):
            report.corrupt += 1
            report.torn = report.torn or item.torn
        elif item.kind == fmt.EVENT:
            report.events += 1
            report.settled += item.seq in settled
    return report


def inspect_directory(directory: str) -> DirectoryReport:
    """Check every segment of ``directory`` (raises OSError if it cannot be listed)."""
    listing = list_dir(directory)
    owners = {owner: OwnerReport(owner, owner_alive(directory, owner)) for owner in sorted(listing.owners())}
    for entry in listing.segments:
        owners[entry.owner].segments.append(check_segment(os.path.join(directory, entry.name)))
    return DirectoryReport(directory, list(owners.values()), listing.total_bytes, sorted(listing.corrupt))
