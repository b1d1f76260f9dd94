"""The ``decide`` API's values: options, messages and ``OptimizelyDecision``.

``OptimizelyDecision`` is defined beside the user context it refers to
(:mod:`flagstream.user_context`) and re-exported here, so neither module
needs the other's names before it is loaded.
"""

from __future__ import annotations

from typing import Final

from flagstream.decision.options import DecideOption
from flagstream.user_context import OptimizelyDecision

__all__ = ["OptimizelyDecideOption", "OptimizelyDecision", "OptimizelyDecisionMessage"]


OptimizelyDecideOption = DecideOption
"""optimizely-sdk's name for the decide options (plain strings, the same values)."""


class OptimizelyDecisionMessage:
    """Reasons a decision carries when no decision could be made (optimizely-sdk's texts)."""

    SDK_NOT_READY: Final = "Optimizely SDK not configured properly yet."
    FLAG_KEY_INVALID: Final = 'No flag was found for key "{}".'
    VARIABLE_VALUE_INVALID: Final = 'Variable value for key "{}" is invalid or wrong type.'
