"""Per-config precomputation for decisions.

A :class:`Plan` belongs to one ``ProjectConfig``. It compiles, on first use
and once, what every decision would otherwise redo: each audience's condition
tree into a closure, each experiment's/rule's/holdout's audience tree and
traffic allocation, group allocations, each flag's rule list with its local
holdouts and log keys, and the flag variations by key. Entities are keyed by
identity (the plan keeps the entity, so its id cannot be reused); a
concurrent first use may compile twice, harmlessly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from flagstream.decision import messages as msg
from flagstream.decision._trace import Trace
from flagstream.decision.audiences import AudienceTree, Node, audience_node, compile_conditions
from flagstream.decision.bucketing import Allocation

if TYPE_CHECKING:
    from flagstream.config.entities import Experiment, FeatureFlag, Holdout, Rollout, Variation
    from flagstream.config.project_config import ProjectConfig

__all__ = ["EntityPlan", "FlagPlan", "Plan", "RulePlan"]

RANDOM_POLICY: Final = "random"


class EntityPlan:
    """What bucketing and targeting need of one experiment, rollout rule or holdout."""

    __slots__ = ("allocation", "audiences", "entity", "group_allocation", "group_id", "grouped", "valid_key")

    def __init__(self, plan: Plan, entity: Experiment | Holdout) -> None:
        self.entity = entity
        self.allocation = Allocation.from_traffic(entity.traffic_allocation)
        self.audiences = AudienceTree(
            entity.audience_conditions_or_ids, plan.audience_node, plan.audience_debug_node
        )
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


class RulePlan:
    """One delivery rule of a rollout, ready for the rule loop."""

    __slots__ = ("entity", "holdouts", "logging_key", "registered", "rule")

    def __init__(self, plan: Plan, rule: Experiment, index: int, last: int) -> None:
        config = plan.config
        self.rule = rule
        self.logging_key = "Everyone Else" if index == last else str(index + 1)
        self.holdouts: tuple[Holdout, ...] = tuple(config.rule_holdouts_map.get(rule.id, ()))
        # The entity the reference evaluates is the one registered under the rule's id.
        registered = config.experiment_id_map.get(rule.id)
        self.registered = registered
        self.entity: EntityPlan | None = plan.entity(registered) if registered is not None else None


class FlagPlan:
    """A flag's feature tests (with their local holdouts) and its rollout rules."""

    __slots__ = ("experiments", "flag", "missing_experiment_ids", "rollout", "rollout_missing", "rules")

    def __init__(self, plan: Plan, flag: FeatureFlag) -> None:
        config = plan.config
        self.flag = flag
        experiments: list[tuple[str, Experiment | None, tuple[Holdout, ...]]] = []
        for experiment_id in flag.experiment_ids:
            experiment = config.experiment_id_map.get(experiment_id)
            holdouts = (
                tuple(config.rule_holdouts_map.get(experiment.id, ())) if experiment is not None else ()
            )
            experiments.append((experiment_id, experiment, holdouts))
        self.experiments = tuple(experiments)
        self.missing_experiment_ids = any(e is None for _, e, _ in experiments)
        self.rollout: Rollout | None = None
        self.rollout_missing = False
        self.rules: tuple[RulePlan, ...] = ()
        if flag.rollout_id:
            rollout = config.rollout_id_map.get(flag.rollout_id)
            if rollout is None:
                self.rollout_missing = True
            else:
                self.rollout = rollout
                rules = _unique_rules(rollout)
                self.rules = tuple(RulePlan(plan, rule, i, len(rules) - 1) for i, rule in enumerate(rules))


def _unique_rules(rollout: Rollout) -> tuple[Experiment, ...]:
    """The rollout's rules with duplicate ids collapsed (first position, last entity), as the reference."""
    by_id: dict[str, Experiment] = {}
    for rule in rollout.experiments:
        by_id[rule.id] = rule
    if len(by_id) == len(rollout.experiments):
        return tuple(rollout.experiments)
    return tuple(by_id.values())


class Plan:
    """Compiled decision data for one config."""

    __slots__ = ("_audiences", "_debug_audiences", "_entities", "_flag_variations", "_flags", "config")

    def __init__(self, config: ProjectConfig) -> None:
        self.config = config
        self._entities: dict[int, EntityPlan] = {}
        self._flags: dict[int, FlagPlan] = {}
        self._audiences: dict[object, Node] = {}
        self._debug_audiences: dict[object, Node] = {}
        self._flag_variations: dict[str, dict[str, Variation]] = {}

    def warm(self) -> None:
        """Compile everything now (flags, rules, holdouts, experiments, audiences) instead of on first use."""
        config = self.config
        for flag in config.feature_key_map.values():
            self.flag(flag)
        for experiment in config.experiment_id_map.values():
            self.entity(experiment)
        for holdout in config.holdouts:
            self.entity(holdout)
        for audience_id in config.audience_id_map:
            self.audience_node(audience_id)

    def entity(self, entity: Experiment | Holdout) -> EntityPlan:
        """The plan of ``entity`` (compiled on first use)."""
        found = self._entities.get(id(entity))
        if found is not None and found.entity is entity:
            return found
        compiled = EntityPlan(self, entity)
        self._entities[id(entity)] = compiled
        return compiled

    def flag(self, flag: FeatureFlag) -> FlagPlan:
        """The plan of ``flag`` (compiled on first use)."""
        found = self._flags.get(id(flag))
        if found is not None and found.flag is flag:
            return found
        compiled = FlagPlan(self, flag)
        self._flags[id(flag)] = compiled
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
        node = _unknown_audience(audience_id) if audience is None else compile_conditions(audience.conditions)
        self._audiences[audience_id] = node
        return node

    def audience_debug_node(self, audience_id: object) -> Node:
        """Like :meth:`audience_node`, logging optimizely's two debug lines around the evaluation."""
        try:
            found = self._debug_audiences.get(audience_id)
        except TypeError:
            return _unknown_audience(audience_id)
        if found is not None:
            return found
        audience = self.config.audience_id_map.get(audience_id)  # type: ignore[call-overload]
        if audience is None:
            node = _unknown_audience(audience_id)
        else:
            node = audience_node(audience_id, audience.conditions, self.audience_node(audience_id))
        self._debug_audiences[audience_id] = node
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


def _unknown_audience(audience_id: object) -> Node:
    def unknown(attrs: Mapping[str, object], t: Trace) -> bool | None:
        if t.error:
            t.logger.error(msg.AUDIENCE_NOT_IN_DATAFILE.format(audience_id))
        return None

    return unknown
