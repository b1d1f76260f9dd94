"""The client's view of the decision service: the calls it makes, in the shape it needs.

It adds what optimizely-sdk's client does around the service: the user
profile is loaded once and saved once per call, and flag-level forced
decisions are looked at before the flag's rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flagstream._logging import LoggerLike
from flagstream.config.entities import Experiment, FeatureFlag, Variation
from flagstream.config.project_config import ProjectConfig
from flagstream.decision.results import DecisionSource, DecisionUser, FeatureDecision
from flagstream.decision.service import DecisionService

__all__ = ["DecisionAdapter"]


class DecisionAdapter:
    __slots__ = ("service",)

    def __init__(self, logger: LoggerLike, user_profile_service: Any) -> None:
        self.service = DecisionService(logger, user_profile_service)

    def variation_for_experiment(
        self, config: ProjectConfig, experiment: Experiment, user: DecisionUser
    ) -> Variation | None:
        tracker = self.service.new_user_profile_tracker(user.user_id)
        result = self.service.get_variation(config, experiment, user, tracker)
        if tracker is not None:
            tracker.save()
        return result.variation

    def decision_for_feature(
        self, config: ProjectConfig, feature: FeatureFlag, user: DecisionUser
    ) -> FeatureDecision:
        return self.service.get_variation_for_feature(config, feature, user)

    def decide_flag(
        self, config: ProjectConfig, user: DecisionUser, feature: FeatureFlag, options: Sequence[str]
    ) -> FeatureDecision:
        """The decision for one flag: :meth:`decide_flags` for a single key, without its bookkeeping."""
        if user.get_forced_decision_variation_key(feature.key, None) is not None:
            return self.decide_flags(config, user, (feature.key,), options)[feature.key]
        return self.service.get_variations_for_feature_list(config, (feature,), user, options)[0]

    def decide_flags(
        self, config: ProjectConfig, user: DecisionUser, keys: Sequence[Any], options: Sequence[str]
    ) -> dict[str, FeatureDecision]:
        """A decision for every key that names a flag; flag-level forced decisions first.

        Reasons are kept per key as optimizely-sdk keeps them: a key's list is reset
        at each of its occurrences in ``keys`` and then gains the reasons of every
        decision made for it, so a repeated key reports its rule reasons repeatedly.
        The flag rules are always evaluated, even for no flag, because that is
        where the user profile is looked up (once).
        """
        decided: dict[str, FeatureDecision] = {}
        pending: list[FeatureFlag] = []
        reasons_by_key: dict[str, list[str]] = {}
        repeated = False
        features = config.feature_key_map
        for key in keys:
            feature = features.get(key) if isinstance(key, str) else None
            if feature is None:
                continue
            repeated = repeated or key in reasons_by_key
            reasons_by_key[key] = []
            if user.get_forced_decision_variation_key(key, None) is not None:
                variation, reasons = self.service.find_validated_forced_decision(config, key, None, user)
                reasons_by_key[key] = list(reasons)
                if variation is not None:
                    decided[key] = FeatureDecision(None, variation, DecisionSource.FEATURE_TEST, [])
                    continue
            pending.append(feature)
        made = self.service.get_variations_for_feature_list(config, pending, user, options)
        for feature, decision in zip(pending, made, strict=True):
            reasons_by_key[feature.key] += decision.reasons
            decided[feature.key] = decision
        for key, decision in decided.items():
            reasons = reasons_by_key[key]
            if repeated or reasons != decision.reasons:
                decided[key] = FeatureDecision(
                    decision.experiment,
                    decision.variation,
                    decision.source,
                    reasons,
                    decision.holdout_decision,
                )
        return decided
