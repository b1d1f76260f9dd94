"""``LogEvent``: one Event API request, built once.

It carries the same attributes as optimizely-sdk's ``LogEvent`` (``url``,
``http_verb``, ``params``, ``headers``), so a dispatcher written for either SDK
works with both. ``body`` holds the JSON bytes: those exact bytes are what
flagstream sends, retries, spools and forwards, whatever happens to the
``params`` dict afterwards.

flagstream's payload factory writes ``body`` directly (building the nested
``params`` dicts first would double the delivery worker's cost per event);
``params`` is then parsed from ``body`` the first time someone reads it, such
as a user's dispatcher or a LOG_EVENT listener.
"""

from __future__ import annotations

from typing import Any

from flagstream import _json

__all__ = ["EVENT_ENDPOINTS", "JSON_HEADERS", "LogEvent", "body_of"]

EVENT_ENDPOINTS = {
    "US": "https://logx.optimizely.com/v1/events",
    "EU": "https://eu.logx.optimizely.com/v1/events",
}
JSON_HEADERS = {"Content-Type": "application/json"}


class LogEvent:
    """An Event API request: where to send it and the payload.

    Give ``params`` (serialized once, now) or ``body`` (parsed into ``params`` when read).

    >>> event = LogEvent("https://logx.optimizely.com/v1/events", {"account_id": "1"})
    >>> event.http_verb, event.body
    ('POST', b'{"account_id":"1"}')
    >>> LogEvent("https://logx.optimizely.com/v1/events", body=b'{"account_id":"1"}').params
    {'account_id': '1'}
    """

    __slots__ = ("_params", "body", "headers", "http_verb", "url")

    url: str
    http_verb: str
    headers: dict[str, str]
    body: bytes
    _params: dict[str, Any] | None

    def __init__(
        self,
        url: str,
        params: dict[str, Any] | None = None,
        http_verb: str = "POST",
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        if params is None and not body:
            raise ValueError("LogEvent needs params or body")
        setter = object.__setattr__
        setter(self, "url", url)
        setter(self, "http_verb", http_verb)
        setter(self, "headers", dict(JSON_HEADERS) if headers is None else headers)
        setter(self, "_params", params)
        setter(self, "body", body or _json.dumps(params))

    @property
    def params(self) -> dict[str, Any]:
        """The payload as a dict (parsed from ``body`` on first use when built from bytes)."""
        params = self._params
        if params is None:
            params = _json.loads_exact(self.body)
            object.__setattr__(self, "_params", params)
        return params

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"LogEvent is immutable; cannot set {name!r}")

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

    def __repr__(self) -> str:
        return f"LogEvent(url={self.url!r}, http_verb={self.http_verb!r}, body=<{len(self.body)} bytes>)"


def body_of(log_event: Any) -> bytes:
    """The bytes to send for ``log_event``: ours carry them; optimizely-sdk's are serialized here."""
    body = getattr(log_event, "body", None)
    if isinstance(body, bytes) and body:
        return body
    return _json.dumps(log_event.params)
