"""Fixtures of the OpenFeature provider tests: clients on the test datafile, a clean OpenFeature API."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from of_helpers import datafile
from openfeature import api
from openfeature.evaluation_context import EvaluationContext

import flagstream
from flagstream.delivery.forwarding import ForwardingEventProcessor
from flagstream.testing import CapturingEventDispatcher


@pytest.fixture
def dispatcher() -> CapturingEventDispatcher:
    return CapturingEventDispatcher()


@pytest.fixture
def client(dispatcher: CapturingEventDispatcher) -> Iterator[flagstream.Optimizely]:
    """A client that forwards each event at once to a capturing dispatcher."""
    instance = flagstream.Optimizely(
        json.dumps(datafile()), event_processor=ForwardingEventProcessor(dispatcher)
    )
    yield instance
    instance.close()


@pytest.fixture
def twin() -> Iterator[tuple[flagstream.Optimizely, CapturingEventDispatcher]]:
    """A second client on the same datafile: what ``user.decide`` does, to compare with."""
    capture = CapturingEventDispatcher()
    instance = flagstream.Optimizely(
        json.dumps(datafile()), event_processor=ForwardingEventProcessor(capture)
    )
    yield instance, capture
    instance.close()


def reset_api() -> None:
    api.shutdown()
    api.clear_hooks()  # openfeature-sdk before 0.10 kept hooks and the API context across shutdown
    api.set_evaluation_context(EvaluationContext())


@pytest.fixture(autouse=True)
def clean_api() -> Iterator[None]:
    """OpenFeature's API is global: every test starts and ends with none of its state."""
    reset_api()
    yield
    reset_api()
