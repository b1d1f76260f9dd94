"""optimizely-sdk's ``activate`` and ``get_variation`` past their argument checks (compiled in the mypyc build).

The client's public methods check the instance, the arguments and the config,
as optimizely-sdk does and with its log lines, then call
:class:`ExperimentPath` with the config: one interpreted frame per call
instead of one per step.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from flagstream._decisions import DecisionAdapter
from flagstream._logging import SDK_LOGGER
from flagstream.calls.shared import Delivery, Listeners
from flagstream.calls.user import UserState
from flagstream.config.project_config import ProjectConfig
from flagstream.decision.sources import DecisionSource
from flagstream.notifications import DecisionNotificationTypes, NotificationTypes

__all__ = ["INVALID_ATTRIBUTES", "ExperimentPath"]

INVALID_ATTRIBUTES: Final = "Provided attributes are in an invalid format."

_DEBUG: Final = logging.DEBUG
_EXPERIMENT: Final = DecisionSource.EXPERIMENT
_DECISION: Final = NotificationTypes.DECISION
_FEATURE_TEST: Final = DecisionNotificationTypes.FEATURE_TEST
_AB_TEST: Final = DecisionNotificationTypes.AB_TEST


class ExperimentPath:
    """``activate`` and ``get_variation`` for one client, from a checked call and its config."""

    def __init__(
        self, client: Any, decisions: DecisionAdapter, delivery: Delivery, logger: Any, notifications: Any
    ) -> None:
        self.client = client  # the decisions' users name it, as optimizely-sdk's user contexts do
        self.decisions = decisions
        self.delivery = delivery
        self.listeners: Listeners = delivery.listeners
        self.logger = logger
        self.notifications = notifications

    def activate(
        self, config: ProjectConfig, experiment_key: str, user_id: str, attributes: Any
    ) -> str | None:
        """Bucket the user, send the impression, and return the variation key (or ``None``)."""
        variation_key = self.variation(config, experiment_key, user_id, attributes)
        if not variation_key:
            logger = self.logger
            if logger is not SDK_LOGGER or SDK_LOGGER.isEnabledFor(_DEBUG):  # no formatting when off
                logger.debug(f'Not activating user "{user_id}".')
            return None
        experiment = config.get_experiment_from_key(experiment_key)
        variation = config.get_variation_from_key(experiment_key, variation_key)
        if experiment is None or variation is None:
            return None
        self.delivery.impression(
            config, experiment, variation, "", experiment.key, _EXPERIMENT, True, user_id, attributes
        )
        key: str = variation.key
        return key

    def variation(
        self, config: ProjectConfig, experiment_key: str, user_id: str, attributes: Any
    ) -> str | None:
        """The variation key the user is bucketed into, and the DECISION notification; no impression."""
        experiment = config.get_experiment_from_key(experiment_key)
        if experiment is None:
            self.logger.info(
                f'Experiment key "{experiment_key}" is invalid. Not activating user "{user_id}".'
            )
            return None
        if attributes and type(attributes) is not dict:
            self.logger.error(INVALID_ATTRIBUTES)
            return None
        user = UserState(self.client, user_id, attributes)
        variation = self.decisions.variation_for_experiment(config, experiment, user)
        variation_key = variation.key if variation is not None else None
        if self.listeners.wanted(_DECISION):
            kind = _FEATURE_TEST if config.is_feature_experiment(experiment.id) else _AB_TEST
            self.notifications.send_notifications(
                _DECISION,
                kind,
                user_id,
                attributes or {},
                {"experiment_key": experiment_key, "variation_key": variation_key},
            )
        return variation_key
