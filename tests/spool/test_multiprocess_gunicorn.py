"""A real gunicorn with ``--preload`` and 4 workers sharing one spool directory.

The app (``producer.wsgi_app``) builds its client once, in the master, with
the spool from ``FLAGSTREAM_SPOOL_DIR``; each forked worker becomes a new
spool owner. Requests come over real HTTP from a few client threads; gunicorn
is stopped with SIGTERM, and every event a response reported must then be at
the collector: exactly once when nothing was killed, and also when one worker
was SIGKILLed mid-run (the master forks a replacement, and a live process
adopts the dead worker's files).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.spool.crash_helpers import DATAFILE, HERE, ROOT, files_of, stored_uuids, wait_until

from flagstream.collector import Collector, FaultConfig

GUNICORN = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which("gunicorn")
WORKERS = 4
IN_FLIGHT = 4  # the processor's default max_in_flight
BATCH = 20


@dataclass
class Served:
    """What the responses said."""

    events: dict[str, str] = field(default_factory=dict)  # uuid -> visitor
    on_disk: set[str] = field(default_factory=set)
    pids: dict[int, str] = field(default_factory=dict)  # worker pid -> spool owner
    failed: set[str] = field(default_factory=set)  # visitors whose request got no answer
    lock: threading.Lock = field(default_factory=threading.Lock)


class Gunicorn:
    """gunicorn serving ``producer:wsgi_app()`` on a socket it inherits, so its port is known."""

    def __init__(self, directory: str, endpoint: str, log: Path) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(HERE)]),
            "FLAGSTREAM_SPOOL_DIR": directory,
            "FLAGSTREAM_TEST_ENDPOINT": endpoint,
            "FLAGSTREAM_TEST_DATAFILE": DATAFILE,
        }
        fd = self.listener.fileno()
        self.log_path = log
        self._log = log.open("wb")
        assert GUNICORN is not None
        self.process = subprocess.Popen(
            [
                GUNICORN,
                "--preload",
                f"--workers={WORKERS}",
                f"--bind=fd://{fd}",
                "--graceful-timeout=20",
                "--timeout=60",
                "--chdir",
                str(HERE),
                "producer:wsgi_app()",
            ],
            pass_fds=(fd,),
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def get(self, visitor: str) -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            conn.request("GET", f"/?visitor={visitor}")
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200, body
            return json.loads(body)
        finally:
            conn.close()

    def stop(self, timeout: float = 40.0) -> int:
        """SIGTERM (graceful) and wait; kill -9 only if it would not stop."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise
        finally:
            self.listener.close()
            self._log.close()


@pytest.fixture
def gunicorn_run(tmp_path: Path) -> Iterator[tuple[Collector, Gunicorn, str]]:
    if GUNICORN is None:
        if os.environ.get("CI"):
            pytest.fail("gunicorn is not installed (it is in the dev extra)")
        pytest.skip("gunicorn is not installed (pip install -e '.[dev]')")
    directory = str(tmp_path / "spool")
    with Collector(keep_raw_bodies=True) as collector:
        server = Gunicorn(directory, collector.events_url, tmp_path / "gunicorn.log")
        try:
            assert wait_until(lambda: _answers(server), 30.0, interval=0.05), (
                f"gunicorn did not answer: {(tmp_path / 'gunicorn.log').read_text()[-2000:]}"
            )
            yield collector, server, directory
        finally:
            if server.process.poll() is None:
                server.process.kill()
                server.process.wait(10)
            server.listener.close()  # what stop() closes, when a failed test never reached it:
            server._log.close()  # left open, the next test would fail on its ResourceWarning


def _log_tail(server: Gunicorn) -> str:
    """The end of gunicorn's log, for a failure message (a rare CI failure left nothing else)."""
    return "\ngunicorn log:\n" + server.log_path.read_text(errors="replace")[-3000:]


def _answers(server: Gunicorn) -> bool:
    if server.process.poll() is not None:
        raise AssertionError("gunicorn exited at start")
    try:
        server.get("warmup")
    except OSError:
        return False
    return True


