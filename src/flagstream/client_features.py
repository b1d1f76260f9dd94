"""optimizely-sdk's feature-flag calls (the pre-``decide`` API): enabled checks and variables."""

from __future__ import annotations

from typing import Any

from flagstream.calls.user import UserState
from flagstream.client_base import DecisionSources
from flagstream.client_shared import _is_key, _SharedClient
from flagstream.config.entities import VariableType
from flagstream.config.project_config import ProjectConfig
from flagstream.notifications import DecisionNotificationTypes, NotificationTypes

__all__ = ["_FeaturesAPI"]


class _FeaturesAPI(_SharedClient):
    """The feature-flag calls of :class:`flagstream.Optimizely` (one line logged, never raised)."""

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
        user = UserState(self, user_id, attributes)
        decision = self._decisions.decision_for_feature(config, feature, user)
        variation = decision.variation
        enabled = bool(variation is not None and variation.feature_enabled)
        source = decision.source
        experiment = decision.experiment
        if (source == DecisionSources.ROLLOUT or variation is None) and config.send_flag_decisions:
            self._delivery.impression(
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
            self._delivery.impression(
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
        if self._listeners.wanted(NotificationTypes.DECISION):
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
        user = UserState(self, user_id, attributes)
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
        value = self._variables.typecast(raw, variable_type)
        if self._listeners.wanted(NotificationTypes.DECISION):
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
            user = UserState(self, user_id, attributes)
            decision = self._decisions.decision_for_feature(config, feature, user)
            enabled = bool(decision.variation is not None and decision.variation.feature_enabled)
            values = self._variables.of(config, feature.variables, decision.variation if enabled else None)
            source_info: dict[str, Any] = {}
            if decision.source == DecisionSources.FEATURE_TEST:
                source_info = {
                    "experiment_key": decision.experiment.key if decision.experiment is not None else None,
                    "variation_key": decision.variation.key if decision.variation is not None else None,
                }
            if self._listeners.wanted(NotificationTypes.DECISION):
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
