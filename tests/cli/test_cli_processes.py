"""The command as a real process: entry point, the collector until a signal, the demo end to end."""

from __future__ import annotations

import http.client
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tests.collector.helpers import body_of, impression

from flagstream import _json
from flagstream.demo.run import DemoSummary

ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}


class Proc:
    """A child process whose stdout lines arrive on a queue, so tests wait with a deadline."""

    def __init__(self, *args: str) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "flagstream", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=ENV,
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

    def wait_for(self, text: str, timeout: float = 60) -> str:
        while True:
            line = self.lines.get(timeout=timeout)
            if line is None:
                raise AssertionError(f"process ended before {text!r}:\n{''.join(self.seen)}")
            self.seen.append(line)
            if text in line:
                return line

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        code = self.popen.wait(timeout)
        self._reader.join(timeout)
        while (line := self.lines.get(timeout=timeout)) is not None:
            self.seen.append(line)
        assert self.popen.stdout is not None
        self.popen.stdout.close()
        return code, "".join(self.seen)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)
        if self.popen.stdout is not None:
            self.popen.stdout.close()


def _url_in(line: str) -> str:
    return next(word for word in line.split() if word.startswith("http://")).rstrip("/")


def test_console_script_entry_point_runs() -> None:
    script = Path(sys.executable).parent / "flagstream"
    if not script.exists():
        pytest.skip("the package is not installed with its console script here")
    done = subprocess.run([str(script), "version"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0
    assert done.stdout.startswith("flagstream ")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_collector_serves_until_a_signal_then_exits_cleanly(sig: signal.Signals) -> None:
    proc = Proc("collector", "--port", "0", "--db", ":memory:", "--fail-rate", "0")
    try:
        url = urlsplit(_url_in(proc.wait_for("listening on")))
        proc.wait_for("Ctrl-C to stop")
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        conn.request(
            "POST", "/v1/events", body_of([impression("cli-user")]), {"Content-Type": "application/json"}
        )
        assert conn.getresponse().status == 204
        conn.close()
        proc.popen.send_signal(sig)
        code, output = proc.finish()
    finally:
        proc.kill()
    assert code == 0, output
    assert "stopped; 1 events stored" in output


def test_collector_refuses_impossible_fault_options() -> None:
    proc = Proc("collector", "--port", "0", "--db", ":memory:", "--fail-rate", "2")
    try:
        code, output = proc.finish()
    finally:
        proc.kill()
    assert code == 2
    assert "fail_rate" in output


def test_demo_delivers_every_event_and_exits_zero() -> None:
    proc = Proc("demo", "--users", "400")
    try:
        code, output = proc.finish(timeout=120)
    finally:
        proc.kill()
    assert code == 0, output
    assert "every event arrived" in output
    assert "Results page: http://127.0.0.1:" in output
    assert "checkout_redesign" in output


def test_demo_with_faults_retries_and_still_delivers_everything() -> None:
    proc = Proc("demo", "--users", "1000", "--faults")
    try:
        code, output = proc.finish(timeout=120)
    finally:
        proc.kill()
    assert code == 0, output
    assert "every event arrived" in output
    faults_line = next(line for line in output.splitlines() if "faults injected" in line)
    assert "failed answers" in faults_line


def test_demo_keep_leaves_the_results_page_up_until_ctrl_c() -> None:
    proc = Proc("demo", "--users", "200", "--keep")
    try:
        url = urlsplit(_url_in(proc.wait_for("Results page:", timeout=120)))
        proc.wait_for("keeps running")
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        conn.request("GET", "/api/results")
        results = _json.loads(conn.getresponse().read())
        conn.close()
        assert any(e["rule_key"] == "checkout_redesign" for e in results["experiments"])
        proc.popen.send_signal(signal.SIGINT)
        code, output = proc.finish()
    finally:
        proc.kill()
    assert code == 0, output


def test_summary_is_not_ok_when_an_event_is_missing() -> None:
    summary = DemoSummary(
        users=1, produced=10, delivered=9, retried=0, requests=1, dropped={"retry_exhausted": 1},
        stored=9, duplicates=0, faults_injected={}, simulate_seconds=1.0, total_seconds=1.0, url="",
    )  # fmt: skip
    assert not summary.ok