def _send(server: Gunicorn, served: Served, prefix: str, count: int, threads: int = 4) -> None:
    """``count`` requests from ``threads`` client threads, recording what each response said."""

    def client(t: int) -> None:
        for n in range(count // threads):
            visitor = f"{prefix}-{t}-{n}"
            try:
                answer = server.get(visitor)
            except (OSError, http.client.HTTPException, AssertionError):
                with served.lock:
                    served.failed.add(visitor)
                continue
            with served.lock:
                served.pids[int(answer["pid"])] = str(answer["owner"])
                for uuid, on_disk in answer["events"]:
                    served.events[uuid] = visitor
                    if on_disk:
                        served.on_disk.add(uuid)

    workers = [threading.Thread(target=client, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60.0)
    assert not any(worker.is_alive() for worker in workers), "client threads hung"


def test_gunicorn_preload_workers_deliver_every_event_exactly_once_after_sigterm(
    gunicorn_run: tuple[Collector, Gunicorn, str],
) -> None:
    collector, server, directory = gunicorn_run
    served = Served()
    collector.set_faults(FaultConfig(latency=0.3))  # so that events are still spooled at SIGTERM
    _send(server, served, "calm", 400)
    assert not served.failed
    assert len(served.pids) >= 2, f"requests reached only workers {sorted(served.pids)}"
    assert len(set(served.pids.values())) == len(served.pids), "two workers share a spool owner"
    assert served.on_disk == set(served.events), "the spool did not take every event"
    at_stop = collector.event_count()
    assert server.stop() == 0
    stored = stored_uuids(collector)
    missing = set(served.events) - set(stored)
    assert not missing, f"{len(missing)} of {len(served.events)} events lost at a graceful stop"
    assert collector.duplicate_count() == 0
    assert set(stored) - set(served.events) <= _warmup(stored)
    assert os.listdir(directory) == [], "a graceful stop leaves nothing in the spool"
    print(
        f"gunicorn, graceful: {len(served.events)} events from {len(served.pids)} workers, "
        f"{at_stop} at the collector at SIGTERM, all after, no duplicates"
    )


def _warmup(stored: dict[str, str]) -> set[str]:
    return {uuid for uuid, visitor in stored.items() if visitor == "warmup"}


def test_a_gunicorn_worker_killed_with_sigkill_has_its_events_delivered_by_an_adopter(
    gunicorn_run: tuple[Collector, Gunicorn, str],
) -> None:
    collector, server, directory = gunicorn_run
    served = Served()
    _send(server, served, "before", 200)
    before = set(served.pids)
    victim, owner = next(iter(served.pids.items()))
    during = threading.Thread(target=_send, args=(server, served, "during", 400))
    during.start()
    try:
        assert wait_until(lambda: len(served.events) >= 2 * 200 + 100, 30.0)
        os.kill(victim, signal.SIGKILL)  # mid-run: requests are in flight, some to the victim
    finally:
        during.join(90.0)
    _send(server, served, "after", 100)  # served by the survivors and the master's new worker
    reported = set(served.events)
    assert wait_until(lambda: reported <= set(stored_uuids(collector)), 30.0), (
        f"the dead worker's events stayed{_log_tail(server)}"
    )
    assert wait_until(lambda: files_of(directory, owner) == [], 15.0), (
        f"the dead worker's files were not removed: {files_of(directory, owner)}{_log_tail(server)}"
    )
    assert server.stop() == 0, _log_tail(server)
    stored = stored_uuids(collector)
    missing = reported - set(stored)
    assert not missing, f"{len(missing)} of {len(reported)} events lost{_log_tail(server)}"
    started_no_answer = {uuid for uuid, visitor in stored.items() if visitor in served.failed}
    unknown = set(stored) - reported - _warmup(stored) - started_no_answer
    assert not unknown, f"{len(unknown)} events nobody reported{_log_tail(server)}"
    assert collector.duplicate_count() <= IN_FLIGHT * BATCH, collector.duplicate_count()
    assert os.listdir(directory) == [], f"{os.listdir(directory)}{_log_tail(server)}"
    print(
        f"gunicorn, one worker killed: {len(reported)} events, {len(served.failed)} failed requests, "
        f"{collector.duplicate_count()} duplicates, {len(set(served.pids) - before)} new worker(s) answered"
    )
