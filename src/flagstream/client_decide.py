"""The ``decide`` API on the client side: user contexts in, ``OptimizelyDecision`` out.

:class:`~flagstream.user_context.OptimizelyUserContext` calls ``_decide``,
``_decide_for_keys`` and ``_decide_all`` here with itself; each decides on a snapshot. The
OpenFeature provider (:mod:`flagstream.openfeature._resolve`) calls
``_merge_options``, ``_decisions.decide_flag`` and ``_finish_decision``. A single
``decide`` and the finishing of every decision run in
:class:`flagstream.calls.decide.DecidePath` (compiled in the mypyc build).
"""

from __future__ import annotations

from typing import Any

from flagstream.calls.decide import call_options, snapshot
from flagstream.client_base import ErrorMessages
from flagstream.client_shared import _SharedClient
from flagstream.config.project_config import ProjectConfig
from flagstream.decide import OptimizelyDecideOption
from flagstream.decision.results import FeatureDecision
from flagstream.user_context import OptimizelyDecision, OptimizelyUserContext

__all__ = ["_DecideAPI"]

_INCLUDE_REASONS = OptimizelyDecideOption.INCLUDE_REASONS
_ENABLED_FLAGS_ONLY = OptimizelyDecideOption.ENABLED_FLAGS_ONLY


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
        return self._decide_path.decide(user, key, options)  # never raises

    def _decide_for_keys(
        self, user: OptimizelyUserContext, keys: list[str], options: list[str] | None
    ) -> dict[str, OptimizelyDecision]:
        try:
            user, options = snapshot(user), call_options(options)
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
            user, options = snapshot(user), call_options(options)
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
        return self._decide_path.merge_options(options)

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
        return self._decide_path.finish(config, user, flag_key, decision, options, include_reasons)
