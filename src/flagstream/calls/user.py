"""The state of a user context, and what every decision reads of it (compiled in the mypyc build).

:class:`UserState` is the base of :class:`flagstream.OptimizelyUserContext`
(:mod:`flagstream.user_context` holds the public API and optimizely-sdk's
nested classes, which mypyc cannot compile). A native base makes creating a
context, taking its per-decide snapshot and the decision service's reads
plain struct accesses instead of attribute lookups.
"""

from __future__ import annotations

import threading
from typing import Any, Final

from flagstream._native import mypyc_attr

__all__ = ["SNAPSHOT_LOCK", "UNMATCHABLE_KEY", "UserState", "copy_state", "decision_view"]

SNAPSHOT_LOCK: Final = threading.Lock()
"""The lock every snapshot shares (they are rarely mutated; a lock per snapshot costs more than the copy)."""

UNMATCHABLE_KEY: Final = "\x00flagstream: no variation key\x00"
"""The variation key of a forced decision that names no string key: no variation has it."""


@mypyc_attr(allow_interpreted_subclasses=True)
class UserState:
    """A user id, their attributes and forced decisions, and the client that decides for them.

    ``user_id`` and ``client`` are kept as given (``create_user_context`` checks
    the id is a string); attributes are copied from a dict, anything else is none.
    """

    def __init__(self, optimizely_client: Any, user_id: Any, user_attributes: Any = None) -> None:
        self.client: Any = optimizely_client
        self.user_id: Any = user_id
        self._attributes: dict[Any, Any] = dict(user_attributes) if isinstance(user_attributes, dict) else {}
        self._forced: dict[Any, Any] = {}
        self._lock: Any = threading.Lock()

    @property
    def attributes(self) -> dict[Any, Any]:
        """The attributes of this context (a snapshot's own dict: do not mutate)."""
        return self._attributes

    def has_forced_decisions(self) -> bool:
        """Whether any forced decision is set (lets the decision service skip per-rule lookups)."""
        return bool(self._forced)

    def get_forced_decision_variation_key(self, flag_key: str, rule_key: str | None) -> str | None:
        """The variation key forced for the flag (``rule_key=None``) or one of its rules, if any."""
        if not self._forced:
            return None
        forced = self._forced.get((flag_key, rule_key))
        if forced is None:
            return None
        variation_key = getattr(forced, "variation_key", None)
        # A forced decision that names no string key is still a forced decision
        # (optimizely-sdk reports it as invalid): give a key no variation has.
        return variation_key if isinstance(variation_key, str) else UNMATCHABLE_KEY


# Module functions rather than methods: a native method called on an instance of an
# interpreted subclass (every OptimizelyUserContext) first looks itself up by name; a
# function reads the fields directly.


def copy_state(user: UserState, clone: UserState) -> None:
    """Make ``clone`` (made without ``__init__``) ``user`` as it is now, sharing the snapshot lock."""
    clone.client = user.client
    clone.user_id = user.user_id
    clone._lock = SNAPSHOT_LOCK
    lock = user._lock
    lock.acquire()
    try:
        clone._attributes = dict(user._attributes)
        clone._forced = dict(user._forced) if user._forced else {}
    finally:
        lock.release()


def decision_view(user: UserState) -> tuple[Any, dict[Any, Any], bool]:
    """What a decision reads of ``user``: its id, its attributes, whether it has forced decisions."""
    return user.user_id, user._attributes, bool(user._forced)
