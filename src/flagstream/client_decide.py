"""The ``decide`` API on the client side: user contexts in, ``OptimizelyDecision`` out.

:class:`~flagstream.user_context.OptimizelyUserContext` calls ``_decide``,
``_decide_for_keys`` and ``_decide_all`` here with a snapshot of itself. The
OpenFeature provider (:mod:`flagstream.openfeature._resolve`) calls
``_merge_options``, ``_decisions.decide_flag`` and ``_finish_decision``.
"""

from __future__ import annotations

from typing import Any

from flagstream.client_base import DecisionSources, ErrorMessages
from flagstream.client_shared import _SharedClient
from flagstream.config.project_config import ProjectConfig
from flagstream.decide import OptimizelyDecideOption, OptimizelyDecisionMessage
from flagstream.decision.results import FeatureDecision
from flagstream.notifications import DecisionNotificationTypes, NotificationTypes
from flagstream.user_context import OptimizelyDecision, OptimizelyUserContext

__all__ = ["_DecideAPI"]

_INCLUDE_REASONS = OptimizelyDecideOption.INCLUDE_REASONS
_ENABLED_FLAGS_ONLY = OptimizelyDecideOption.ENABLED_FLAGS_ONLY
_DISABLE_DECISION_EVENT = OptimizelyDecideOption.DISABLE_DECISION_EVENT
_EXCLUDE_VARIABLES = OptimizelyDecideOption.EXCLUDE_VARIABLES


