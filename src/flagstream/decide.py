"""The ``decide`` API's values: options, messages and ``OptimizelyDecision``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from flagstream.decision.options import DecideOption

if TYPE_CHECKING:
    from flagstream.user_context import OptimizelyUserContext

__all__ = ["OptimizelyDecideOption", "OptimizelyDecision", "OptimizelyDecisionMessage"]


OptimizelyDecideOption = DecideOption
"""optimizely-sdk's name for the decide options (plain strings, the same values)."""


class OptimizelyDecisionMessage:
    """Reasons a decision carries when no decision could be made (optimizely-sdk's texts)."""

    SDK_NOT_READY: Final = "Optimizely SDK not configured properly yet."
    FLAG_KEY_INVALID: Final = 'No flag was found for key "{}".'
    VARIABLE_VALUE_INVALID: Final = 'Variable value for key "{}" is invalid or wrong type.'


@dataclass(slots=True, eq=False)
class OptimizelyDecision:
    """The result of ``decide`` for one flag.

    ``variation_key`` is ``None`` and ``enabled`` ``False`` when no decision
    could be made; ``reasons`` says why (with ``INCLUDE_REASONS``, all the
    steps of the decision).
    """

    variation_key: str | None = None
    enabled: bool = False
    variables: dict[str, Any] = field(default_factory=dict)
    rule_key: str | None = None
    flag_key: str | None = None
    user_context: OptimizelyUserContext | None = None
    reasons: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "variation_key": self.variation_key,
            "enabled": self.enabled,
            "variables": self.variables,
            "rule_key": self.rule_key,
            "flag_key": self.flag_key,
            "user_context": self.user_context.as_json() if self.user_context else None,
            "reasons": self.reasons,
        }
