"""The client's plumbing: options, config, processor, decisions and events wiring.

``Optimizely`` (``client.py``) holds the public API; this module holds what
every API call shares, so each call reads as optimizely-sdk's documented steps.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any, Final

from flagstream._decisions import DecisionAdapter
from flagstream._logging import get_logger
from flagstream.calls.decide import DecidePath
from flagstream.calls.experiments import INVALID_ATTRIBUTES, ExperimentPath
from flagstream.calls.shared import (
    INVALID_INPUT,
    INVALID_OPTIMIZELY,
    INVALID_PROJECT_CONFIG,
    Delivery,
    Listeners,
    VariableValues,
)
from flagstream.config.project_config import ProjectConfig
from flagstream.decision.results import DecisionSource as DecisionSources
from flagstream.errors import ConfigurationError
from flagstream.notifications import NotificationCenter, NotificationTypes

__all__ = ["DecisionSources", "ErrorMessages"]


class ErrorMessages:
    INVALID_INPUT: Final = INVALID_INPUT
    INVALID_OPTIMIZELY: Final = INVALID_OPTIMIZELY
    INVALID_PROJECT_CONFIG: Final = INVALID_PROJECT_CONFIG
    INVALID_ATTRIBUTES: Final = INVALID_ATTRIBUTES


# optimizely-sdk's BatchEventProcessor option that has no meaning for flagstream's processor
# (its own bounded queue replaces a user-supplied one).
_IGNORED_PROCESSOR_OPTIONS: Final = frozenset({"event_queue"})


def _require(value: object, name: str, methods: tuple[str, ...]) -> None:
    missing = [m for m in methods if not callable(getattr(value, m, None))]
    if missing:
        raise ConfigurationError(
            f"{name} must provide {', '.join(m + '()' for m in methods)}; "
            f"{type(value).__name__} lacks {', '.join(missing)}"
        )


class _ClientBase:
    """Construction and the steps every public call shares."""

    def __init__(
        self,
        *,
        datafile: Any,
        event_dispatcher: Any,
        logger: Any,
        error_handler: Any,
        skip_json_validation: bool,
        user_profile_service: Any,
        sdk_key: str | None,
        config_manager: Any,
        notification_center: Any,
        event_processor: Any,
        datafile_access_token: str | None,
        default_decide_options: Any,
        event_processor_options: Mapping[str, Any] | None,
        event_endpoint: str | None,
    ) -> None:
        self.is_valid = True
        if logger is not None:
            _require(logger, "logger", ("debug", "info", "warning", "error"))
        self._logger = get_logger(logger)
        if error_handler is not None:
            _require(error_handler, "error_handler", ("handle_error",))
        self.error_handler = error_handler
        if event_dispatcher is not None:
            _require(event_dispatcher, "event_dispatcher", ("dispatch_event",))
        if user_profile_service is not None:
            _require(user_profile_service, "user_profile_service", ("lookup", "save"))
        if config_manager is not None:
            _require(config_manager, "config_manager", ("get_config",))
        if notification_center is not None:
            _require(
                notification_center,
                "notification_center",
                ("add_notification_listener", "send_notifications"),
            )
        if event_processor is not None:
            _require(event_processor, "event_processor", ("process",))
        if sdk_key is not None and not isinstance(sdk_key, str):
            raise ConfigurationError(f"sdk_key must be a string, not {type(sdk_key).__name__}")
        if datafile_access_token is not None and not isinstance(datafile_access_token, str):
            raise ConfigurationError("datafile_access_token must be a string")
        if default_decide_options is None:
            default_decide_options = []
        if not isinstance(default_decide_options, list) or not all(
            isinstance(o, str) for o in default_decide_options
        ):
            raise ConfigurationError(
                "default_decide_options must be a list of OptimizelyDecideOption strings"
            )
        if event_processor_options is not None and not isinstance(event_processor_options, Mapping):
            raise ConfigurationError("event_processor_options must be a dict")
        if event_endpoint is not None and not (
            isinstance(event_endpoint, str) and event_endpoint.startswith(("http://", "https://"))
        ):
            raise ConfigurationError(f"event_endpoint must be an http(s) URL, not {event_endpoint!r}")

        self._default_decide_options: list[str] = list(default_decide_options)
        self._notifications: NotificationCenter = notification_center or NotificationCenter(self._logger)
        self.event_endpoint = event_endpoint
        self.user_profile_service = user_profile_service
        self._close_lock = threading.Lock()
        self._closed = False
        self._decisions = DecisionAdapter(self._logger, user_profile_service)
        # The per-call paths (compiled in the mypyc build; flagstream/calls/).
        self._listeners = Listeners(self._notifications)
        self._delivery = Delivery(self, self._logger, self._notifications, self._listeners, event_endpoint)
        self._variables = VariableValues(self._logger)
        self._experiment_path = ExperimentPath(
            self, self._decisions, self._delivery, self._logger, self._notifications
        )
        self._decide_path = DecidePath(
            self,
            self._decisions,
            self._delivery,
            self._variables,
            self._logger,
            self._notifications,
            self._default_decide_options,
        )
        self.event_processor = event_processor or self._default_processor(
            event_dispatcher, event_processor_options
        )
        attach = getattr(self.event_processor, "attach_listeners", None)
        if event_processor is not None and callable(attach):
            attach(self._on_log_event, self._on_outcome)
        self.event_dispatcher = event_dispatcher or getattr(self.event_processor, "event_dispatcher", None)
        self.config_manager = config_manager or self._default_config_manager(
            datafile, sdk_key, datafile_access_token, skip_json_validation
        )

    # -- construction helpers ------------------------------------------------

    def _default_processor(self, dispatcher: Any, options: Mapping[str, Any] | None) -> Any:
        from flagstream.delivery.processor import BatchEventProcessor  # noqa: PLC0415 (optional import cost)

        kwargs = {k: v for k, v in (options or {}).items() if k not in _IGNORED_PROCESSOR_OPTIONS}
        broker = kwargs.pop("broker", None) or os.environ.get("FLAGSTREAM_BROKER_URL")
        if broker and dispatcher is None:
            from flagstream.broker.producer import RedisStreamDispatcher  # noqa: PLC0415 (the broker extra)

            dispatcher = RedisStreamDispatcher(str(broker), logger=self._logger)
        try:
            return BatchEventProcessor(
                dispatcher,
                logger=self._logger,
                on_log_event=self._on_log_event,
                on_outcome=self._on_outcome,
                **kwargs,
            )
        except TypeError as exc:
            raise ConfigurationError(f"event_processor_options: {exc}") from None

    def _default_config_manager(
        self, datafile: Any, sdk_key: str | None, access_token: str | None, skip_json_validation: bool
    ) -> Any:
        from flagstream.config.managers import StaticConfigManager  # noqa: PLC0415
        from flagstream.config.polling import PollingConfigManager  # noqa: PLC0415

        if sdk_key:
            return PollingConfigManager(
                sdk_key=sdk_key,
                datafile=datafile,
                datafile_access_token=access_token,
                logger=self._logger,
                on_update=self._on_config_update,
                skip_json_validation=skip_json_validation,
            )
        return StaticConfigManager(
            datafile,
            skip_json_validation=skip_json_validation,
            logger=self._logger,
            on_update=self._on_config_update,
        )

    def _on_log_event(self, log_event: Any) -> None:
        if self._listeners.wanted(NotificationTypes.LOG_EVENT):
            self._notifications.send_notifications(NotificationTypes.LOG_EVENT, log_event)

    def _on_outcome(self, outcome: Any) -> None:
        if self._listeners.wanted(NotificationTypes.DELIVERY):
            self._notifications.send_notifications(NotificationTypes.DELIVERY, outcome)

    def _on_config_update(self, config: Any = None) -> None:
        # Runs on the polling thread: compile the new config for decisions there,
        # so the first decisions on it do not pay for it.
        if isinstance(config, ProjectConfig):
            self._decisions.service.prepare(config)
        self._notifications.send_notifications(NotificationTypes.OPTIMIZELY_CONFIG_UPDATE)

    # -- the steps every call shares --------------------------------------------

    @property
    def notification_center(self) -> NotificationCenter:
        return self._notifications

    @property
    def logger(self) -> Any:
        return self._logger

    @property
    def default_decide_options(self) -> list[str]:
        return list(self._default_decide_options)

    def _check_valid(self, api: str) -> bool:
        if not self.is_valid:
            self._logger.error(ErrorMessages.INVALID_OPTIMIZELY.format(api))
        return self.is_valid

    def _invalid_input(self, name: str) -> None:
        self._logger.error(ErrorMessages.INVALID_INPUT.format(name))

    def _valid_attributes(self, attributes: object) -> bool:
        if attributes and type(attributes) is not dict:
            self._logger.error(ErrorMessages.INVALID_ATTRIBUTES)
            return False
        return True

    def _config_quiet(self) -> ProjectConfig | None:
        config: ProjectConfig | None = self.config_manager.get_config()
        return config

    def _config(self, api: str) -> ProjectConfig | None:
        config = self._config_quiet()
        if config is None:
            self._logger.error(ErrorMessages.INVALID_PROJECT_CONFIG.format(api))
        return config

    # -- configuration -----------------------------------------------------------

    def get_optimizely_config(self) -> Any:
        """The datafile as an ``OptimizelyConfig`` (experiments, features, variables), or ``None``."""
        try:
            if not self._check_valid("get_optimizely_config"):
                return None
            config = self._config("get_optimizely_config")
            if config is None:
                return None
            from flagstream.optimizely_config import build_optimizely_config  # noqa: PLC0415

            return build_optimizely_config(config)
        except Exception:
            self._logger.exception('Unexpected error in "get_optimizely_config".')
            return None

    # -- lifecycle ---------------------------------------------------------------

    def flush(self, timeout: float = 5.0) -> Any:
        """Send what is queued, waiting at most ``timeout`` seconds; returns the processor's report."""
        flush = getattr(self.event_processor, "flush", None)
        if not callable(flush):
            return None
        try:
            return flush(timeout)
        except Exception:
            self._logger.exception("Flushing events failed.")
            return None

    def close(self, timeout: float = 5.0) -> Any:
        """Flush and stop the event processor (within ``timeout``) and stop datafile polling."""
        with self._close_lock:
            if self._closed:
                return None
            self._closed = True
        report = None
        try:
            close = getattr(self.event_processor, "close", None)
            if callable(close):
                report = close(timeout)
            elif callable(getattr(self.event_processor, "stop", None)):
                self.event_processor.stop()
        except Exception:
            self._logger.exception("Closing the event processor failed.")
        try:
            if callable(getattr(self.config_manager, "stop", None)):
                self.config_manager.stop()
        except Exception:
            self._logger.exception("Stopping the config manager failed.")
        return report

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
