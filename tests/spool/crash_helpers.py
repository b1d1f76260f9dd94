"""Harness for the spool's crash, multi-process and fork tests: producer processes, pipes, checks.

A :class:`Producer` runs ``producer.py`` and reads what it reports (see that
script's docstring) with deadlines, never sleeps. :class:`Ledger` collects
the reports of every producer of a run, and :func:`check_delivery` compares
them with what the collector stored and received.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flagstream.collector import Collector
from flagstream.delivery.processor import BatchEventProcessor
from flagstream.delivery.retry import RetryPolicy
from flagstream.delivery.spool import format as fmt

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PRODUCER = str(HERE / "producer.py")
DATAFILE = str(ROOT / "tests" / "fixtures" / "basic_datafile.json")

_VISITORS_KEY = b'"visitors":['


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass (a deadline, not a sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


@dataclass
class Ledger:
    """What the producers of one run said: announced visitors, events on disk, owners."""

    announced: set[str] = field(default_factory=set)
    durable: dict[str, str] = field(default_factory=dict)  # uuid -> visitor: the call returned, on disk
    in_memory: dict[str, str] = field(default_factory=dict)  # uuid -> visitor: returned, not on disk
    owners: dict[str, int] = field(default_factory=dict)  # spool owner -> pid
    stats: list[dict[str, Any]] = field(default_factory=list)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)  # spool owner -> drops by reason

    @property
    def returned_visitors(self) -> set[str]:
        return set(self.durable.values()) | set(self.in_memory.values())

    def take(self, line: str) -> str:
        """Record one reported line; returns its kind."""
        kind, _, rest = line.partition(" ")
        if kind == "b":
            self.announced.add(rest.split()[0])
        elif kind in ("u", "m"):
            uuid, _, visitor = rest.partition(" ")
            (self.durable if kind == "u" else self.in_memory)[uuid] = visitor
        elif kind == "owner":
            owner, _, pid = rest.partition(" ")
            self.owners[owner] = int(pid)
        elif kind == "stats":
            self.stats.append(json.loads(rest))
        elif kind == "dropped":
            owner, _, counts = rest.partition(" ")
            self.dropped[owner] = json.loads(counts)
        else:
            raise AssertionError(f"producer said something unexpected: {line!r}")
        return kind


class Producer:
    """One ``producer.py`` process and the lines it has reported so far."""

    def __init__(self, config: dict[str, Any], ledger: Ledger, log_dir: Path) -> None:
        self.ledger = ledger
        self.owner: str | None = None
        self.reported = 0  # "u"/"m" lines read
        self.large_started = 0  # "b ... L" lines read: calls with a large event begun
        self.finished = False  # said "stats"
        self._buffer = b""
        self._stderr = open(log_dir / f"producer-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
        self.process = subprocess.Popen(
            [sys.executable, PRODUCER, json.dumps(config)],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        assert self.process.stdout is not None
        self._fd = self.process.stdout.fileno()
        os.set_blocking(self._fd, False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def _feed(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            kind = self.ledger.take(raw.decode("ascii"))
            if kind in ("u", "m"):
                self.reported += 1
            elif kind == "b" and raw.endswith(b" L"):
                self.large_started += 1
            elif kind == "owner":
                self.owner = raw.split()[1].decode("ascii")
            elif kind == "stats":
                self.finished = True

    def pump(self, until: Callable[[], bool], timeout: float) -> bool:
        """Read reports until ``until()`` holds, the pipe ends, or ``timeout`` passes; returns ``until()``."""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self._fd, selectors.EVENT_READ)
            while not until():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if not sel.select(left):
                    continue
                data = os.read(self._fd, 1 << 16)
                if not data:
                    break
                self._feed(data)
        return until()

    def pump_for(self, seconds: float) -> None:
        """Keep reading for ``seconds`` (to let a kill land at a random moment, not to synchronise)."""
        self.pump(lambda: False, seconds)

    def kill(self) -> None:
        """SIGKILL, reap, and read what was reported before death."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.finish(timeout=10.0)

    def finish(self, timeout: float) -> int:
        """Read to the end of the pipe and reap; returns the exit code."""
        self.pump(lambda: False, timeout)
        code = self.process.wait(timeout=max(1.0, timeout))
        assert self.process.stdout is not None
        self.process.stdout.close()
        self._stderr.close()
        assert not self._buffer, f"half a line left in the pipe: {self._buffer[:80]!r}"
        return code


