"""One ``decide``: a user context snapshot in, an ``OptimizelyDecision`` (and its impression) out.

:class:`DecidePath` is what ``OptimizelyUserContext.decide`` runs through the
client (``client._decide``), and what ``decide_for_keys``, ``decide_all`` and
the OpenFeature provider finish their decisions with. The steps and texts are
optimizely-sdk's ``Optimizely._decide``: validity, the flag, the merged
options, the decision, the impression(s), the variables, the DECISION
notification.
"""

from __future__ import annotations

from typing import Any, Final

from flagstream._decisions import DecisionAdapter
from flagstream.calls.result import OptimizelyDecision, decision_with_pending_json, json_values
from flagstream.calls.shared import INVALID_OPTIMIZELY, INVALID_PROJECT_CONFIG, Delivery, VariableValues
from flagstream.calls.user import UserState, copy_state, decision_view
from flagstream.config.project_config import ProjectConfig
from flagstream.decide import OptimizelyDecideOption, OptimizelyDecisionMessage
from flagstream.decision.results import FeatureDecision
from flagstream.decision.sources import DecisionSource
from flagstream.notifications import DecisionNotificationTypes, NotificationTypes
from flagstream.user_context import OptimizelyUserContext

__all__ = ["DecidePath", "call_options", "snapshot"]

_INCLUDE_REASONS: Final = OptimizelyDecideOption.INCLUDE_REASONS
_ENABLED_FLAGS_ONLY: Final = OptimizelyDecideOption.ENABLED_FLAGS_ONLY
_DISABLE_DECISION_EVENT: Final = OptimizelyDecideOption.DISABLE_DECISION_EVENT
_EXCLUDE_VARIABLES: Final = OptimizelyDecideOption.EXCLUDE_VARIABLES
_FEATURE_TEST: Final = DecisionSource.FEATURE_TEST
_HOLDOUT: Final = DecisionSource.HOLDOUT
_DECISION: Final = NotificationTypes.DECISION
_FLAG: Final = DecisionNotificationTypes.FLAG
_SDK_NOT_READY: Final = OptimizelyDecisionMessage.SDK_NOT_READY
_FLAG_KEY_INVALID: Final = OptimizelyDecisionMessage.FLAG_KEY_INVALID

_new_context = OptimizelyUserContext.__new__


def snapshot(user: UserState) -> OptimizelyUserContext:
    """A copy of ``user`` for one ``decide*`` call: its attributes and forced decisions as they are now.

    Another thread's ``set_attribute`` then never changes a decision half-way.
    Snapshots are plain ``OptimizelyUserContext`` objects made without ``__init__``.
    """
    clone: OptimizelyUserContext = _new_context(OptimizelyUserContext)
    copy_state(user, clone)
    return clone


def call_options(options: Any) -> Any:
    """The caller's options as the call keeps them: a list is copied (the caller may change theirs)."""
    return list(options) if isinstance(options, list) else options


def _undecided(key: Any, user: Any, reason: str | None) -> OptimizelyDecision:
    return OptimizelyDecision(None, False, {}, None, key, user, [reason] if reason is not None else [])


