"""The exceptions flagstream raises.

Only programmer and configuration mistakes raise, and only at construction time.
Public client calls never raise: they log one line and return the documented
default. Delivery failures are results and counters, never exceptions.

    FlagstreamError
     ├── ConfigurationError (also a ValueError)   bad option value at construction
     └── InvalidDatafileError                      a datafile that cannot be used
          └── UnsupportedDatafileVersionError
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "FlagstreamError",
    "InvalidDatafileError",
    "UnsupportedDatafileVersionError",
]


class FlagstreamError(Exception):
    """Root of every exception flagstream raises."""


class ConfigurationError(FlagstreamError, ValueError):
    """An option passed to a constructor has the wrong type or value."""


class InvalidDatafileError(FlagstreamError):
    """The datafile is not valid JSON or does not follow the datafile schema.

    ``errors`` lists every problem found, each naming its JSON path, for example
    ``experiments[3].trafficAllocation[0].endOfRange: expected integer``.
    """

    def __init__(self, message: str, errors: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.errors = errors


class UnsupportedDatafileVersionError(InvalidDatafileError):
    """The datafile's ``version`` is not one flagstream reads (2, 3 or 4)."""
