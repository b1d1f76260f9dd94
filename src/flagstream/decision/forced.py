"""Forced variations (``set_forced_variation``) and forced decisions (user context).

Forced variations are per client: a map user id -> experiment id ->
variation id, set and cleared through the client and consulted first when
an experiment is evaluated. They outlive datafile updates (ids are looked up
in whichever config is current). Writes take a lock; reads rely on dict
operations being atomic, so the decision path takes no lock.

Forced decisions belong to a user context: a variation key per flag, or per
flag and rule. :func:`validated_forced_decision` accepts one only when the
key names a variation of the flag's rules in the current datafile.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from flagstream.decision import messages as msg
from flagstream.decision._trace import Trace

if TYPE_CHECKING:
    from flagstream.config.entities import Variation
    from flagstream.config.project_config import ProjectConfig
    from flagstream.decision._plan import Plan

__all__ = ["ForcedVariationStore", "log_missing_variation", "validated_forced_decision"]


def log_missing_variation(
    config: ProjectConfig, t: Trace, experiment_key: str, variation: object, *, by_id: bool
) -> None:
    """Log what optimizely's config lookup logs when a variation is not found."""
    if not t.error:
        return
    experiment = config.experiment_key_map.get(experiment_key)
    variations = (
        None
        if experiment is None
        else (experiment.variations_by_id if by_id else experiment.variations_by_key)
    )
    if variations:
        template = msg.VARIATION_ID_NOT_IN_DATAFILE if by_id else msg.VARIATION_KEY_NOT_IN_DATAFILE
        t.logger.error(template.format(variation))
    else:
        t.logger.error(msg.EXPERIMENT_KEY_NOT_IN_DATAFILE.format(experiment_key))


def _experiment_from_key(config: ProjectConfig, key: object, t: Trace) -> object:
    try:
        experiment = config.experiment_key_map.get(key)  # type: ignore[call-overload]
    except TypeError:
        experiment = None
    if experiment is None:
        t.log_error(msg.EXPERIMENT_KEY_NOT_IN_DATAFILE.format(key))
    return experiment


class ForcedVariationStore:
    """The client's forced variations: user id -> experiment id -> variation id."""

    __slots__ = ("_lock", "_map")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._map: dict[object, dict[str, str]] = {}

    @property
    def active(self) -> bool:
        """True once any forced variation was set (the decision path skips the store until then)."""
        return bool(self._map)

    def set(
        self, config: ProjectConfig, experiment_key: str, user_id: str, variation_key: str | None, t: Trace
    ) -> bool:
        """Force (or with ``variation_key=None`` clear) a user's variation of an experiment."""
        experiment = _experiment_from_key(config, experiment_key, t)
        if experiment is None:
            return False
        experiment_id: str = experiment.id  # type: ignore[attr-defined]
        try:
            hash(user_id)
        except TypeError:
            return False
        if variation_key is None:
            with self._lock:
                per_user = self._map.get(user_id)
                if per_user is None:
                    message = msg.FORCED_NOTHING_TO_REMOVE_USER.format(user_id)
                elif experiment_id in per_user:
                    del per_user[experiment_id]
                    message = msg.FORCED_REMOVED.format(experiment_key, user_id)
                else:
                    message = msg.FORCED_NOTHING_TO_REMOVE_EXPERIMENT.format(experiment_key, user_id)
            t.log_debug(message)
            return True
        if not isinstance(variation_key, str) or not variation_key:
            t.log_debug(msg.FORCED_VARIATION_KEY_INVALID)
            return False
        variation = config.get_variation_from_key(experiment_key, variation_key)
        if variation is None:
            log_missing_variation(config, t, experiment_key, variation_key, by_id=False)
            return False
        with self._lock:
            self._map.setdefault(user_id, {})[experiment_id] = variation.id
        if t.debug:
            t.logger.debug(msg.FORCED_SET.format(variation.id, experiment_id, user_id))
        return True

    def get(self, config: ProjectConfig, experiment_key: str, user_id: str, t: Trace) -> Variation | None:
        """The forced variation of ``user_id`` in the experiment; its reason goes to ``t``."""
        try:
            per_user = self._map.get(user_id)
        except TypeError:
            per_user = None
        if per_user is None:
            if t.debug:
                t.logger.debug(msg.FORCED_USER_NOT_IN_MAP.format(user_id))
            return None
        experiment = _experiment_from_key(config, experiment_key, t)
        if experiment is None:
            return None
        if not per_user:
            if t.debug:
                t.logger.debug(msg.FORCED_NO_EXPERIMENT_FOR_USER.format(experiment_key, user_id))
            return None
        variation_id = per_user.get(experiment.id)  # type: ignore[attr-defined]
        if variation_id is None:
            if t.debug:
                t.logger.debug(msg.FORCED_NO_VARIATION_FOR_EXPERIMENT.format(experiment_key))
            return None
        variation = config.get_variation_from_id(experiment_key, variation_id)
        if variation is None:
            log_missing_variation(config, t, experiment_key, variation_id, by_id=True)
            return None
        if t.note_debug:
            t.reason_debug(msg.FORCED_VARIATION_MAPPED.format(variation.key, experiment_key, user_id))
        return variation


def validated_forced_decision(
    plan: Plan, flag_key: str, rule_key: str | None, user: object, user_id: object, t: Trace
) -> Variation | None:
    """The user's forced decision for the flag (``rule_key=None``) or one of its rules, if valid."""
    try:
        variation_key = user.get_forced_decision_variation_key(flag_key, rule_key)  # type: ignore[attr-defined]
    except Exception:
        return None
    if variation_key is None:
        return None
    variation = plan.flag_variation(flag_key, variation_key) if flag_key else None
    if t.note_info:
        if variation is not None:
            if rule_key:
                message = msg.FORCED_DECISION_WITH_RULE.format(variation_key, flag_key, rule_key, user_id)
            else:
                message = msg.FORCED_DECISION_WITHOUT_RULE.format(variation_key, flag_key, user_id)
        elif rule_key:
            message = msg.FORCED_DECISION_WITH_RULE_INVALID.format(flag_key, rule_key, user_id)
        else:
            message = msg.FORCED_DECISION_WITHOUT_RULE_INVALID.format(flag_key, user_id)
        t.reason_info(message)
    return variation
