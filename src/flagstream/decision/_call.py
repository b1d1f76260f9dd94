"""The context of one decision call: the user, the reasons sink and the log switches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from flagstream._logging import LoggerLike
from flagstream.calls.user import UserState, decision_view
from flagstream.decision import messages as msg
from flagstream.decision._trace import Trace, level_flags

__all__ = ["BUCKETING_ID_ATTRIBUTE", "Call"]

BUCKETING_ID_ATTRIBUTE: Final = "$opt_bucketing_id"
_EMPTY: Mapping[str, object] = {}


def _get(attrs: Mapping[str, object], key: str) -> object:
    try:
        return attrs.get(key)
    except Exception:  # a user's mapping that fails on reads
        return None


class Call(Trace):
    """One decision call for one user.

    ``attrs`` is the user's attribute snapshot (an empty mapping when the user
    handed in something that is not a mapping). The bucketing id is
    ``$opt_bucketing_id`` when it is a string, else the user id; a non-string
    one adds a warning reason each time bucketing would read it, as the
    reference does. ``forced_decisions`` is False only when the user says it
    has no forced decisions (an optional ``has_forced_decisions()`` method).
    """

    __slots__ = ("attrs", "bucketing_id", "bucketing_id_invalid", "forced_decisions", "user", "user_id")

    def __init__(self, logger: LoggerLike, reasons: list[str] | None, user: object) -> None:
        # Trace.__init__ inlined: this runs once per decision call.
        self.logger = logger
        self.reasons = reasons
        self.debug, self.info, self.warn, self.error = level_flags(logger)
        self.note_debug = reasons is not None or self.debug
        self.note_info = reasons is not None or self.info
        self.user = user
        if isinstance(user, UserState):
            # The client's own user contexts (and their snapshots): native reads, no lookups.
            user_id, own, forced = decision_view(user)
            self.user_id: str = user_id
            attrs: Mapping[str, object] = own
        else:
            try:
                self.user_id = user.user_id  # type: ignore[attr-defined]
            except Exception:
                self.user_id = None  # type: ignore[assignment]
            try:
                attrs = user.attributes  # type: ignore[attr-defined]
            except Exception:
                attrs = _EMPTY
            if type(attrs) is not dict and not isinstance(attrs, Mapping):
                attrs = _EMPTY
            # Rule-level forced decisions are looked up for every rule; a user that can say
            # it has none (``has_forced_decisions() -> False``) spares those lookups.
            has_forced = getattr(user, "has_forced_decisions", None)
            try:
                forced = True if has_forced is None else bool(has_forced())
            except Exception:
                forced = True
        self.attrs: Mapping[str, object] = attrs
        self.forced_decisions = forced
        raw = (
            attrs.get(BUCKETING_ID_ATTRIBUTE) if type(attrs) is dict else _get(attrs, BUCKETING_ID_ATTRIBUTE)
        )
        self.bucketing_id_invalid = raw is not None and not isinstance(raw, str)
        self.bucketing_id: str = raw if isinstance(raw, str) else self.user_id

    def note_bucketing_id(self) -> None:
        """Add the reason for a non-string ``$opt_bucketing_id`` (each time the id is read)."""
        if self.bucketing_id_invalid:
            self.reason_warning(msg.BUCKETING_ID_NOT_STRING)

    def new_reasons(self) -> None:
        """Start a fresh reasons list (one per flag) when reasons are collected."""
        if self.reasons is not None:
            self.reasons = []
