"""Decide options, as the strings optimizely-sdk uses.

``decide``, ``decide_for_keys`` and ``decide_all`` accept a list of these; a
plain string with the same value works the same, so code written for
optimizely-sdk's ``OptimizelyDecideOption`` runs unchanged.

>>> DecideOption.INCLUDE_REASONS == "INCLUDE_REASONS"
True
"""

from __future__ import annotations

from typing import Final

__all__ = ["DecideOption"]


class DecideOption:
    """The names of the decide options (each value is its own name)."""

    DISABLE_DECISION_EVENT: Final = "DISABLE_DECISION_EVENT"
    """Do not send the impression event for this decision."""
    ENABLED_FLAGS_ONLY: Final = "ENABLED_FLAGS_ONLY"
    """``decide_for_keys``/``decide_all`` return only the enabled flags."""
    IGNORE_USER_PROFILE_SERVICE: Final = "IGNORE_USER_PROFILE_SERVICE"
    """Neither read nor write the user profile service (no sticky bucketing)."""
    INCLUDE_REASONS: Final = "INCLUDE_REASONS"
    """Return the decision's reasons (and build them; they cost time)."""
    EXCLUDE_VARIABLES: Final = "EXCLUDE_VARIABLES"
    """Leave the flag's variables out of the decision."""
    IGNORE_CMAB_CACHE: Final = "IGNORE_CMAB_CACHE"
    """Accepted for compatibility; CMAB is out of scope."""
    RESET_CMAB_CACHE: Final = "RESET_CMAB_CACHE"
    """Accepted for compatibility; CMAB is out of scope."""
    INVALIDATE_USER_CMAB_CACHE: Final = "INVALIDATE_USER_CMAB_CACHE"
    """Accepted for compatibility; CMAB is out of scope."""

    ALL: Final = frozenset(
        {
            "DISABLE_DECISION_EVENT",
            "ENABLED_FLAGS_ONLY",
            "IGNORE_USER_PROFILE_SERVICE",
            "INCLUDE_REASONS",
            "EXCLUDE_VARIABLES",
            "IGNORE_CMAB_CACHE",
            "RESET_CMAB_CACHE",
            "INVALIDATE_USER_CMAB_CACHE",
        }
    )
    """Every option name."""
