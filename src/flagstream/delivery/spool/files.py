"""Spool directory plumbing: file names, owner locks, listing, directory fsync (Linux/macOS).

Every process that writes to a spool directory has an *owner id* (32 hex
digits) and holds an exclusive ``flock`` on ``<owner>.lock`` for as long as it
lives. The kernel drops the lock when the process dies, SIGKILL and OOM kill
included, so "the lock is free" means "the owner is gone" without any PID
checks (PIDs are reused, and ``fcntl`` locks vanish when *any* descriptor of the
file is closed, which is why they are not used). A lock file appears under its
final name only once it is locked: it is created and locked under a temporary
name and then hard-linked into place, which also fails rather than replaces if
another process claimed the name first.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
from dataclasses import dataclass

__all__ = [
    "LOCAL_FILESYSTEMS",
    "NETWORK_FILESYSTEMS",
    "WRITER_FRESH",
    "Listing",
    "claim_lock",
    "create_lock",
    "filesystem_type",
    "fsync_dir",
    "list_dir",
    "owner_segments",
    "segment_name",
]

SEGMENT_RE = re.compile(r"^([0-9a-f]{32})-(\d{8})\.seg$")
ACK_RE = re.compile(r"^([0-9a-f]{32})-(\d{8})\.ack$")
LOCK_RE = re.compile(r"^([0-9a-f]{32})\.lock$")
#: Where a write goes to the page cache and returns (the writer may hold the interpreter lock).
LOCAL_FILESYSTEMS = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "zfs", "bcachefs", "jfs", "tmpfs", "ramfs", "overlay"}
)
#: File systems where flock is emulated, local-only or missing: the spool warns on them.
NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "fuse.sshfs", "fuse.s3fs", "afs"}
)


def segment_name(owner: str, number: int) -> str:
    """``<owner>-<number>.seg``."""
    return f"{owner}-{number:08d}.seg"


def owner_segments(directory: str, owner: str) -> list[tuple[str, int]]:
    """The names and numbers of ``owner``'s segments in ``directory`` now, oldest first."""
    found = []
    for name in os.listdir(directory):
        m = SEGMENT_RE.match(name)
        if m is not None and m[1] == owner:
            found.append((name, int(m[2])))
    return sorted(found, key=lambda item: item[1])


def ack_name(segment: str) -> str:
    """The acknowledgement file beside ``segment``."""
    return segment[: -len(".seg")] + ".ack"


def fsync_dir(directory: str) -> None:
    """Make created, renamed and removed names in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def create_lock(directory: str, owner: str) -> int:
    """Create ``<owner>.lock`` already locked; returns its descriptor (raises OSError)."""
    final = os.path.join(directory, f"{owner}.lock")
    temp = os.path.join(directory, f".{owner}.lock.tmp")
    fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        if not _lock(fd):
            raise OSError(errno.EWOULDBLOCK, "a new lock file is locked by someone else", temp)
        os.link(temp, final)  # fails with EEXIST instead of replacing someone's lock
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    os.unlink(temp)
    return fd


def claim_lock(directory: str, owner: str) -> int | None:
    """Lock a dead owner's ``<owner>.lock``; the descriptor, or ``None`` if it is alive or gone.

    When the owner left segments but no lock file, one is created for the claim.
    """
    path = os.path.join(directory, f"{owner}.lock")
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        try:
            return create_lock(directory, owner)
        except OSError:
            return None
    try:
        if not _lock(fd):
            os.close(fd)
            return None
        # The name may have been unlinked (owner fully drained by another adopter) and
        # re-created between our open and our lock: only the file under the name counts.
        mine, current = os.fstat(fd), os.stat(path)
    except OSError:
        os.close(fd)
        return None
    if (mine.st_dev, mine.st_ino) != (current.st_dev, current.st_ino):
        os.close(fd)
        return None
    return fd


#: Seconds since a segment was last modified within which its owner counts as a live writer
#: (live keepers touch their active segment about every second).
WRITER_FRESH = 10.0


@dataclass(slots=True)
class Entry:
    """One segment file in a listing."""

    name: str
    owner: str
    number: int
    size: int
    mtime: float


@dataclass(slots=True)
class Listing:
    """What a spool directory holds, from one scan."""

    segments: list[Entry]
    locks: set[str]
    acks: dict[str, int]  # ack file name -> size
    corrupt: dict[str, int]  # *.corrupt name -> size
    temp: list[str]

    @property
    def total_bytes(self) -> int:
        """Bytes counted against ``max_bytes``: segments, acknowledgements and set-aside files."""
        return sum(e.size for e in self.segments) + sum(self.acks.values()) + sum(self.corrupt.values())

    def writers(self, me: str, now: float) -> int:
        """How many processes may be writing here: ``me``, and each owner with a lock file
        whose segments were modified in the last :data:`WRITER_FRESH` seconds (``now`` is
        ``time.time()``).

        A live writer's keeper touches its active segment on every scan. A dead owner's
        lock file stays until its backlog is drained, which after a crash loop can be
        dozens of them: counted as writers, they shrank each live writer's share of
        ``max_bytes`` to a sliver and it dropped its own events with the disk mostly free
        (``tests/spool/test_outage_caps.py``).
        """
        live = {e.owner for e in self.segments if e.owner in self.locks and now - e.mtime < WRITER_FRESH}
        return len(live | {me})

    def owners(self) -> set[str]:
        """Every owner id that has a lock file, a segment or an acknowledgement file.

        An owner whose lock and segments are all gone but for an acknowledgement file
        is adopted too, so that the file is removed instead of staying for good.
        """
        acked = {m[1] for name in self.acks if (m := ACK_RE.match(name)) is not None}
        return self.locks | {e.owner for e in self.segments} | acked


def list_dir(directory: str) -> Listing:
    """Scan ``directory`` once (raises OSError if it cannot be read)."""
    listing = Listing([], set(), {}, {}, [])
    with os.scandir(directory) as entries:
        for entry in entries:
            name = entry.name
            try:
                if (m := SEGMENT_RE.match(name)) is not None:
                    st = entry.stat()
                    listing.segments.append(Entry(name, m[1], int(m[2]), st.st_size, st.st_mtime))
                elif (m := LOCK_RE.match(name)) is not None:
                    listing.locks.add(m[1])
                elif ACK_RE.match(name):
                    listing.acks[name] = entry.stat().st_size
                elif name.endswith(".corrupt"):
                    listing.corrupt[name] = entry.stat().st_size
                elif name.endswith((".lock.tmp", ".seg.tmp")):
                    listing.temp.append(name)
            except FileNotFoundError:
                continue  # removed while we looked
    listing.segments.sort(key=lambda e: (e.owner, e.number))
    return listing


def filesystem_type(directory: str) -> str | None:
    """The type of the file system holding ``directory`` (from /proc/mounts), if known."""
    try:
        with open("/proc/mounts", encoding="utf-8", errors="replace") as mounts:
            rows = [line.split()[:3] for line in mounts]
    except OSError:
        return None
    path = os.path.realpath(directory)
    best, kind = "", None
    for row in rows:
        if len(row) < 3:
            continue
        mount = row[1].replace("\\040", " ")
        inside = path == mount or path.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, row[2]
    return kind
