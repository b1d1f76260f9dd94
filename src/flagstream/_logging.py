"""The SDK logger.

flagstream logs through ``logging.getLogger("flagstream")`` (never the root
logger), or through the logger object the user passes to the client, which
only needs ``debug``/``info``/``warning``/``error``/``exception`` methods, as in
optimizely-sdk.
"""

from __future__ import annotations

import logging
from typing import Protocol

__all__ = ["SDK_LOGGER", "LoggerLike", "get_logger"]

SDK_LOGGER = logging.getLogger("flagstream")
SDK_LOGGER.addHandler(logging.NullHandler())


class LoggerLike(Protocol):
    """What flagstream needs of a logger: the standard level methods."""

    def debug(self, msg: str, *args: object) -> None: ...
    def info(self, msg: str, *args: object) -> None: ...
    def warning(self, msg: str, *args: object) -> None: ...
    def error(self, msg: str, *args: object) -> None: ...
    def exception(self, msg: str, *args: object) -> None: ...


def get_logger(logger: object | None = None) -> LoggerLike:
    """Return ``logger`` when it has the level methods, else the SDK logger."""
    if logger is not None and all(
        callable(getattr(logger, name, None)) for name in ("debug", "info", "warning", "error")
    ):
        return logger  # type: ignore[return-value]
    return SDK_LOGGER
