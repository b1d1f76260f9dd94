"""Real ``redis-server`` processes (standalone and a 3-master Cluster) and real forwarder processes.

``redis-server`` is Debian's package. When it is missing, :func:`redis_binary`
installs it with apt-get if it can (root, apt-get present); otherwise the
tests skip with one line, and fail when ``CI`` is set.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_cluster_port() -> int:
    """A port whose cluster bus port (+10000) is free too; Redis needs it at most 55535."""
    import random

    for _ in range(200):
        port = random.randint(20_000, 45_000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10_000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass (a deadline, not a sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return True
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _install() -> str | None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "redis-server"],
    ):
        if subprocess.run(command, env=env, capture_output=True, timeout=900, check=False).returncode != 0:
            return None
    return shutil.which("redis-server")


_BINARY: list[str | None] = []


def redis_binary() -> str:
    if not _BINARY:
        _BINARY.append(shutil.which("redis-server") or _install())
    path = _BINARY[0]
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing and could not be installed; the broker tests must run in CI")
        pytest.skip("redis-server is missing and cannot be installed here (needs root and apt-get)")
    return path


class RedisServer:
    """One ``redis-server`` on a loopback port, data in ``directory``."""

    def __init__(self, directory: Path, *, appendfsync: str | None = None, cluster: bool = False) -> None:
        self.binary = redis_binary()
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_cluster_port() if cluster else free_port()
        self.appendfsync = appendfsync
        self.cluster = cluster
        self.process: subprocess.Popen[bytes] | None = None
        self._clients: list[redis.Redis] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--dir", str(self.directory), "--protected-mode", "no", "--daemonize", "no"]  # fmt: skip
        if self.appendfsync:
            args += ["--appendonly", "yes", "--appendfsync", self.appendfsync]
        else:
            args += ["--appendonly", "no"]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--cluster-node-timeout", "5000"]  # fmt: skip
        return args

    def start(self) -> RedisServer:
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 (kept for the process's life)
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.directory
        )
        log.close()
        client = redis.Redis(port=self.port, socket_timeout=1)
        try:
            if not wait_until(client.ping, 10):
                raise RuntimeError(f"redis-server on {self.port} did not start: {self.log_tail()}")
            wait_until(lambda: client.info("persistence")["loading"] == 0, 10)
        finally:
            client.close()
        return self

    def log_tail(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def client(self, **options: Any) -> redis.Redis:
        """A client the test may keep; closed when the server stops (an unclosed socket
        would surface as a ResourceWarning, an error, in whichever later test the GC runs)."""
        client = redis.Redis(port=self.port, socket_timeout=5, **options)
        self._clients.append(client)
        return client

    def close_clients(self) -> None:
        while self._clients:
            self._clients.pop().close()

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        self.close_clients()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class RedisCluster:
    """Three masters, no replicas, slots spread by ``redis-cli --cluster create``."""

    def __init__(self, directory: Path) -> None:
        self.nodes = [RedisServer(directory / f"node{i}", cluster=True) for i in range(3)]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> RedisCluster:
        for node in self.nodes:
            node.start()
        cli = shutil.which("redis-cli") or str(Path(self.nodes[0].binary).with_name("redis-cli"))
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run([cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)  # fmt: skip
        for node in self.nodes:
            client = node.client()
            try:
                if not wait_until(lambda c=client: c.cluster("info")["cluster_state"] == "ok", 30):
                    raise RuntimeError("the cluster did not reach state ok")
            finally:
                client.close()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class ForwarderProcess:
    """``flagstream forward`` as a subprocess; its first line says it is reading, its last is JSON."""

    def __init__(
        self, redis_url: str, name: str, endpoint: str, *extra: str, env: dict[str, str] | None = None
    ):
        self.name = name
        self.metrics_port = free_port()
        args = [sys.executable, "-m", "flagstream", "forward", "--redis", redis_url, "--name", name,
                "--endpoint", endpoint, "--metrics-port", str(self.metrics_port), "--no-live", *extra]  # fmt: skip
        self.process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env={**os.environ, **(env or {})}
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.stderr = b""

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            if "reading" in self.lines[-1]:
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout: float = 20.0) -> ForwarderProcess:
        if not self._ready.wait(timeout) or self.process.poll() is not None:
            raise RuntimeError(f"forwarder {self.name} did not start: {self.finish(5)}")
        return self

    def metrics(self) -> dict[str, float]:
        """The counters from ``/metrics`` (``posted`` summed over statuses)."""
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("#") or not line:
                continue
            name, value = line.rsplit(" ", 1)
            name = name.split("{", 1)[0].removeprefix("flagstream_forwarder_").removesuffix("_total")
            values[name] = values.get(name, 0.0) + float(value)
        return values

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def finish(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait for exit (killing it after ``timeout``); the final JSON line, or {}."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self._reader.join(5)
        assert self.process.stderr is not None
        self.stderr = self.process.stderr.read()
        self.process.stderr.close()
        if self.process.stdout is not None:
            self.process.stdout.close()
        for line in reversed(self.lines):
            if line.startswith("{"):
                return dict(json.loads(line))
        return {}

    def stop(self, timeout: float = 30.0) -> dict[str, Any]:
        self.signal(signal.SIGTERM)
        return self.finish(timeout)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.finish(10)
