"""flagstream: Optimizely-compatible feature flags and experiments with a production event pipeline.

import flagstream

client = flagstream.Optimizely(datafile)          # batching, retrying delivery by default
user = client.create_user_context("user-1", {"country": "de"})
decision = user.decide("checkout_flow")
user.track_event("purchase", {"revenue": 4200})
client.close()
"""

from __future__ import annotations

# First: importing _build picks the compiled hot modules or their source before any loads.
from flagstream import _build  # noqa: F401
from flagstream._version import __version__
from flagstream.client import Optimizely
from flagstream.config import (
    ConfigManager,
    PollingConfigManager,
    ProjectConfig,
    StaticConfigManager,
    validate_datafile,
    validate_datafile_text,
)
from flagstream.decide import OptimizelyDecideOption, OptimizelyDecision, OptimizelyDecisionMessage
from flagstream.decision.options import DecideOption
from flagstream.decision.results import DecisionSource
from flagstream.decision.user_profile import UserProfileService
from flagstream.delivery import (
    AsyncBatchEventProcessor,
    AsyncHttpDispatcher,
    BatchEventProcessor,
    DeliveryOutcome,
    DeliveryStats,
    DispatchResult,
    FlushReport,
    ForwardingEventProcessor,
    HttpDispatcher,
    RetryPolicy,
    flushing,
)
from flagstream.delivery.protocols import EventDispatcher, EventProcessor
from flagstream.errors import (
    ConfigurationError,
    FlagstreamError,
    InvalidDatafileError,
    UnsupportedDatafileVersionError,
)
from flagstream.events.log_event import LogEvent
from flagstream.notifications import DecisionNotificationTypes, NotificationCenter, NotificationTypes
from flagstream.optimizely_config import OptimizelyConfig
from flagstream.user_context import OptimizelyUserContext

__all__ = [
    "AsyncBatchEventProcessor",
    "AsyncHttpDispatcher",
    "BatchEventProcessor",
    "ConfigManager",
    "ConfigurationError",
    "DecideOption",
    "DecisionNotificationTypes",
    "DecisionSource",
    "DeliveryOutcome",
    "DeliveryStats",
    "DispatchResult",
    "EventDispatcher",
    "EventProcessor",
    "FlagstreamError",
    "FlushReport",
    "ForwardingEventProcessor",
    "HttpDispatcher",
    "InvalidDatafileError",
    "LogEvent",
    "NotificationCenter",
    "NotificationTypes",
    "Optimizely",
    "OptimizelyConfig",
    "OptimizelyDecideOption",
    "OptimizelyDecision",
    "OptimizelyDecisionMessage",
    "OptimizelyUserContext",
    "PollingConfigManager",
    "ProjectConfig",
    "RetryPolicy",
    "StaticConfigManager",
    "UnsupportedDatafileVersionError",
    "UserProfileService",
    "__version__",
    "flushing",
    "validate_datafile",
    "validate_datafile_text",
]
