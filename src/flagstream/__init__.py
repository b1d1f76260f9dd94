"""flagstream: Optimizely-compatible feature flags and experiments with a production event pipeline.

import flagstream

client = flagstream.Optimizely(datafile)          # batching, retrying delivery by default
user = client.create_user_context("user-1", {"country": "de"})
decision = user.decide("checkout_flow")
user.track_event("purchase", {"revenue": 4200})
client.close()
"""

from __future__ import annotations

from flagstream._version import __version__
from flagstream.client import Optimizely
from flagstream.config.project_config import ProjectConfig
from flagstream.decide import OptimizelyDecideOption, OptimizelyDecision, OptimizelyDecisionMessage
from flagstream.delivery.processor import BatchEventProcessor
from flagstream.delivery.protocols import EventDispatcher, EventProcessor
from flagstream.errors import (
    ConfigurationError,
    FlagstreamError,
    InvalidDatafileError,
    UnsupportedDatafileVersionError,
)
from flagstream.events.log_event import LogEvent
from flagstream.notifications import DecisionNotificationTypes, NotificationCenter, NotificationTypes
from flagstream.user_context import OptimizelyUserContext

__all__ = [
    "BatchEventProcessor",
    "ConfigurationError",
    "DecisionNotificationTypes",
    "EventDispatcher",
    "EventProcessor",
    "FlagstreamError",
    "InvalidDatafileError",
    "LogEvent",
    "NotificationCenter",
    "NotificationTypes",
    "Optimizely",
    "OptimizelyDecideOption",
    "OptimizelyDecision",
    "OptimizelyDecisionMessage",
    "OptimizelyUserContext",
    "ProjectConfig",
    "UnsupportedDatafileVersionError",
    "__version__",
]
