"""Per-call decision context: where reasons go and which log levels are on.

A decision builds a message only when someone will read it: the reasons list
exists only when ``INCLUDE_REASONS`` was requested, and the level flags are
read from the logger once per call, so the hot path formats no strings when
both are off. Hot code tests ``trace.note_info``/``trace.note_debug`` (reason
or log wanted) or ``trace.debug``/``trace.info``/``trace.warn`` (log only)
before formatting.
"""

from __future__ import annotations

import logging
from typing import Final

from flagstream._logging import LoggerLike

__all__ = ["Trace", "level_flags"]

# logging's levels as constants: in compiled code, ``logging.DEBUG`` is a module lookup per read.
_DEBUG: Final = logging.DEBUG
_INFO: Final = logging.INFO
_WARNING: Final = logging.WARNING
_ERROR: Final = logging.ERROR
_Logger: Final = logging.Logger


def level_flags(logger: LoggerLike) -> tuple[bool, bool, bool, bool]:
    """Return whether debug, info, warning and error lines would be emitted by ``logger``.

    A logger without ``isEnabledFor`` (a user's duck-typed logger) gets every line.
    """
    if type(logger) is _Logger and not logger.disabled:
        # isEnabledFor's own answers, read from the per-level cache it fills (and that logging
        # clears under its lock whenever a level changes): dict reads instead of interpreted
        # calls on every decision. A level it has not answered yet is asked (and so cached).
        # A level is enabled when it is above logging.disable's and at least the logger's
        # effective one, so the levels above an enabled one are too: two reads suffice.
        cache = getattr(logger, "_cache", None)
        if type(cache) is dict:
            if _enabled(logger, cache, _INFO):
                return _enabled(logger, cache, _DEBUG), True, True, True
            if _enabled(logger, cache, _WARNING):
                return False, False, True, True
            return False, False, False, _enabled(logger, cache, _ERROR)
    is_enabled = getattr(logger, "isEnabledFor", None)
    if is_enabled is None:
        return True, True, True, True
    try:
        # Two calls in the usual cases (WARNING and INFO levels).
        if is_enabled(_INFO):
            return bool(is_enabled(_DEBUG)), True, True, True
        if is_enabled(_WARNING):
            return False, False, True, True
        return False, False, False, bool(is_enabled(_ERROR))
    except Exception:  # a broken user logger must not break a decision
        return False, False, False, False


def _enabled(logger: logging.Logger, cache: dict[object, object], level: int) -> bool:
    known = cache.get(level)
    return bool(known) if known is not None else logger.isEnabledFor(level)


class Trace:
    """The reasons sink and log switches of one decision call."""

    __slots__ = ("debug", "error", "info", "logger", "note_debug", "note_info", "reasons", "warn")

    def __init__(self, logger: LoggerLike, reasons: list[str] | None) -> None:
        self.logger = logger
        self.reasons = reasons
        self.debug, self.info, self.warn, self.error = level_flags(logger)
        collecting = reasons is not None
        self.note_debug = collecting or self.debug
        self.note_info = collecting or self.info

    def reason_debug(self, message: str) -> None:
        """Record ``message`` as a reason and log it at debug level."""
        if self.reasons is not None:
            self.reasons.append(message)
        if self.debug:
            self.logger.debug(message)

    def reason_info(self, message: str) -> None:
        """Record ``message`` as a reason and log it at info level."""
        if self.reasons is not None:
            self.reasons.append(message)
        if self.info:
            self.logger.info(message)

    def reason_warning(self, message: str) -> None:
        """Record ``message`` as a reason and log it at warning level."""
        if self.reasons is not None:
            self.reasons.append(message)
        if self.warn:
            self.logger.warning(message)

    def log_debug(self, message: str) -> None:
        """Log ``message`` at debug level when that level is on."""
        if self.debug:
            self.logger.debug(message)

    def log_warning(self, message: str) -> None:
        """Log ``message`` at warning level when that level is on."""
        if self.warn:
            self.logger.warning(message)

    def log_error(self, message: str) -> None:
        """Log ``message`` at error level when that level is on."""
        if self.error:
            self.logger.error(message)
