"""``Optimizely``: the public client, with optimizely-sdk 5.x's names, arguments and defaults.

    client = flagstream.Optimizely(datafile)            # or sdk_key="..." to poll the CDN
    user = client.create_user_context("user-1", {"country": "de"})
    decision = user.decide("checkout_flow")
    user.track_event("purchase", {"revenue": 4200})
    client.close()

Every public call returns optimizely-sdk's documented default and logs one
line instead of raising, whatever the input, the datafile or the network.
Only constructor misuse (an option of the wrong type) raises, at once.
Impressions and conversions go to the event processor as user events; the
default one batches, retries and bounds them on its own worker.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from flagstream import _json
from flagstream.client_base import DecisionSources, ErrorMessages, _ClientBase
from flagstream.config.entities import Experiment, Variable, VariableType, Variation
from flagstream.config.project_config import ProjectConfig
from flagstream.decide import OptimizelyDecideOption, OptimizelyDecision, OptimizelyDecisionMessage
from flagstream.decision.results import FeatureDecision
from flagstream.events.factory import conversion_event, impression_event
from flagstream.notifications import DecisionNotificationTypes, NotificationCenter, NotificationTypes
from flagstream.user_context import OptimizelyUserContext

__all__ = ["Optimizely"]

ENDPOINT_ENV = "FLAGSTREAM_EVENT_ENDPOINT"

_INCLUDE_REASONS = OptimizelyDecideOption.INCLUDE_REASONS
_ENABLED_FLAGS_ONLY = OptimizelyDecideOption.ENABLED_FLAGS_ONLY
_DISABLE_DECISION_EVENT = OptimizelyDecideOption.DISABLE_DECISION_EVENT
_EXCLUDE_VARIABLES = OptimizelyDecideOption.EXCLUDE_VARIABLES


def _is_key(value: object) -> bool:
    return isinstance(value, str) and bool(value)


class Optimizely(_ClientBase):
    """The flagstream client.

    Arguments are optimizely-sdk's, in its order, plus ``event_endpoint``
    (also read from ``FLAGSTREAM_EVENT_ENDPOINT``): a URL that receives the
    same bytes instead of the Event API (a proxy, a local collector).
    ``settings`` (optimizely-sdk's ODP and CMAB settings) is accepted and not
    used: ODP and CMAB are out of scope. ``error_handler`` is accepted and
    checked but not called: every problem is logged on the SDK logger instead.

    >>> client = Optimizely(datafile_json)                          # doctest: +SKIP
    >>> client.activate("checkout_test", "user-1", {"age": 30})     # doctest: +SKIP
    'treatment'
    """

    def __init__(
        self,
        datafile: str | bytes | None = None,
        event_dispatcher: Any = None,
        logger: Any = None,
        error_handler: Any = None,
        skip_json_validation: bool | None = False,
        user_profile_service: Any = None,
        sdk_key: str | None = None,
        config_manager: Any = None,
        notification_center: NotificationCenter | None = None,
        event_processor: Any = None,
        datafile_access_token: str | None = None,
        default_decide_options: list[str] | None = None,
        event_processor_options: Mapping[str, Any] | None = None,
        settings: Any = None,
        *,
        event_endpoint: str | None = None,
    ) -> None:
        super().__init__(
            datafile=datafile,
            event_dispatcher=event_dispatcher,
            logger=logger,
            error_handler=error_handler,
            skip_json_validation=bool(skip_json_validation),
            user_profile_service=user_profile_service,
            sdk_key=sdk_key,
            config_manager=config_manager,
            notification_center=notification_center,
            event_processor=event_processor,
            datafile_access_token=datafile_access_token,
            default_decide_options=default_decide_options,
            event_processor_options=event_processor_options,
            event_endpoint=event_endpoint or os.environ.get(ENDPOINT_ENV) or None,
        )

    # ------------------------------------------------------------------
    # Experiments
    # ------------------------------------------------------------------

    def activate(
        self, experiment_key: str, user_id: str, attributes: dict[str, Any] | None = None
    ) -> str | None:
        """Bucket the user, send an impression, and return the variation key (or ``None``)."""
        try:
            return self._activate(experiment_key, user_id, attributes)
        except Exception:  # never break the host application
            self._logger.exception('Unexpected error in "activate".')
            return None

    def _activate(self, experiment_key: str, user_id: str, attributes: dict[str, Any] | None) -> str | None:
        if not self._check_valid("activate"):
            return None
        if not _is_key(experiment_key):
            self._invalid_input("experiment_key")
            return None
        if not isinstance(user_id, str):
            self._invalid_input("user_id")
            return None
        config = self._config("activate")
        if config is None:
            return None
        variation_key = self._get_variation(config, experiment_key, user_id, attributes)
        if not variation_key:
            self._debug(lambda: f'Not activating user "{user_id}".')
            return None
        experiment = config.get_experiment_from_key(experiment_key)
        variation = config.get_variation_from_key(experiment_key, variation_key)
        if experiment is None or variation is None:
            return None
        self._send_impression(
            config,
            experiment,
            variation,
            "",
            experiment.key,
            DecisionSources.EXPERIMENT,
            True,
            user_id,
            attributes,
        )
        return variation.key

    def get_variation(
        self, experiment_key: str, user_id: str, attributes: dict[str, Any] | None = None
    ) -> str | None:
        """The variation key the user is bucketed into, without sending an impression."""
        try:
            if not self._check_valid("get_variation"):
                return None
            if not _is_key(experiment_key):
                self._invalid_input("experiment_key")
                return None
            if not isinstance(user_id, str):
                self._invalid_input("user_id")
                return None
            config = self._config("get_variation")
            if config is None:
                return None
            return self._get_variation(config, experiment_key, user_id, attributes)
        except Exception:
            self._logger.exception('Unexpected error in "get_variation".')
            return None

    def _get_variation(
        self, config: ProjectConfig, experiment_key: str, user_id: str, attributes: dict[str, Any] | None
    ) -> str | None:
        experiment = config.get_experiment_from_key(experiment_key)
        if experiment is None:
            self._logger.info(
                f'Experiment key "{experiment_key}" is invalid. Not activating user "{user_id}".'
            )
            return None
        if not self._valid_attributes(attributes):
            return None
        user = OptimizelyUserContext(self, user_id, attributes)
        variation = self._decisions.variation_for_experiment(config, experiment, user)
        variation_key = variation.key if variation is not None else None
        if self._notifications.has_listeners(NotificationTypes.DECISION):
            kind = (
                DecisionNotificationTypes.FEATURE_TEST
                if config.is_feature_experiment(experiment.id)
                else DecisionNotificationTypes.AB_TEST
            )
            self._notifications.send_notifications(
                NotificationTypes.DECISION,
                kind,
                user_id,
                attributes or {},
                {"experiment_key": experiment_key, "variation_key": variation_key},
            )
        return variation_key

    def track(
        self,
        event_key: str,
        user_id: str,
        attributes: dict[str, Any] | None = None,
        event_tags: dict[str, Any] | None = None,
    ) -> None:
        """Record a conversion of ``event_key`` for the user."""
        try:
            # The common, valid call takes a straight path; anything unusual (bad input, no
            # config, unknown event) goes through _track, which logs what optimizely-sdk logs.
            if (
                self.is_valid
                and type(user_id) is str
                and type(event_key) is str
                and (attributes is None or type(attributes) is dict)
                and (event_tags is None or type(event_tags) is dict)
            ):
                config = self.config_manager.get_config()
                event = config.event_key_map.get(event_key) if config is not None else None
                if event is not None:
                    self._record_conversion(config, event.id, event_key, user_id, attributes, event_tags)
                    return
            self._track(event_key, user_id, attributes, event_tags)
        except Exception:
            self._logger.exception('Unexpected error in "track".')

    def _track(
        self,
        event_key: str,
        user_id: str,
        attributes: dict[str, Any] | None,
        event_tags: dict[str, Any] | None,
    ) -> None:
        if not self._check_valid("track"):
            return
        if not _is_key(event_key):
            self._invalid_input("event_key")
            return
        if not isinstance(user_id, str):
            self._invalid_input("user_id")
            return
        if not self._valid_attributes(attributes):
            return
        if event_tags and type(event_tags) is not dict:
            self._logger.error("Provided event tags are in an invalid format.")
            return
        config = self._config("track")
        if config is None:
            return
        event = config.get_event(event_key)
        if event is None:
            self._logger.info(f'Not tracking user "{user_id}" for event "{event_key}".')
            return
        self._record_conversion(config, event.id, event_key, user_id, attributes, event_tags)

    def _record_conversion(
        self,
        config: ProjectConfig,
        event_id: str,
        event_key: str,
        user_id: str,
        attributes: dict[str, Any] | None,
        event_tags: dict[str, Any] | None,
    ) -> None:
        user_event = conversion_event(
            config, self._events.context(config), event_id, event_key, user_id, attributes, event_tags
        )
        self._process(user_event)
        if self._notifications.has_listeners(NotificationTypes.TRACK):
            self._notifications.send_notifications(
                NotificationTypes.TRACK,
                event_key,
                user_id,
                attributes,
                event_tags,
                self._log_event_dict(user_event),
            )

    # ------------------------------------------------------------------
    # Feature flags (the pre-decide API)
    # ------------------------------------------------------------------

    def is_feature_enabled(
        self, feature_key: str, user_id: str, attributes: dict[str, Any] | None = None
    ) -> bool:
        """Whether the flag is on for the user; sends the impression of a feature test."""
        try:
            return self._is_feature_enabled(feature_key, user_id, attributes)
        except Exception:
            self._logger.exception('Unexpected error in "is_feature_enabled".')
            return False

    def _is_feature_enabled(self, feature_key: str, user_id: str, attributes: dict[str, Any] | None) -> bool:
        if not self._check_valid("is_feature_enabled"):
            return False
        if not _is_key(feature_key):
            self._invalid_input("feature_key")
            return False
        if not isinstance(user_id, str):
            self._invalid_input("user_id")
            return False
        if not self._valid_attributes(attributes):
            return False
        config = self._config("is_feature_enabled")
        if config is None:
            return False
        feature = config.get_feature_from_key(feature_key)
        if feature is None:
            return False
        user = OptimizelyUserContext(self, user_id, attributes)
        decision = self._decisions.decision_for_feature(config, feature, user)
        variation = decision.variation
        enabled = bool(variation is not None and variation.feature_enabled)
        source = decision.source
        experiment = decision.experiment
        if (source == DecisionSources.ROLLOUT or variation is None) and config.send_flag_decisions:
            self._send_impression(
                config,
                experiment,
                variation,
                feature.key,
                experiment.key if experiment is not None else "",
                str(source),
                enabled,
                user_id,
                attributes,
            )
        source_info: dict[str, Any] = {}
        if source == DecisionSources.FEATURE_TEST and variation is not None and experiment is not None:
            source_info = {"experiment_key": experiment.key, "variation_key": variation.key}
            self._send_impression(
                config,
                experiment,
                variation,
                feature.key,
                experiment.key,
                str(source),
                enabled,
                user_id,
                attributes,
            )
        if self._notifications.has_listeners(NotificationTypes.DECISION):
            self._notifications.send_notifications(
                NotificationTypes.DECISION,
                DecisionNotificationTypes.FEATURE,
                user_id,
                attributes or {},
                {
                    "feature_key": feature_key,
                    "feature_enabled": enabled,
                    "source": source,
                    "source_info": source_info,
                },
            )
        return enabled

    def get_enabled_features(self, user_id: str, attributes: dict[str, Any] | None = None) -> list[str]:
        """The keys of every flag that is on for the user."""
        enabled: list[str] = []
        try:
            if not self._check_valid("get_enabled_features"):
                return enabled
            if not isinstance(user_id, str):
                self._invalid_input("user_id")
                return enabled
            if not self._valid_attributes(attributes):
                return enabled
            config = self._config("get_enabled_features")
            if config is None:
                return enabled
            for feature_key in config.feature_key_map:
                if self.is_feature_enabled(feature_key, user_id, attributes):
                    enabled.append(feature_key)
        except Exception:
            self._logger.exception('Unexpected error in "get_enabled_features".')
        return enabled

    def get_feature_variable(
        self, feature_key: str, variable_key: str, user_id: str, attributes: dict[str, Any] | None = None
    ) -> Any:
        """The value of a flag variable for the user, typed by the variable's type."""
        return self._variable_api(
            "get_feature_variable", None, feature_key, variable_key, user_id, attributes
        )

    def get_feature_variable_boolean(
        self, feature_key: str, variable_key: str, user_id: str, attributes: dict[str, Any] | None = None
    ) -> bool | None:
        """The boolean variable's value for the user as a bool; ``None`` if the variable is not of that type."""
        return self._variable_api(  # type: ignore[no-any-return]
            "get_feature_variable_boolean",
            VariableType.BOOLEAN,
            feature_key,
            variable_key,
            user_id,
            attributes,
        )

    def get_feature_variable_double(
        self, feature_key: str, variable_key: str, user_id: str, attributes: dict[str, Any] | None = None
    ) -> float | None:
        """The double variable's value for the user as a float; ``None`` if the variable is not of that type."""
        return self._variable_api(  # type: ignore[no-any-return]
            "get_feature_variable_double", VariableType.DOUBLE, feature_key, variable_key, user_id, attributes
        )

    def get_feature_variable_integer(
        self, feature_key: str, variable_key: str, user_id: str, attributes: dict[str, Any] | None = None
    ) -> int | None:
        """The integer variable's value for the user as an int; ``None`` if the variable is not of that type."""
        return self._variable_api(  # type: ignore[no-any-return]
            "get_feature_variable_integer",
            VariableType.INTEGER,
            feature_key,
            variable_key,
            user_id,
            attributes,
        )

    def get_feature_variable_string(
        self, feature_key: str, variable_key: str, user_id: str, attributes: dict[str, Any] | None = None
    ) -> str | None:
        """The string variable's value for the user as a str; ``None`` if the variable is not of that type."""
        return self._variable_api(  # type: ignore[no-any-return]
            "get_feature_variable_string", VariableType.STRING, feature_key, variable_key, user_id, attributes
        )

    def get_feature_variable_json(
        self, feature_key: str, variable_key: str, user_id: str, attributes: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """The json variable's value for the user, parsed; ``None`` if the variable is not of type json."""
        return self._variable_api(  # type: ignore[no-any-return]
            "get_feature_variable_json", VariableType.JSON, feature_key, variable_key, user_id, attributes
        )

    def _variable_api(
        self,
        api: str,
        variable_type: str | None,
        feature_key: str,
        variable_key: str,
        user_id: str,
        attributes: dict[str, Any] | None,
    ) -> Any:
        try:
            if not self._check_valid(api):
                return None
            config = self._config(api)
            if config is None:
                return None
            return self._feature_variable(
                config, feature_key, variable_key, variable_type, user_id, attributes
            )
        except Exception:
            self._logger.exception(f'Unexpected error in "{api}".')
            return None

    def _feature_variable(
        self,
        config: ProjectConfig,
        feature_key: str,
        variable_key: str,
        variable_type: str | None,
        user_id: str,
        attributes: dict[str, Any] | None,
    ) -> Any:
        if not _is_key(feature_key):
            self._invalid_input("feature_key")
            return None
        if not _is_key(variable_key):
            self._invalid_input("variable_key")
            return None
        if not isinstance(user_id, str):
            self._invalid_input("user_id")
            return None
        if not self._valid_attributes(attributes):
            return None
        feature = config.get_feature_from_key(feature_key)
        if feature is None:
            self._logger.error(f'Feature with key "{feature_key}" not found in the datafile.')
            return None
        variable = feature.variables.get(variable_key)
        if variable is None:
            self._logger.error(f'Variable with key "{variable_key}" not found in the datafile.')
            return None
        variable_type = variable_type or variable.type
        if variable.type != variable_type:
            self._logger.warning(
                f'Requested variable type "{variable_type}", but variable is of type "{variable.type}". '
                "Use correct API to retrieve value. Returning None."
            )
            return None
        user = OptimizelyUserContext(self, user_id, attributes)
        decision = self._decisions.decision_for_feature(config, feature, user)
        enabled = bool(decision.variation is not None and decision.variation.feature_enabled)
        raw: str | None = variable.default_value
        if enabled and decision.variation is not None:
            raw = config.get_variable_value_for_variation(variable, decision.variation)
        source_info: dict[str, Any] = {}
        if decision.source in (DecisionSources.FEATURE_TEST, DecisionSources.HOLDOUT):
            source_info = {
                "experiment_key": decision.experiment.key if decision.experiment is not None else None,
                "variation_key": decision.variation.key if decision.variation is not None else None,
            }
        value = self._typecast(raw, variable_type)
        if self._notifications.has_listeners(NotificationTypes.DECISION):
            self._notifications.send_notifications(
                NotificationTypes.DECISION,
                DecisionNotificationTypes.FEATURE_VARIABLE,
                user_id,
                attributes or {},
                {
                    "feature_key": feature_key,
                    "feature_enabled": enabled,
                    "source": decision.source,
                    "variable_key": variable_key,
                    "variable_value": value,
                    "variable_type": variable_type,
                    "source_info": source_info,
                },
            )
        return value

    def get_all_feature_variables(
        self, feature_key: str, user_id: str, attributes: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """Every variable of the flag for the user, typed."""
        try:
            if not self._check_valid("get_all_feature_variables"):
                return None
            config = self._config("get_all_feature_variables")
            if config is None:
                return None
            if not _is_key(feature_key):
                self._invalid_input("feature_key")
                return None
            if not isinstance(user_id, str):
                self._invalid_input("user_id")
                return None
            if not self._valid_attributes(attributes):
                return None
            feature = config.get_feature_from_key(feature_key)
            if feature is None:
                self._logger.error(f'Feature with key "{feature_key}" not found in the datafile.')
                return None
            user = OptimizelyUserContext(self, user_id, attributes)
            decision = self._decisions.decision_for_feature(config, feature, user)
            enabled = bool(decision.variation is not None and decision.variation.feature_enabled)
            values = self._variables_of(config, feature.variables, decision.variation if enabled else None)
            source_info: dict[str, Any] = {}
            if decision.source == DecisionSources.FEATURE_TEST:
                source_info = {
                    "experiment_key": decision.experiment.key if decision.experiment is not None else None,
                    "variation_key": decision.variation.key if decision.variation is not None else None,
                }
            if self._notifications.has_listeners(NotificationTypes.DECISION):
                self._notifications.send_notifications(
                    NotificationTypes.DECISION,
                    DecisionNotificationTypes.ALL_FEATURE_VARIABLES,
                    user_id,
                    attributes or {},
                    {
                        "feature_key": feature_key,
                        "feature_enabled": enabled,
                        "variable_values": values,
                        "source": decision.source,
                        "source_info": source_info,
                    },
                )
            return values
        except Exception:
            self._logger.exception('Unexpected error in "get_all_feature_variables".')
            return None

    # ------------------------------------------------------------------
    # Forced variations
    # ------------------------------------------------------------------

    def set_forced_variation(self, experiment_key: str, user_id: str, variation_key: str | None) -> bool:
        """Force the user into ``variation_key`` of the experiment (``None`` clears it)."""
        try:
            if not self._check_valid("set_forced_variation"):
                return False
            if not _is_key(experiment_key):
                self._invalid_input("experiment_key")
                return False
            if not isinstance(user_id, str):
                self._invalid_input("user_id")
                return False
            config = self._config("set_forced_variation")
            if config is None:
                return False
            return bool(
                self._decisions.service.set_forced_variation(config, experiment_key, user_id, variation_key)
            )
        except Exception:
            self._logger.exception('Unexpected error in "set_forced_variation".')
            return False

    def get_forced_variation(self, experiment_key: str, user_id: str) -> str | None:
        """The variation key the user was forced into with :meth:`set_forced_variation`."""
        try:
            if not self._check_valid("get_forced_variation"):
                return None
            if not _is_key(experiment_key):
                self._invalid_input("experiment_key")
                return None
            if not isinstance(user_id, str):
                self._invalid_input("user_id")
                return None
            config = self._config("get_forced_variation")
            if config is None:
                return None
            variation, _ = self._decisions.service.get_forced_variation(config, experiment_key, user_id)
            return variation.key if variation is not None else None
        except Exception:
            self._logger.exception('Unexpected error in "get_forced_variation".')
            return None

    # ------------------------------------------------------------------
    # Decide
    # ------------------------------------------------------------------

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

    # ------------------------------------------------------------------
    # Variables
    # ------------------------------------------------------------------

    def _variables_of(
        self, config: ProjectConfig, variables: Mapping[str, Variable], variation: Variation | None
    ) -> dict[str, Any]:
        """The typed values of ``variables`` for ``variation`` (their defaults for ``None``).

        Values are cast once per config and variation and then copied; json
        values are parsed again on every call so callers never share a dict.
        Without json variables every value is immutable and a shallow copy of
        the cached dict is the whole cost.
        """
        cache_key = (id(variables), variation.id if variation is not None else None)
        cached = self._variable_cache.get(cache_key)
        if cached is None or cached[0] is not config:
            if self._variable_cache_config is not config:
                self._variable_cache.clear()
                self._variable_cache_config = config
            cast: list[tuple[str, Any, str | None]] = []
            for key, variable in variables.items():
                raw: str | None = variable.default_value
                if variation is not None:
                    raw = config.get_variable_value_for_variation(variable, variation)
                value = self._typecast(raw, variable.type)
                is_json = variable.type == VariableType.JSON and value is not None
                cast.append((key, value, raw if is_json else None))
            plain = None if any(raw is not None for _, _, raw in cast) else {k: v for k, v, _ in cast}
            cached = (config, tuple(cast), plain)
            self._variable_cache[cache_key] = cached
        if cached[2] is not None:
            return cached[2].copy()
        return {key: value if raw is None else _parse_json(raw) for key, value, raw in cached[1]}

    def _typecast(self, raw: str | None, variable_type: str) -> Any:
        cast: Callable[[Any], Any] | None = _CASTS.get(variable_type)
        if cast is None:
            return raw
        try:
            return cast(raw)
        except Exception:
            self._logger.error("Unable to cast value. Returning None.")
            return None

    # ------------------------------------------------------------------
    # Impressions
    # ------------------------------------------------------------------

    def _send_impression(
        self,
        config: ProjectConfig,
        experiment: Any,
        variation: Any,
        flag_key: str,
        rule_key: str,
        rule_type: str,
        enabled: bool,
        user_id: str,
        attributes: Mapping[str, Any] | None,
    ) -> None:
        user_event = impression_event(
            config,
            self._events.context(config),
            experiment,
            variation,
            flag_key,
            rule_key,
            rule_type,
            enabled,
            user_id,
            attributes,
        )
        self._process(user_event)
        if self._notifications.has_listeners(NotificationTypes.ACTIVATE):
            self._notifications.send_notifications(
                NotificationTypes.ACTIVATE,
                experiment if experiment is not None else _DEFAULT_EXPERIMENT,
                user_id,
                attributes,
                variation,
                self._log_event_dict(user_event),
            )


def _json_cast(raw: Any) -> Any:
    # The stdlib parser, as optimizely-sdk parses json variables (it accepts NaN and big ints).
    return json.loads(raw)


def _parse_json(raw: str) -> Any:
    """A fresh parse of a json variable already known to parse, equal to ``json.loads``."""
    return _json.loads_exact(raw)


_CASTS: dict[str, Callable[[Any], Any]] = {
    VariableType.BOOLEAN: lambda raw: raw == "true",
    VariableType.INTEGER: int,
    VariableType.DOUBLE: float,
    VariableType.JSON: _json_cast,
}

_DEFAULT_EXPERIMENT = Experiment(
    id="",
    key="",
    status="",
    layer_id="",
    audience_ids=(),
    audience_conditions=(),
    variations=(),
    variations_by_key={},
    variations_by_id={},
    forced_variations={},
    traffic_allocation=(),
)
