"""Fixtures for decision tests."""

from __future__ import annotations

import pytest
from decision_helpers import RecordingLogger


@pytest.fixture
def recording_logger() -> RecordingLogger:
    return RecordingLogger()
