"""A flag for one user: global holdouts, feature tests, then the rollout.

The order, and each reason, follow optimizely-sdk 5.7's ``get_decision_for_flag``:

1. Global holdouts, in datafile order. Falling into one decides the flag,
   unless the holdout has ``excludeTargetedDeliveries``: then only targeted
   delivery experiments (``type: "td"``) and the rollout are evaluated, and
   the holdout decision rides along for its impression.
2. The flag's experiments, in order: a rule-level forced decision, then the
   rule's local holdouts, then ``get_variation``.
3. The rollout's rules, in order: forced decision, local holdouts, audiences,
   bucketing. A user who matches a rule's audiences but falls outside its
   traffic skips straight to the last ("Everyone Else") rule.

One reference quirk is kept on purpose: before each feature test the reasons
gathered so far are repeated (optimizely's ``get_variation`` returns its input
reasons and the caller appends them again), so INCLUDE_REASONS output is
identical.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from flagstream.decision import messages as msg
from flagstream.decision._call import Call
from flagstream.decision.audiences import user_meets_audiences
from flagstream.decision.experiments import bucket, get_variation, holdout_variation
from flagstream.decision.forced import ForcedVariationStore, validated_forced_decision
from flagstream.decision.results import DecisionSource, FeatureDecision

if TYPE_CHECKING:
    from flagstream.decision._plan import FlagPlan, Plan
    from flagstream.decision.user_profile import UserProfileTracker

__all__ = ["decide_flag", "decide_rollout"]

TARGETED_DELIVERY: Final = "td"
_FEATURE_TEST = DecisionSource.FEATURE_TEST
_ROLLOUT = DecisionSource.ROLLOUT
_HOLDOUT = DecisionSource.HOLDOUT


def _reasons(c: Call) -> list[str]:
    return c.reasons if c.reasons is not None else []


def decide_flag(
    plan: Plan,
    fp: FlagPlan,
    c: Call,
    forced: ForcedVariationStore,
    tracker: UserProfileTracker | None,
) -> FeatureDecision:
    """The user's decision for the flag of ``fp``. ``c.reasons`` must be this flag's own list (or None)."""
    flag = fp.flag
    held: FeatureDecision | None = None
    held_key = ""
    for holdout in plan.config.global_holdouts:
        variation = holdout_variation(plan, holdout, c)
        if variation is None:
            continue
        if c.note_info:
            c.reason_info(msg.IN_GLOBAL_HOLDOUT.format(c.user_id, holdout.key, flag.key))
        if not holdout.exclude_targeted_deliveries:
            return FeatureDecision(holdout, variation, _HOLDOUT, _reasons(c))
        if c.note_info:
            c.reason_info(msg.HOLDOUT_EXCLUDES_TARGETED.format(holdout.key))
        held = FeatureDecision(holdout, variation, _HOLDOUT, [])
        held_key = holdout.key
        break

    for experiment_id, experiment, local_holdouts in fp.experiments:
        if experiment is None:
            c.log_error(msg.EXPERIMENT_ID_NOT_IN_DATAFILE.format(experiment_id))
            continue
        if held is not None and experiment.type != TARGETED_DELIVERY:
            continue
        if c.forced_decisions:
            variation = validated_forced_decision(plan, flag.key, experiment.key, c.user, c.user_id, c)
            if variation is not None:
                return FeatureDecision(experiment, variation, _FEATURE_TEST, _reasons(c), held)
        for holdout in local_holdouts:
            variation = holdout_variation(plan, holdout, c)
            if variation is not None:
                if c.note_info:
                    c.reason_info(
                        msg.IN_LOCAL_HOLDOUT_EXPERIMENT.format(c.user_id, holdout.key, experiment.key)
                    )
                return FeatureDecision(holdout, variation, _HOLDOUT, _reasons(c))
        if c.reasons is not None:
            c.reasons.extend(c.reasons)  # the reference's repeated reasons, see the module docstring
        variation = get_variation(plan, experiment, c, forced, tracker)
        if variation is not None:
            return FeatureDecision(experiment, variation, _FEATURE_TEST, _reasons(c), held)

    if held is not None and c.note_info:
        c.reason_info(msg.HOLDOUT_CONTINUES_TO_ROLLOUT.format(held_key))
    decision = decide_rollout(plan, fp, c)
    if c.debug:
        template = (
            msg.BUCKETED_INTO_ROLLOUT if decision.variation is not None else msg.NOT_BUCKETED_INTO_ROLLOUT
        )
        c.logger.debug(template.format(c.user_id, flag.key))
    if held is not None:
        return FeatureDecision(
            decision.experiment, decision.variation, decision.source, decision.reasons, held
        )
    return decision


def decide_rollout(plan: Plan, fp: FlagPlan, c: Call) -> FeatureDecision:
    """The user's rollout decision (source ``rollout``, or ``holdout`` for a local holdout)."""
    flag = fp.flag
    rules = fp.rules
    if not rules:
        if fp.rollout_missing:
            c.log_error(msg.ROLLOUT_NOT_IN_DATAFILE.format(flag.rollout_id))
            if c.note_debug:
                c.reason_debug(msg.NO_ROLLOUT.format(flag.key))
        elif fp.rollout is not None and c.note_debug:
            c.reason_debug(msg.ROLLOUT_HAS_NO_EXPERIMENTS.format(fp.rollout.id))
        return FeatureDecision(None, None, _ROLLOUT, _reasons(c))

    last = len(rules) - 1
    index = 0
    attrs = c.attrs
    while index <= last:
        rp = rules[index]
        rule = rp.rule
        if c.forced_decisions:
            variation = validated_forced_decision(plan, flag.key, rule.key, c.user, c.user_id, c)
            if variation is not None:
                return FeatureDecision(rule, variation, _ROLLOUT, _reasons(c))
        for holdout in rp.holdouts:
            variation = holdout_variation(plan, holdout, c)
            if variation is not None:
                if c.note_info:
                    c.reason_info(msg.IN_LOCAL_HOLDOUT_DELIVERY.format(c.user_id, holdout.key, rule.key))
                return FeatureDecision(holdout, variation, _HOLDOUT, _reasons(c))
        if c.bucketing_id_invalid:
            c.note_bucketing_id()
        ep = rp.entity
        if ep is None:
            # The reference loops forever here; the config never produces it.
            c.log_error(msg.EXPERIMENT_ID_NOT_IN_DATAFILE.format(rule.id))
            index += 1
            continue
        logging_key = rp.logging_key
        skip_to_everyone_else = False
        if user_meets_audiences(ep.audiences, attrs, c, logging_key, rule=True):
            if c.note_debug:
                c.reason_debug(msg.MEETS_RULE_AUDIENCE.format(c.user_id, logging_key))
            variation = bucket(ep, c)
            if variation is not None:
                if c.note_debug:
                    c.reason_debug(msg.BUCKETED_INTO_RULE.format(c.user_id, logging_key))
                return FeatureDecision(rule, variation, _ROLLOUT, _reasons(c))
            if index != last:
                if c.note_debug:
                    c.reason_debug(msg.NOT_BUCKETED_INTO_RULE.format(c.user_id, logging_key))
                skip_to_everyone_else = True
        elif c.note_debug:
            c.reason_debug(msg.NOT_IN_RULE_AUDIENCE.format(c.user_id, logging_key))
        index = last if skip_to_everyone_else else index + 1
    return FeatureDecision(None, None, _ROLLOUT, _reasons(c))
