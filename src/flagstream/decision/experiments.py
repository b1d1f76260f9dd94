"""One experiment, rollout rule or holdout for one user: bucketing and ``get_variation``.

The order of the steps, and each reason, follow optimizely-sdk 5.7:

``get_variation`` (experiments and feature tests): status must be Running ->
forced variation (``set_forced_variation``) -> whitelisting
(``forcedVariations``) -> stored variation from the user profile -> audiences
-> bucketing (mutually exclusive group first, then the experiment's own
traffic allocation) -> record the new bucketing in the profile.

Holdouts: Running -> audiences -> bucketing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flagstream.decision import messages as msg
from flagstream.decision._call import Call
from flagstream.decision.audiences import user_meets_audiences
from flagstream.decision.bucketing import HASH_SEED, MAX_TRAFFIC_VALUE, _encode, _hash
from flagstream.decision.forced import ForcedVariationStore, log_missing_variation

if TYPE_CHECKING:
    from flagstream.config.entities import Experiment, Holdout, Variation
    from flagstream.decision._plan import EntityPlan, Plan
    from flagstream.decision.user_profile import UserProfileTracker

__all__ = ["bucket", "get_variation", "holdout_variation"]


def bucket(ep: EntityPlan, c: Call) -> Variation | None:
    """Bucket the user into one of the entity's variations (None: not bucketed)."""
    entity = ep.entity
    if not ep.valid_key:
        c.log_debug(msg.INVALID_ENTITY_KEY)
        return None
    bucketing_id = c.bucketing_id
    if ep.grouped and not _in_group_experiment(ep, c, bucketing_id):
        # The reference reports a failed group stage as an empty traffic range too.
        if c.note_info:
            c.reason_info(msg.EMPTY_TRAFFIC_RANGE)
        return None
    key = f"{bucketing_id}{entity.id}"
    try:
        data = key.encode()
    except UnicodeEncodeError:
        data = _encode(key)
    value = (_hash(data, HASH_SEED, False) * MAX_TRAFFIC_VALUE) >> 32
    if c.debug:
        c.logger.debug(msg.ASSIGNED_BUCKET.format(value, bucketing_id))
    variation_id = ep.allocation.lookup(value)
    if variation_id:
        variation = entity.variations_by_id.get(variation_id)
        if variation is None:
            c.log_error(msg.VARIATION_NOT_IN_EXPERIMENT.format(variation_id, entity.id))
        return variation
    if c.note_info:
        c.reason_info(msg.EMPTY_TRAFFIC_RANGE)
    return None


def _in_group_experiment(ep: EntityPlan, c: Call, bucketing_id: str) -> bool:
    """First stage of a mutually exclusive group: is the user in this experiment's share?"""
    entity = ep.entity
    group_allocation = ep.group_allocation
    if group_allocation is None:
        c.log_error(msg.GROUP_NOT_IN_DATAFILE.format(ep.group_id))
        return False
    group_bucket = (
        _hash(_encode(f"{bucketing_id}{ep.group_id}"), HASH_SEED, False) * MAX_TRAFFIC_VALUE
    ) >> 32
    if c.debug:
        c.logger.debug(msg.ASSIGNED_BUCKET.format(group_bucket, bucketing_id))
    experiment_id = group_allocation.lookup(group_bucket)
    if not experiment_id:
        if c.note_info:
            c.reason_info(msg.IN_NO_EXPERIMENT.format(c.user_id))
        return False
    if experiment_id != entity.id:
        if c.note_info:
            c.reason_info(msg.NOT_IN_GROUP_EXPERIMENT.format(c.user_id, entity.key, ep.group_id))
        return False
    if c.note_info:
        c.reason_info(msg.IN_GROUP_EXPERIMENT.format(c.user_id, entity.key, ep.group_id))
    return True


