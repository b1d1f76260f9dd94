"""Fixtures of the collector tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)  # makes ``tests.collector.helpers`` importable

from flagstream.collector import Collector  # noqa: E402


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as c:
        yield c