class DecidePath:
    """The client's ``decide`` steps; ``client`` is read for its public ``is_valid`` and ``config_manager``."""

    def __init__(
        self,
        client: Any,
        decisions: DecisionAdapter,
        delivery: Delivery,
        variables: VariableValues,
        logger: Any,
        notifications: Any,
        default_options: list[str],
    ) -> None:
        self.client = client
        self.decisions = decisions
        self.delivery = delivery
        self.variables = variables
        self.logger = logger
        self.notifications = notifications
        self.default_options = default_options

    def decide(self, user: Any, key: Any, options: Any) -> OptimizelyDecision:
        """``user.decide(key, options)``, decided on a snapshot of ``user``; never raises."""
        try:
            user = snapshot(user)
            return self._decide(user, key, call_options(options))
        except Exception:
            self.logger.exception('Unexpected error in "decide".')
            return _undecided(key, user, None)

    def _decide(self, user: Any, key: Any, options: Any) -> OptimizelyDecision:
        client = self.client
        if not client.is_valid:
            self.logger.error(INVALID_OPTIMIZELY.format("decide"))
            return _undecided(key, user, _SDK_NOT_READY)
        if not isinstance(key, str):
            self.logger.error("Key parameter is invalid")
            return _undecided(key, user, _FLAG_KEY_INVALID.format(key))
        config: ProjectConfig | None = client.config_manager.get_config()
        if config is None:
            self.logger.error(INVALID_PROJECT_CONFIG.format("decide"))
            return _undecided(key, user, _SDK_NOT_READY)
        feature = config.feature_key_map.get(key)
        if feature is None:
            self.logger.error(f"No feature flag was found for key '{key}'.")
            return _undecided(key, user, _FLAG_KEY_INVALID.format(key))
        merged = self.merge_options(options)
        # One decision is always returned, so ENABLED_FLAGS_ONLY does not apply to decide().
        if _ENABLED_FLAGS_ONLY in merged:
            merged = [o for o in merged if o != _ENABLED_FLAGS_ONLY]
        flag_decision = self.decisions.decide_flag(config, user, feature, merged)
        return self.finish(config, user, key, flag_decision, merged, _INCLUDE_REASONS in merged)

    def merge_options(self, options: Any) -> list[str]:
        """The call's options followed by the client's default ones (a new list, or the call's)."""
        defaults = self.default_options
        if isinstance(options, list):
            return options + defaults if defaults else options
        if options is not None:
            self.logger.debug("Provided decide options is not an array. Using default decide options.")
        return list(defaults)

    def finish(
        self,
        config: ProjectConfig,
        user: Any,
        flag_key: str,
        decision: FeatureDecision,
        options: list[str],
        include_reasons: bool,
    ) -> OptimizelyDecision:
        """The ``OptimizelyDecision`` of a flag decision, after its impressions and notification."""
        variation = decision.variation
        experiment = decision.experiment
        source = decision.source
        enabled = bool(variation is not None and variation.feature_enabled)
        if isinstance(user, UserState):
            user_id, attributes, _ = decision_view(user)
        else:
            attributes = user.attributes
            user_id = user.user_id
        rule_key = experiment.key if experiment is not None else None
        send_events = _DISABLE_DECISION_EVENT not in options
        dispatched = False
        holdout = decision.holdout_decision
        if holdout is not None and source != _HOLDOUT and send_events:
            held = holdout.experiment
            held_variation = holdout.variation
            self.delivery.impression(
                config,
                held,
                held_variation,
                flag_key,
                held.key if held is not None else "",
                _HOLDOUT,
                bool(held_variation is not None and held_variation.feature_enabled),
                user_id,
                attributes,
            )
            dispatched = True
        if send_events and (source in (_FEATURE_TEST, _HOLDOUT) or config.send_flag_decisions):
            self.delivery.impression(
                config, experiment, variation, flag_key, rule_key or "", source, enabled, user_id, attributes
            )
            dispatched = True
        variables: dict[str, Any] = {}
        pending: tuple[tuple[str, Any, str | None], ...] | None = None  # json variables, parsed when read
        if _EXCLUDE_VARIABLES not in options:
            feature = config.get_feature_from_key(flag_key)
            if feature is not None:
                cached = self.variables.cached(config, feature.variables, variation if enabled else None)
                plain = cached[2]
                if plain is not None:
                    variables = plain.copy()
                else:
                    pending = cached[1]
        reasons = list(decision.reasons) if include_reasons else []
        variation_key = variation.key if variation is not None else None
        if self.delivery.listeners.wanted(_DECISION):
            if pending is not None:  # the listeners get the decision's own values
                variables = json_values(pending)
                pending = None
            self.notifications.send_notifications(
                _DECISION,
                _FLAG,
                user_id,
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
        if pending is not None:
            return decision_with_pending_json(
                variation_key, enabled, pending, rule_key, flag_key, user, reasons
            )
        return OptimizelyDecision(variation_key, enabled, variables, rule_key, flag_key, user, reasons)
