"""The live view of ``flagstream forward`` in a terminal: counters and rates, refreshed every second."""

from __future__ import annotations

import threading
import time
from typing import Any

from flagstream.broker.metrics import COUNTERS, ForwarderMetrics

__all__ = ["LiveView"]


def _table(metrics: ForwarderMetrics, name: str, previous: dict[str, float], seconds: float) -> Any:
    from rich.table import Table  # noqa: PLC0415 (the cli extra)

    snap = metrics.snapshot()
    table = Table(title=f"flagstream forward: {name}", show_lines=False)
    table.add_column("counter")
    table.add_column("total", justify="right")
    table.add_column("per second", justify="right")
    for key in [*COUNTERS, *sorted(k for k in snap if k.startswith("posted_"))]:
        value = snap.get(key, 0)
        rate = (value - previous.get(key, 0)) / seconds if seconds > 0 else 0.0
        table.add_row(key, f"{int(value):,}", f"{rate:,.0f}")
    for key in ("latency_p50", "latency_p99"):
        if key in snap:
            table.add_row(f"POST {key[8:]}", f"{snap[key] * 1000:.1f} ms", "")
    table.add_row("healthy", "yes" if metrics.healthy() else "NO", "")
    previous.clear()
    previous.update(snap)
    return table


class LiveView:
    """Draws the forwarder's metrics with rich until :meth:`stop`."""

    def __init__(self, metrics: ForwarderMetrics, name: str) -> None:
        self.metrics = metrics
        self.name = name
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flagstream-forward-live", daemon=True)

    def start(self) -> None:
        """Start drawing."""
        self._thread.start()

    def _run(self) -> None:
        from rich.live import Live  # noqa: PLC0415

        previous: dict[str, float] = {}
        last = time.monotonic()
        with Live(_table(self.metrics, self.name, previous, 0.0), refresh_per_second=2) as live:
            while not self._done.wait(1.0):
                now = time.monotonic()
                live.update(_table(self.metrics, self.name, previous, now - last))
                last = now

    def stop(self) -> None:
        """Stop drawing."""
        self._done.set()
        self._thread.join(2.0)
