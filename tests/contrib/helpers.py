"""Helpers for the integration tests: real server processes with deadlines, and delivery checks."""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from flagstream.collector import Collector

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(collector: Collector, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
        "FLAGSTREAM_EVENT_ENDPOINT": collector.events_url,
        **extra,
    }


class Server:
    """A real server process; its output lines arrive on a queue so tests wait with deadlines."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            argv,
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # our kill() reaches the server's own children too
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line)
        self.lines.put(None)

    @property
    def output(self) -> str:
        return "".join(self.seen)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {text!r} within {timeout}s:\n{self.output}") from None
            if line is None:
                raise AssertionError(f"process ended before {text!r}:\n{self.output}")
            self.seen.append(line)
            if text in line:
                return line

    def wait_for_count(self, text: str, n: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        count = sum(text in line for line in self.seen)
        while count < n:
            self.wait_for(text, max(0.0, deadline - time.monotonic()))
            count += 1

    def stop(self, sig: signal.Signals | None = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` (``None``: none, the server was told otherwise) and wait for the exit code."""
        if sig is not None:
            self.popen.send_signal(sig)
        code = self.popen.wait(timeout)
        self._reader.join(timeout)
        while (line := self.lines.get(timeout=timeout)) is not None:
            self.seen.append(line)
        return code

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)
        if self.popen.stdout is not None:
            self.popen.stdout.close()


def get_json(port: int, path: str, timeout: float = 10.0) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, body
        return json.loads(body)
    finally:
        conn.close()


def hit(port: int, n: int, threads: int = 8, path: str = "/checkout") -> list[Any]:
    """``n`` requests (``?user=user-i``) from ``threads`` threads; the JSON answers."""
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda i: get_json(port, f"{path}?user=user-{i}"), range(n)))


PYTHON = sys.executable
BIN = Path(sys.executable).parent


def assert_each_event_once(
    collector: Collector, users: int, per_user: int = 2, timeout: float = 10.0
) -> None:
    """Every event (``per_user`` for each of ``users`` visitors) stored exactly once, none twice."""
    collector.wait_for_events(users * per_user, timeout)
    assert collector.event_count() == users * per_user, (collector.event_count(), collector.duplicate_count())
    assert collector.duplicate_count() == 0
    assert collector.state.store.visitor_count() == users
