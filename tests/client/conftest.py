from __future__ import annotations

import logging
from pathlib import Path

import pytest

import flagstream
from flagstream.delivery.forwarding import ForwardingEventProcessor
from flagstream.testing import CapturingEventDispatcher

BASIC_DATAFILE = (Path(__file__).parent.parent / "fixtures" / "basic_datafile.json").read_text()


@pytest.fixture
def dispatcher() -> CapturingEventDispatcher:
    return CapturingEventDispatcher()


@pytest.fixture
def client(dispatcher):
    """A client that forwards each event synchronously to a capturing dispatcher."""
    instance = flagstream.Optimizely(BASIC_DATAFILE, event_processor=ForwardingEventProcessor(dispatcher))
    yield instance
    instance.close()


@pytest.fixture
def sdk_log(caplog):
    caplog.set_level(logging.DEBUG, logger="flagstream")
    return caplog