class Fleet:
    """Several producers read together (one selector), so that no pipe fills while another is awaited."""

    def __init__(self, ledger: Ledger, log_dir: Path) -> None:
        self.ledger = ledger
        self.log_dir = log_dir
        self.live: list[Producer] = []
        self.killed: list[Producer] = []
        self.finished: list[Producer] = []
        self._killing: set[Producer] = set()
        self._sel = selectors.DefaultSelector()

    def start(self, config: dict[str, Any], timeout: float = 30.0) -> Producer:
        producer = Producer({"datafile": DATAFILE, **config}, self.ledger, self.log_dir)
        self._sel.register(producer._fd, selectors.EVENT_READ, producer)
        self.live.append(producer)
        if not self.pump(lambda: producer.owner is not None or not producer.alive(), timeout):
            raise AssertionError(f"producer did not start within {timeout}s (see {self.log_dir})")
        assert producer.owner is not None, f"producer exited at start (see {self.log_dir})"
        return producer

    @property
    def reported(self) -> int:
        return sum(p.reported for p in (*self.live, *self.killed, *self.finished))

    def pump(self, until: Callable[[], bool], timeout: float) -> bool:
        """Read every live producer until ``until()`` holds or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while not until():
            left = deadline - time.monotonic()
            if left <= 0 or not self.live:
                break
            for key, _ in self._sel.select(min(left, 0.5)):
                producer: Producer = key.data
                data = os.read(producer._fd, 1 << 16)
                if data:
                    producer._feed(data)
                else:
                    self._ended(producer)
        return until()

    def _ended(self, producer: Producer) -> None:
        self._sel.unregister(producer._fd)
        self.live.remove(producer)
        code = producer.finish(timeout=10.0)
        if producer in self._killing:
            self.killed.append(producer)
        else:
            assert code == 0, f"producer {producer.pid} failed ({code}), see {self.log_dir}"
            assert producer.finished, f"producer {producer.pid} ended without its stats, see {self.log_dir}"
            self.finished.append(producer)

    def kill(self, producer: Producer) -> None:
        """SIGKILL one live producer and read what it reported before it died."""
        self._killing.add(producer)
        os.kill(producer.pid, signal.SIGKILL)
        self.pump(lambda: producer not in self.live, 10.0)
        assert producer not in self.live

    def wait_all(self, timeout: float) -> bool:
        """Read until every live producer has ended."""
        return self.pump(lambda: not self.live, timeout)

    def close(self) -> None:
        """Kill whatever still runs (a failed test), and the selector."""
        for producer in list(self.live):
            self.kill(producer)
        self._sel.close()


def start_producer(
    config: dict[str, Any], ledger: Ledger, log_dir: Path, *, timeout: float = 30.0
) -> Producer:
    """Start a producer and wait until it has built its client (said ``owner``)."""
    producer = Producer({"datafile": DATAFILE, **config}, ledger, log_dir)
    if not producer.pump(lambda: producer.owner is not None, timeout):
        producer.kill()
        raise AssertionError(f"producer did not start within {timeout}s (see {log_dir})")
    return producer


# -- what the collector saw ------------------------------------------------------------


def visitor_spans(body: bytes) -> list[tuple[str, str, bytes]]:
    """``(uuid, visitor_id, exact visitor bytes)`` for each visitor in one request body."""
    start = body.index(_VISITORS_KEY) + len(_VISITORS_KEY)
    text = body.decode("ascii")  # the tests only send ASCII, so character offsets are byte offsets
    decoder = json.JSONDecoder()
    out = []
    pos = start
    while text[pos] != "]":
        visitor, end = decoder.raw_decode(text, pos)
        for snapshot in visitor["snapshots"]:
            for event in snapshot["events"]:
                out.append((event["uuid"], visitor["visitor_id"], body[pos:end]))
        pos = end + 1 if text[end] == "," else end
    return out


def stored_uuids(collector: Collector) -> dict[str, str]:
    """uuid -> visitor id of every event the collector stored."""
    rows = collector.state.store.query("SELECT uuid, visitor_id FROM events")
    return dict(rows)


@dataclass
class DeliveryCheck:
    """The outcome of :func:`check_delivery`, with the numbers a report quotes."""

    reported: int
    stored: int
    duplicates: int
    unreported_delivered: int  # delivered, announced, but the producer died before reporting them
    bodies: int
    variants: int  # uuids seen with more than one byte string (must be 0)


def check_delivery(
    collector: Collector, ledger: Ledger, *, expect: Iterable[str] | None = None
) -> DeliveryCheck:
    """Every durable uuid stored, nothing unknown stored, one byte string per uuid."""
    stored = stored_uuids(collector)
    want = set(ledger.durable if expect is None else expect)
    missing = want - set(stored)
    assert not missing, (
        f"{len(missing)} accepted events never reached the collector, e.g. {sorted(missing)[:3]}"
    )
    known = set(ledger.durable) | set(ledger.in_memory)
    unknown = {u: v for u, v in stored.items() if u not in known and v not in ledger.announced}
    assert not unknown, f"{len(unknown)} events nobody produced, e.g. {list(unknown.items())[:3]}"
    # A stored uuid that was never reported must belong to a call that had started (its
    # visitor was announced) and never returned: the producer was killed inside it.
    unreported = {u: v for u, v in stored.items() if u not in known}
    assert not set(unreported.values()) & ledger.returned_visitors, "a returned call's uuid changed"
    seen: dict[str, bytes] = {}
    variants: set[str] = set()
    bodies = collector.raw_bodies()
    for body in bodies:
        for uuid, _visitor, data in visitor_spans(body):
            if seen.setdefault(uuid, data) != data:
                variants.add(uuid)
    assert not variants, f"{len(variants)} events were sent with different bytes, e.g. {sorted(variants)[:3]}"
    return DeliveryCheck(
        len(want), len(stored), collector.duplicate_count(), len(unreported), len(bodies), len(variants)
    )


def drain(
    collector: Collector, directory: str, want: Iterable[str], spool: dict[str, Any], timeout: float
) -> dict[str, object]:
    """A processor in the test adopts what dead processes left in ``directory`` and delivers it.

    Returns its counters once every uuid of ``want`` is stored and nothing but its own files
    is left; checks that closing it leaves the directory empty.
    """
    processor = BatchEventProcessor(
        batch_size=20,
        flush_interval=0.05,
        retry=RetryPolicy(max_attempts=1000, backoff_base=0.02, backoff_max=0.25, deadline=600.0),
        spool={**spool, "directory": directory},
    )
    wanted = set(want)
    try:
        own = processor.spool.owner if processor.spool is not None else "?"

        def drained() -> bool:
            theirs = [
                n for n in os.listdir(directory) if not n.startswith(own) and not n.endswith(".corrupt")
            ]
            return not theirs and wanted <= set(stored_uuids(collector))

        assert wait_until(drained, timeout), (
            f"not drained in {timeout}s: left {sorted(os.listdir(directory))[:10]}, stats {processor.stats()}"
        )
        stats = processor.stats()
        result: dict[str, object] = {"replayed": stats.replayed, **dict(stats.dropped)}
    finally:
        processor.close(timeout=10.0)
    # A kill between creating a segment and writing its 40-byte header leaves a file the
    # adopter sets aside as *.corrupt: no event can be in it (see test_crash_artifacts.py).
    left = {name: os.path.getsize(os.path.join(directory, name)) for name in os.listdir(directory)}
    headerless = {
        n: size for n, size in left.items() if n.endswith(".seg.corrupt") and size < fmt.HEADER_SIZE
    }
    assert left == headerless, f"a closed, idle processor leaves nothing behind but headerless files: {left}"
    result["headerless_segments"] = len(headerless)
    return result


# -- the directory -----------------------------------------------------------------------


def dir_bytes(directory: str) -> int:
    """Bytes of every file in ``directory`` now (files vanish while we look: skip them)."""
    total = 0
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    total += entry.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    continue
    except FileNotFoundError:
        return 0
    return total


def files_of(directory: str, owner: str) -> list[str]:
    """Names in ``directory`` that belong to spool owner ``owner``."""
    return sorted(name for name in os.listdir(directory) if name.startswith((owner, f".{owner}")))


def torn_tails(directory: str, owner: str) -> int:
    """How many of ``owner``'s segments end in an incomplete record (a write cut by the kill)."""
    torn = 0
    for name in files_of(directory, owner):
        if not name.endswith(".seg"):
            continue
        try:
            data = (Path(directory) / name).read_bytes()
        except FileNotFoundError:
            continue
        items = fmt.scan(data, fmt.HEADER_SIZE, len(data), at_end=True)
        torn += any(isinstance(item, fmt.Corrupt) and item.torn for item in items)
    return torn


class DirSampler:
    """A thread that samples a directory's size against a bound that may change (live processes)."""

    def __init__(self, directory: str, bound: Callable[[], int], interval: float = 0.01) -> None:
        self.directory = directory
        self.bound = bound
        self.interval = interval
        self.samples = 0
        self.max_bytes = 0
        self.worst_excess = 0  # largest size - bound seen (<= 0 when the bound always held)
        self.over: list[tuple[float, int, int]] = []  # (time, size, bound) when above the bound
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dir-sampler", daemon=True)
        self._started = time.monotonic()

    def _run(self) -> None:
        self.worst_excess = -(1 << 62)
        while not self._stop.wait(self.interval):
            bound = self.bound()
            size = dir_bytes(self.directory)
            self.samples += 1
            self.max_bytes = max(self.max_bytes, size)
            self.worst_excess = max(self.worst_excess, size - bound)
            if size > bound and len(self.over) < 1000:
                self.over.append((time.monotonic() - self._started, size, bound))

    def __enter__(self) -> DirSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5.0)
