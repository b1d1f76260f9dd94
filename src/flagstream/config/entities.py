"""The datafile's entities as immutable values.

Names are the datafile's, in snake_case. Everything is parsed once, when the
``ProjectConfig`` is built: audience condition strings are decoded, feature
variable types normalized, lookup maps precomputed, so a decision does no
parsing and no allocation it can avoid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "Attribute",
    "Audience",
    "Event",
    "Experiment",
    "FeatureFlag",
    "Group",
    "Holdout",
    "Rollout",
    "TrafficAllocation",
    "Variable",
    "VariableType",
    "Variation",
]

RUNNING: Final = "Running"


class VariableType:
    """Feature variable types, as the datafile names them."""

    BOOLEAN: Final = "boolean"
    DOUBLE: Final = "double"
    INTEGER: Final = "integer"
    JSON: Final = "json"
    STRING: Final = "string"


@dataclass(frozen=True, slots=True)
class TrafficAllocation:
    """One slice of the 10 000 buckets; ``entity_id`` is ``""`` for an empty slice."""

    entity_id: str
    end_of_range: int


@dataclass(frozen=True, slots=True)
class Variation:
    """A variation of an experiment, rollout rule or holdout.

    ``variable_values`` maps a feature variable id to its raw string value.
    """

    id: str
    key: str
    feature_enabled: bool | None
    variable_values: dict[str, str]


@dataclass(frozen=True, slots=True)
class Experiment:
    """An A/B test, a feature test, or a rollout rule (``layer_id`` is the rollout's id)."""

    id: str
    key: str
    status: str
    layer_id: str
    audience_ids: tuple[str, ...]
    audience_conditions: object | None
    variations: tuple[Variation, ...]
    variations_by_key: dict[str, Variation]
    variations_by_id: dict[str, Variation]
    forced_variations: dict[str, str]
    traffic_allocation: tuple[TrafficAllocation, ...]
    group_id: str | None = None
    group_policy: str | None = None
    type: str | None = None

    @property
    def is_running(self) -> bool:
        return self.status == RUNNING

    @property
    def audience_conditions_or_ids(self) -> object:
        """``audienceConditions`` when present, else the ``audienceIds`` list (an implicit "or")."""
        return self.audience_conditions if self.audience_conditions is not None else self.audience_ids


@dataclass(frozen=True, slots=True)
class Holdout:
    """A holdout: global (``included_rules is None``) or local to the listed rule ids."""

    id: str
    key: str
    status: str
    audience_ids: tuple[str, ...]
    audience_conditions: object | None
    variations: tuple[Variation, ...]
    variations_by_key: dict[str, Variation]
    variations_by_id: dict[str, Variation]
    traffic_allocation: tuple[TrafficAllocation, ...]
    included_rules: tuple[str, ...] | None = None
    exclude_targeted_deliveries: bool = False
    layer_id: str = ""

    @property
    def is_global(self) -> bool:
        return self.included_rules is None

    @property
    def is_running(self) -> bool:
        return self.status == RUNNING

    @property
    def audience_conditions_or_ids(self) -> object:
        return self.audience_conditions if self.audience_conditions is not None else self.audience_ids


@dataclass(frozen=True, slots=True)
class Group:
    """A mutually exclusive group: users are first bucketed into one of its experiments."""

    id: str
    policy: str
    experiment_ids: tuple[str, ...]
    traffic_allocation: tuple[TrafficAllocation, ...]


@dataclass(frozen=True, slots=True)
class Audience:
    """An audience with its condition tree decoded (``None`` when it could not be decoded)."""

    id: str
    name: str
    conditions: object | None


@dataclass(frozen=True, slots=True)
class Attribute:
    id: str
    key: str


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    key: str
    experiment_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Variable:
    """A feature variable; ``type`` is ``"json"`` for a string with ``subType: "json"``."""

    id: str
    key: str
    type: str
    default_value: str


@dataclass(frozen=True, slots=True)
class FeatureFlag:
    id: str
    key: str
    experiment_ids: tuple[str, ...]
    rollout_id: str
    variables: dict[str, Variable]
    variables_by_id: dict[str, Variable]


@dataclass(frozen=True, slots=True)
class Rollout:
    """A flag's delivery rules, in evaluation order; the last is "everyone else"."""

    id: str
    experiments: tuple[Experiment, ...]
