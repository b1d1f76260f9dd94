"""flagstream: Optimizely-compatible feature flags and experiments with a production event pipeline."""

from __future__ import annotations

from flagstream._version import __version__
from flagstream.errors import (
    ConfigurationError,
    FlagstreamError,
    InvalidDatafileError,
    UnsupportedDatafileVersionError,
)
from flagstream.events.log_event import LogEvent

__all__ = [
    "ConfigurationError",
    "FlagstreamError",
    "InvalidDatafileError",
    "LogEvent",
    "UnsupportedDatafileVersionError",
    "__version__",
]
