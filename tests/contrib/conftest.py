"""Fixtures of the integration tests: a collector to deliver to."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flagstream.collector import Collector

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)  # makes ``tests.contrib.helpers`` and the test apps importable


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as running:
        yield running
