"""``flagstream demo``: the whole pipeline on one machine, with one command."""

from __future__ import annotations

from flagstream.demo.run import Demo, DemoOptions, DemoSummary, demo_datafile

__all__ = ["Demo", "DemoOptions", "DemoSummary", "demo_datafile"]
