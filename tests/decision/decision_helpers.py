"""Helpers for decision tests: recording loggers and optimizely-sdk stand-ins."""

from __future__ import annotations


class RecordingLogger:
    """A duck-typed logger that records (level, message); no isEnabledFor, so every line is built."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def debug(self, msg: str, *args: object) -> None:
        self.lines.append(("debug", msg))

    def info(self, msg: str, *args: object) -> None:
        self.lines.append(("info", msg))

    def warning(self, msg: str, *args: object) -> None:
        self.lines.append(("warning", msg))

    def error(self, msg: str, *args: object) -> None:
        self.lines.append(("error", msg))

    def exception(self, msg: str, *args: object) -> None:
        self.lines.append(("exception", msg))

    def critical(self, msg: str, *args: object) -> None:
        self.lines.append(("critical", msg))

    def log(self, level: int, msg: str, *args: object) -> None:
        self.lines.append((str(level), msg))

    def messages(self, level: str) -> list[str]:
        return [m for lv, m in self.lines if lv == level]


class OptimizelyUserStub:
    """What optimizely's condition evaluator reads of a user context."""

    def __init__(self, attributes: dict[str, object]) -> None:
        self._attributes = attributes

    def get_user_attributes(self) -> dict[str, object]:
        return dict(self._attributes)

    def is_qualified_for(self, segment: str) -> bool:
        return False
