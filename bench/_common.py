"""Shared helpers for the side-by-side benchmarks: timing, percentiles, machine info, tables."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASIC_DATAFILE = (ROOT / "tests" / "fixtures" / "basic_datafile.json").read_text()


def machine_info() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return (
        f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} cores, load {load[0]:.2f}"
    )


def sample(fn: Callable[[int], object], calls: int) -> list[float]:
    """Caller cost of ``fn(i)`` for ``calls`` calls, in microseconds each."""
    out = []
    clock = time.perf_counter_ns
    for i in range(calls):
        start = clock()
        fn(i)
        out.append((clock() - start) / 1000)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])
