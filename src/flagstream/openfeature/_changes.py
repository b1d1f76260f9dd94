"""Which flags a new datafile changed: the ``flags_changed`` of CONFIGURATION_CHANGED.

A flag counts as changed when anything its decisions read differs between the
two configs: the flag and its variables, its experiments (with their groups),
its rollout rules, the audiences those rules name, and the holdouts that
apply to them. Entities are frozen values compared by ``==``, so the answer
errs towards "changed" (a NaN inside conditions is never equal to itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flagstream.config.project_config import ProjectConfig

__all__ = ["changed_flags"]


def _fingerprint(config: ProjectConfig, flag_key: str) -> object:
    feature = config.feature_key_map[flag_key]
    rules = [config.experiment_id_map.get(i) for i in feature.experiment_ids]
    rollout = config.rollout_id_map.get(feature.rollout_id) if feature.rollout_id else None
    if rollout is not None:
        rules.extend(rollout.experiments)
    groups = [config.group_id_map.get(r.group_id) for r in rules if r is not None and r.group_id]
    audiences = [
        config.audience_id_map.get(audience_id)
        for rule in rules
        if rule is not None
        for audience_id in rule.audience_ids
    ]
    holdouts = [config.rule_holdouts_map.get(r.id, ()) for r in rules if r is not None]
    return (feature, rules, groups, audiences, holdouts, config.global_holdouts)


def changed_flags(old: ProjectConfig | None, new: ProjectConfig) -> list[str]:
    """The sorted keys of flags added, removed or changed from ``old`` to ``new``."""
    if old is None:
        return sorted(new.feature_key_map)
    keys = set(old.feature_key_map) | set(new.feature_key_map)
    changed = [
        key
        for key in keys
        if key not in old.feature_key_map
        or key not in new.feature_key_map
        or _fingerprint(old, key) != _fingerprint(new, key)
    ]
    return sorted(changed)