def _whitelisted(plan: Plan, experiment: Experiment, c: Call) -> Variation | None:
    forced = experiment.forced_variations
    try:
        if not forced or c.user_id not in forced:
            return None
    except TypeError:
        return None
    variation_key = forced[c.user_id]
    config = plan.config
    try:
        variation = config.get_variation_from_key(experiment.key, variation_key)
    except TypeError:
        variation = None
    if variation is None:
        log_missing_variation(config, c, experiment.key, variation_key, by_id=False)
        return None
    if c.note_info:
        c.reason_info(msg.FORCED_IN_VARIATION.format(c.user_id, variation_key))
    return variation


def _stored(plan: Plan, experiment: Experiment, c: Call, tracker: UserProfileTracker) -> Variation | None:
    variation_id = tracker.stored_variation_id(experiment.id)
    if variation_id:
        config = plan.config
        try:
            variation = config.get_variation_from_id(experiment.key, variation_id)  # type: ignore[arg-type]
        except TypeError:
            variation = None
        if variation is not None:
            if c.info:
                c.logger.info(
                    msg.FOUND_STORED_DECISION.format(tracker.profile_user_id, variation.key, experiment.key)
                )
            if c.note_info:
                c.reason_info(msg.RETURNING_STORED_VARIATION.format(variation.key, experiment.key, c.user_id))
            return variation
        log_missing_variation(config, c, experiment.key, variation_id, by_id=True)
    # The reference logs this at warning level for every user without a stored
    # decision; that is noise, so it is a debug line here.
    c.log_debug(msg.USER_PROFILE_INVALID_FORMAT)
    return None


def get_variation(
    plan: Plan,
    experiment: Experiment,
    c: Call,
    forced: ForcedVariationStore,
    tracker: UserProfileTracker | None,
) -> Variation | None:
    """The user's variation of ``experiment`` (None: not in it); reasons go to ``c``.

    ``tracker`` is None when there is no user profile service or it is ignored.
    """
    if experiment.status != "Running":
        if c.note_info:
            c.reason_info(msg.EXPERIMENT_NOT_RUNNING.format(experiment.key))
        return None
    if forced.active or c.debug:
        variation = forced.get(plan.config, experiment.key, c.user_id, c)
        if variation is not None:
            return variation
    variation = _whitelisted(plan, experiment, c)
    if variation is not None:
        return variation
    if tracker is not None:
        variation = _stored(plan, experiment, c, tracker)
        if variation is not None:
            return variation
    ep = plan.entity(experiment)
    if not user_meets_audiences(ep.audiences, c.attrs, c, experiment.key, rule=False):
        if c.note_info:
            c.reason_info(msg.NOT_IN_EXPERIMENT_AUDIENCE.format(c.user_id, experiment.key))
        return None
    if c.bucketing_id_invalid:
        c.note_bucketing_id()
    variation = bucket(ep, c)
    if variation is not None:
        if c.note_info:
            c.reason_info(msg.IN_VARIATION.format(c.user_id, variation.key, experiment.key))
        if tracker is not None:
            try:
                tracker.record(experiment.id, variation.id)
            except Exception:
                c.logger.exception(msg.UNABLE_TO_SAVE_PROFILE_FOR_USER.format(c.user_id))
        return variation
    if c.note_info:
        c.reason_info(msg.IN_NO_VARIATION.format(c.user_id))
    return None


def holdout_variation(plan: Plan, holdout: Holdout, c: Call) -> Variation | None:
    """The user's variation of ``holdout`` (None: not held out)."""
    if holdout.status != "Running":
        if c.note_info:
            c.reason_info(msg.HOLDOUT_NOT_RUNNING.format(holdout.key))
        return None
    if c.bucketing_id_invalid:
        c.note_bucketing_id()
    ep = plan.entity(holdout)
    if not user_meets_audiences(ep.audiences, c.attrs, c, holdout.key, rule=False):
        if c.note_debug:
            c.reason_debug(msg.NOT_IN_HOLDOUT_AUDIENCE.format(c.user_id, holdout.key))
        return None
    variation = bucket(ep, c)
    if variation is not None:
        if c.note_info:
            c.reason_info(msg.IN_HOLDOUT_VARIATION.format(c.user_id, variation.key, holdout.key))
        return variation
    if c.note_info:
        c.reason_info(msg.NOT_IN_HOLDOUT_VARIATION.format(c.user_id, holdout.key))
    return None