class _DecideAPI(_SharedClient):
    """``create_user_context`` and what the user context's ``decide*`` calls run."""

    def create_user_context(
        self, user_id: str, attributes: dict[str, Any] | None = None
    ) -> OptimizelyUserContext | None:
        """A user context for ``decide``; ``None`` (and one log line) for a non-string id or non-dict attributes."""
        if not isinstance(user_id, str):
            self._invalid_input("user_id")
            return None
        if attributes is not None and type(attributes) is not dict:
            self._invalid_input("attributes")
            return None
        return OptimizelyUserContext(self, user_id, attributes)

    def _decide(self, user: OptimizelyUserContext, key: str, options: list[str] | None) -> OptimizelyDecision:
        try:
            return self._decide_one(user, key, options)
        except Exception:
            self._logger.exception('Unexpected error in "decide".')
            return OptimizelyDecision(flag_key=key, user_context=user)

    def _decide_one(
        self, user: OptimizelyUserContext, key: str, options: list[str] | None
    ) -> OptimizelyDecision:
        if not self.is_valid:
            self._logger.error(ErrorMessages.INVALID_OPTIMIZELY.format("decide"))
            return OptimizelyDecision(
                flag_key=key, user_context=user, reasons=[OptimizelyDecisionMessage.SDK_NOT_READY]
            )
        if not isinstance(key, str):
            self._logger.error("Key parameter is invalid")
            return OptimizelyDecision(
                flag_key=key,
                user_context=user,
                reasons=[OptimizelyDecisionMessage.FLAG_KEY_INVALID.format(key)],
            )
        config = self._config("decide")
        if config is None:
            return OptimizelyDecision(
                flag_key=key, user_context=user, reasons=[OptimizelyDecisionMessage.SDK_NOT_READY]
            )
        feature = config.feature_key_map.get(key)
        if feature is None:
            self._logger.error(f"No feature flag was found for key '{key}'.")
            return OptimizelyDecision(
                flag_key=key,
                user_context=user,
                reasons=[OptimizelyDecisionMessage.FLAG_KEY_INVALID.format(key)],
            )
        merged = self._merge_options(options)
        # One decision is always returned, so ENABLED_FLAGS_ONLY does not apply to decide().
        if _ENABLED_FLAGS_ONLY in merged:
            merged = [o for o in merged if o != _ENABLED_FLAGS_ONLY]
        flag_decision = self._decisions.decide_flag(config, user, feature, merged)
        return self._finish_decision(config, user, key, flag_decision, merged, _INCLUDE_REASONS in merged)

    def _decide_for_keys(
        self, user: OptimizelyUserContext, keys: list[str], options: list[str] | None
    ) -> dict[str, OptimizelyDecision]:
        try:
            if not self.is_valid:
                self._logger.error(ErrorMessages.INVALID_OPTIMIZELY.format("decide_for_keys"))
                return {}
            config = self._config_quiet()
            if config is None:
                return {}
            if not isinstance(keys, list):
                self._invalid_input("keys")
                return {}
            return self._decide_keys(config, user, keys, self._merge_options(options))
        except Exception:
            self._logger.exception('Unexpected error in "decide_for_keys".')
            return {}

    def _decide_all(
        self, user: OptimizelyUserContext, options: list[str] | None
    ) -> dict[str, OptimizelyDecision]:
        try:
            if not self.is_valid:
                self._logger.error(ErrorMessages.INVALID_OPTIMIZELY.format("decide_all"))
                return {}
            config = self._config("decide")
            if config is None:
                return {}
            return self._decide_keys(config, user, list(config.feature_key_map), self._merge_options(options))
        except Exception:
            self._logger.exception('Unexpected error in "decide_all".')
            return {}

    def _merge_options(self, options: list[str] | None) -> list[str]:
        if isinstance(options, list):
            return options + self._default_decide_options if self._default_decide_options else options
        if options is not None:
            self._debug(lambda: "Provided decide options is not an array. Using default decide options.")
        return list(self._default_decide_options)

    def _decide_keys(
        self, config: ProjectConfig, user: OptimizelyUserContext, keys: list[Any], options: list[str]
    ) -> dict[str, OptimizelyDecision]:
        decisions: dict[str, OptimizelyDecision] = {}
        include_reasons = _INCLUDE_REASONS in options
        enabled_only = _ENABLED_FLAGS_ONLY in options
        flag_decisions = self._decisions.decide_flags(config, user, keys, options)
        # Keys that name no flag come first, as in optimizely-sdk's result.
        for key in keys:
            if not (isinstance(key, str) and key in flag_decisions):
                try:
                    decisions[key] = OptimizelyDecision(flag_key=key, user_context=user)
                except TypeError:  # an unhashable key cannot name a decision; skip it
                    self._invalid_input("keys")
        for key in keys:
            flag_decision = flag_decisions.get(key) if isinstance(key, str) else None
            if flag_decision is not None:
                decision = self._finish_decision(config, user, key, flag_decision, options, include_reasons)
                if not enabled_only or decision.enabled:
                    decisions[key] = decision
        return decisions

    def _finish_decision(
        self,
        config: ProjectConfig,
        user: OptimizelyUserContext,
        flag_key: str,
        decision: FeatureDecision,
        options: list[str],
        include_reasons: bool,
    ) -> OptimizelyDecision:
        variation = decision.variation
        experiment = decision.experiment
        source = decision.source
        enabled = bool(variation is not None and variation.feature_enabled)
        attributes = user.attributes
        rule_key = experiment.key if experiment is not None else None
        send_events = _DISABLE_DECISION_EVENT not in options
        dispatched = False
        holdout = decision.holdout_decision
        if holdout is not None and source != DecisionSources.HOLDOUT and send_events:
            self._send_impression(
                config,
                holdout.experiment,
                holdout.variation,
                flag_key,
                holdout.experiment.key if holdout.experiment is not None else "",
                DecisionSources.HOLDOUT,
                bool(holdout.variation is not None and holdout.variation.feature_enabled),
                user.user_id,
                attributes,
            )
            dispatched = True
        if send_events and (
            source in (DecisionSources.FEATURE_TEST, DecisionSources.HOLDOUT) or config.send_flag_decisions
        ):
            self._send_impression(
                config,
                experiment,
                variation,
                flag_key,
                rule_key or "",
                str(source),
                enabled,
                user.user_id,
                attributes,
            )
            dispatched = True
        variables: dict[str, Any] = {}
        if _EXCLUDE_VARIABLES not in options:
            feature = config.get_feature_from_key(flag_key)
            if feature is not None:
                variables = self._variables_of(config, feature.variables, variation if enabled else None)
        reasons = list(decision.reasons) if include_reasons else []
        variation_key = variation.key if variation is not None else None
        if self._notifications.has_listeners(NotificationTypes.DECISION):
            self._notifications.send_notifications(
                NotificationTypes.DECISION,
                DecisionNotificationTypes.FLAG,
                user.user_id,
                dict(attributes),
                {
                    "flag_key": flag_key,
                    "enabled": enabled,
                    "variables": variables,
                    "variation_key": variation_key,
                    "rule_key": rule_key,
                    "reasons": reasons,
                    "decision_event_dispatched": dispatched,
                    "experiment_id": experiment.id if experiment is not None else None,
                    "variation_id": variation.id if variation is not None else None,
                },
            )
        return OptimizelyDecision(
            variation_key=variation_key,
            enabled=enabled,
            variables=variables,
            rule_key=rule_key,
            flag_key=flag_key,
            user_context=user,
            reasons=reasons,
        )
