"""Per-config precomputation for decisions.

A :class:`Plan` belongs to one ``ProjectConfig``. It compiles, on first use
and once, what every decision would otherwise redo: each audience's condition
tree into a closure, each experiment's/rule's/holdout's audience tree and
traffic allocation, group allocations, and the flag variations by key.
Entities are keyed by identity (the plan keeps the entity alive, so the id
cannot be reused); a concurrent first use may compile twice, harmlessly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from flagstream.decision import messages as msg
from flagstream.decision._trace import Trace
from flagstream.decision.audiences import AudienceTree, Node, audience_node, compile_conditions
from flagstream.decision.bucketing import Allocation

if TYPE_CHECKING:
    from flagstream.config.entities import Experiment, Holdout, Rollout, Variation
    from flagstream.config.project_config import ProjectConfig

__all__ = ["EntityPlan", "Plan"]

RANDOM_POLICY = "random"


class EntityPlan:
    """What bucketing and targeting need of one experiment, rollout rule or holdout."""

    __slots__ = ("allocation", "audiences", "entity", "group_allocation", "group_id", "grouped", "valid_key")

    def __init__(self, plan: Plan, entity: Experiment | Holdout) -> None:
        self.entity = entity
        self.allocation = Allocation.from_traffic(entity.traffic_allocation)
        self.audiences = AudienceTree(entity.audience_conditions_or_ids, plan.audience_node)
        key = entity.key
        self.valid_key = isinstance(key, str) and bool(key.strip())
        group_policy = getattr(entity, "group_policy", None)
        self.grouped = bool(group_policy) and group_policy == RANDOM_POLICY
        self.group_id: str | None = getattr(entity, "group_id", None)
        self.group_allocation: Allocation | None = None
        if self.grouped:
            group = plan.config.get_group(self.group_id)
            if group is not None:
                self.group_allocation = Allocation.from_traffic(group.traffic_allocation)


class Plan:
    """Compiled decision data for one config."""

    __slots__ = ("_audiences", "_entities", "_flag_variations", "_rollout_rules", "config")

    def __init__(self, config: ProjectConfig) -> None:
        self.config = config
        self._entities: dict[int, EntityPlan] = {}
        self._audiences: dict[object, Node] = {}
        self._flag_variations: dict[str, dict[str, Variation]] = {}
        self._rollout_rules: dict[str, tuple[Experiment, ...]] = {}

    def entity(self, entity: Experiment | Holdout) -> EntityPlan:
        """The plan of ``entity`` (compiled on first use)."""
        found = self._entities.get(id(entity))
        if found is not None and found.entity is entity:
            return found
        compiled = EntityPlan(self, entity)
        self._entities[id(entity)] = compiled
        return compiled

    def audience_node(self, audience_id: object) -> Node:
        """The compiled audience ``audience_id``; an unknown id evaluates to UNKNOWN with an error line."""
        try:
            found = self._audiences.get(audience_id)
        except TypeError:
            return _unknown_audience(audience_id)
        if found is not None:
            return found
        audience = self.config.audience_id_map.get(audience_id)  # type: ignore[call-overload]
        if audience is None:
            node = _unknown_audience(audience_id)
        else:
            node = audience_node(audience_id, audience.conditions, compile_conditions(audience.conditions))
        self._audiences[audience_id] = node
        return node

    def flag_variation(self, flag_key: str, variation_key: object) -> Variation | None:
        """The first variation of the flag's rules with ``variation_key``, else None."""
        by_key = self._flag_variations.get(flag_key)
        if by_key is None:
            by_key = {}
            for variation in self.config.flag_variations_map.get(flag_key, ()):
                by_key.setdefault(variation.key, variation)
            self._flag_variations[flag_key] = by_key
        try:
            return by_key.get(variation_key)  # type: ignore[call-overload,no-any-return]
        except TypeError:
            return None

    def rollout_rules(self, rollout: Rollout) -> tuple[Experiment, ...]:
        """The rollout's rules with duplicate ids collapsed (first position, last entity), as the reference."""
        found = self._rollout_rules.get(rollout.id)
        if found is not None:
            return found
        by_id: dict[str, Experiment] = {}
        for rule in rollout.experiments:
            by_id[rule.id] = rule
        rules = tuple(by_id.values())
        if len(rules) == len(rollout.experiments):
            rules = tuple(rollout.experiments)
        self._rollout_rules[rollout.id] = rules
        return rules


def _unknown_audience(audience_id: object) -> Node:
    def unknown(attrs: Mapping[str, object], t: Trace) -> bool | None:
        if t.error:
            t.logger.error(msg.AUDIENCE_NOT_IN_DATAFILE.format(audience_id))
        return None

    return unknown
