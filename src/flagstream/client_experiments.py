"""optimizely-sdk's experiment calls: ``activate``, ``get_variation``, ``track``, forced variations."""

from __future__ import annotations

from typing import Any

from flagstream.client_shared import _is_key, _SharedClient
from flagstream.config.project_config import ProjectConfig

__all__ = ["_ExperimentsAPI"]


class _ExperimentsAPI(_SharedClient):
    """The experiment calls of :class:`flagstream.Optimizely` (one line logged, never raised)."""

    # -- experiments -------------------------------------------------------------------------

    def activate(
        self, experiment_key: str, user_id: str, attributes: dict[str, Any] | None = None
    ) -> str | None:
        """Bucket the user, send an impression, and return the variation key (or ``None``)."""
        try:
            config = self._experiment_config("activate", experiment_key, user_id)
            if config is None:
                return None
            return self._experiment_path.activate(config, experiment_key, user_id, attributes)
        except Exception:  # never break the host application
            self._logger.exception('Unexpected error in "activate".')
            return None

    def get_variation(
        self, experiment_key: str, user_id: str, attributes: dict[str, Any] | None = None
    ) -> str | None:
        """The variation key the user is bucketed into, without sending an impression."""
        try:
            config = self._experiment_config("get_variation", experiment_key, user_id)
            if config is None:
                return None
            return self._experiment_path.variation(config, experiment_key, user_id, attributes)
        except Exception:
            self._logger.exception('Unexpected error in "get_variation".')
            return None

    def _experiment_config(self, api: str, experiment_key: object, user_id: object) -> ProjectConfig | None:
        """The config for an experiment call, or ``None`` after logging what is wrong with the call."""
        if self.is_valid and type(experiment_key) is str and experiment_key and type(user_id) is str:
            config: ProjectConfig | None = self.config_manager.get_config()
            if config is not None:
                return config  # the usual call: one check of everything, nothing logged
        if not self._check_valid(api):
            return None
        if not _is_key(experiment_key):
            self._invalid_input("experiment_key")
            return None
        if not isinstance(user_id, str):
            self._invalid_input("user_id")
            return None
        return self._config(api)

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
                    self._delivery.conversion(config, event.id, event_key, user_id, attributes, event_tags)
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
        self._delivery.conversion(config, event.id, event_key, user_id, attributes, event_tags)

    # -- forced variations -------------------------------------------------------------------

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
