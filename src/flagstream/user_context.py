"""``OptimizelyUserContext``: a user, their attributes and forced decisions, and the decide API.

The user context calls its client through :class:`DecideClient`, the few
methods it needs (:mod:`flagstream.client_decide` implements them), so this
module imports no client module and the client modules import it freely.
"""

from __future__ import annotations

from typing import Any, Protocol

from flagstream._logging import get_logger
from flagstream.calls.result import OptimizelyDecision
from flagstream.calls.user import UserState

__all__ = ["DecideClient", "OptimizelyDecision", "OptimizelyUserContext"]


class DecideClient(Protocol):
    """What a user context calls on its client (:class:`flagstream.Optimizely` is one).

    The ``decide*`` calls get the live context and the caller's options; the
    client decides on a snapshot of both (``flagstream.calls.decide.snapshot``),
    which becomes the decisions' ``user_context``.
    """

    def _decide(
        self, user: OptimizelyUserContext, key: str, options: list[str] | None
    ) -> OptimizelyDecision: ...

    def _decide_for_keys(
        self, user: OptimizelyUserContext, keys: list[str], options: list[str] | None
    ) -> dict[str, OptimizelyDecision]: ...

    def _decide_all(
        self, user: OptimizelyUserContext, options: list[str] | None
    ) -> dict[str, OptimizelyDecision]: ...

    def track(
        self,
        event_key: str,
        user_id: str,
        attributes: dict[str, Any] | None = None,
        event_tags: dict[str, Any] | None = None,
    ) -> None: ...


class OptimizelyUserContext(UserState):
    """A user to decide for, made by :meth:`Optimizely.create_user_context`.

    >>> user = client.create_user_context("user-1", {"country": "de"})  # doctest: +SKIP
    >>> user.decide("checkout_flow").variation_key                       # doctest: +SKIP
    'treatment'

    Each ``decide*`` call works on a snapshot of the attributes and forced
    decisions taken when it starts, so another thread's ``set_attribute`` never
    changes a decision half-way; the snapshot is the decision's ``user_context``.
    """

    class OptimizelyDecisionContext:
        """Which decision a forced decision applies to: a flag, or one rule of a flag."""

        __slots__ = ("flag_key", "rule_key")

        def __init__(self, flag_key: str, rule_key: str | None = None) -> None:
            self.flag_key = flag_key
            self.rule_key = rule_key

        def __hash__(self) -> int:
            return hash((self.flag_key, self.rule_key))

        def __eq__(self, other: object) -> bool:
            if not isinstance(other, OptimizelyUserContext.OptimizelyDecisionContext):
                return NotImplemented
            return (self.flag_key, self.rule_key) == (other.flag_key, other.rule_key)

        def __repr__(self) -> str:
            return f"OptimizelyDecisionContext(flag_key={self.flag_key!r}, rule_key={self.rule_key!r})"

    class OptimizelyForcedDecision:
        """The variation a forced decision imposes."""

        __slots__ = ("variation_key",)

        def __init__(self, variation_key: str) -> None:
            self.variation_key = variation_key

        def __repr__(self) -> str:
            return f"OptimizelyForcedDecision(variation_key={self.variation_key!r})"

    # The state and what decisions read of it are UserState's (flagstream.calls.user).
    __slots__ = ()
    client: DecideClient | None

    # -- public API (optimizely-sdk's) --------------------------------------

    def get_user_attributes(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._attributes)

    def set_attribute(self, attribute_key: str, attribute_value: Any) -> None:
        """Set one attribute for later decisions; an unhashable key is logged and ignored."""
        try:
            with self._lock:
                self._attributes[attribute_key] = attribute_value
        except TypeError:
            get_logger(getattr(self.client, "logger", None)).error(
                'Provided "attribute_key" is in an invalid format.'
            )

    def decide(self, key: str, options: list[str] | None = None) -> OptimizelyDecision:
        """Decide one flag for this user; sends the impression unless ``DISABLE_DECISION_EVENT``."""
        if self.client is None:
            return OptimizelyDecision(flag_key=key, user_context=self)
        return self.client._decide(self, key, options)

    def decide_for_keys(
        self, keys: list[str], options: list[str] | None = None
    ) -> dict[str, OptimizelyDecision]:
        if self.client is None:
            return {}
        return self.client._decide_for_keys(self, keys, options)

    def decide_all(self, options: list[str] | None = None) -> dict[str, OptimizelyDecision]:
        if self.client is None:
            return {}
        return self.client._decide_all(self, options)

    def track_event(self, event_key: str, event_tags: dict[str, Any] | None = None) -> None:
        if self.client is not None:
            self.client.track(event_key, self.user_id, self.get_user_attributes(), event_tags)

    def as_json(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "attributes": self.get_user_attributes()}

    def set_forced_decision(
        self, decision_context: OptimizelyDecisionContext, decision: OptimizelyForcedDecision
    ) -> bool:
        """Force ``decision`` for ``decision_context``; ``False`` only for a context that cannot be a key."""
        key = _context_key(decision_context)
        if key is None:
            return False
        with self._lock:
            self._forced[key] = decision
        return True

    def get_forced_decision(
        self, decision_context: OptimizelyDecisionContext
    ) -> OptimizelyForcedDecision | None:
        key = _context_key(decision_context)
        if key is None:
            return None
        with self._lock:
            return self._forced.get(key)

    def remove_forced_decision(self, decision_context: OptimizelyDecisionContext) -> bool:
        key = _context_key(decision_context)
        if key is None:
            return False
        with self._lock:
            if key not in self._forced:
                return False
            del self._forced[key]
            return True

    def remove_all_forced_decisions(self) -> bool:
        with self._lock:
            self._forced.clear()
        return True

    def __repr__(self) -> str:
        return f"OptimizelyUserContext(user_id={self.user_id!r}, attributes={self.get_user_attributes()!r})"


def _context_key(decision_context: object) -> tuple[str, str | None] | None:
    """The map key of a decision context, or ``None`` when it has unhashable parts."""
    key = (getattr(decision_context, "flag_key", None), getattr(decision_context, "rule_key", None))
    try:
        hash(key)
    except TypeError:
        return None
    return key  # type: ignore[return-value]
