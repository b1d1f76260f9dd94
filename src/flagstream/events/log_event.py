"""``LogEvent``: one Event API request, built once.

It carries the same attributes as optimizely-sdk's ``LogEvent`` (``url``,
``http_verb``, ``params``, ``headers``), so a dispatcher written for either SDK
works with both. ``body`` holds the JSON serialization of ``params``, made once
at construction: those exact bytes are what flagstream sends, retries, spools
and forwards, whatever happens to the ``params`` dict afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flagstream import _json

__all__ = ["EVENT_ENDPOINTS", "JSON_HEADERS", "LogEvent", "body_of"]

EVENT_ENDPOINTS = {
    "US": "https://logx.optimizely.com/v1/events",
    "EU": "https://eu.logx.optimizely.com/v1/events",
}
JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True, slots=True, eq=False)
class LogEvent:
    """An Event API request: where to send it and the payload.

    >>> event = LogEvent("https://logx.optimizely.com/v1/events", {"account_id": "1"})
    >>> event.http_verb, event.body
    ('POST', b'{"account_id":"1"}')
    """

    url: str
    params: dict[str, Any]
    http_verb: str = "POST"
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON_HEADERS))
    body: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        if not self.body:
            object.__setattr__(self, "body", _json.dumps(self.params))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LogEvent):
            return NotImplemented
        return (self.url, self.http_verb, self.body, self.headers) == (
            other.url,
            other.http_verb,
            other.body,
            other.headers,
        )

    def __hash__(self) -> int:
        return hash((self.url, self.http_verb, self.body))


def body_of(log_event: Any) -> bytes:
    """The bytes to send for ``log_event``: ours carry them; optimizely-sdk's are serialized here."""
    body = getattr(log_event, "body", None)
    if isinstance(body, bytes) and body:
        return body
    return _json.dumps(log_event.params)
