"""``FlagstreamProvider``: flagstream decisions behind OpenFeature's client API."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode, ProviderNotReadyError
from openfeature.flag_evaluation import FlagResolutionDetails, FlagType, FlagValueType, Reason
from openfeature.hook import Hook
from openfeature.provider import AbstractProvider, Metadata, ProviderStatus
from openfeature.track import TrackingEventDetails

from flagstream.client import Optimizely
from flagstream.config.project_config import ProjectConfig
from flagstream.errors import ConfigurationError
from flagstream.notifications import NotificationTypes
from flagstream.openfeature import _resolve
from flagstream.openfeature._changes import changed_flags

__all__ = ["PROVIDER_NAME", "FlagstreamProvider"]

PROVIDER_NAME: Final = "flagstream"
VALUE_TAGS: Final = ("value", "revenue")
STALE_INTERVALS: Final = 3.0

T = TypeVar("T")
_Emit = Callable[[ProviderEventDetails], None]


class FlagstreamProvider(AbstractProvider):
    """An OpenFeature provider that decides with a flagstream :class:`~flagstream.Optimizely` client.

    >>> from openfeature import api                                       # doctest: +SKIP
    >>> api.set_provider_and_wait(FlagstreamProvider(Optimizely(datafile)))  # doctest: +SKIP
    >>> api.get_client().get_boolean_value("checkout_flow", False,           # doctest: +SKIP
    ...     EvaluationContext("user-1", {"country": "de"}))
    True

    Keys: ``flag_key`` (a boolean evaluation is the flag's ``enabled``; an
    object evaluation is all its variables; a string, integer or float one is
    its only variable) or ``flag_key.variable_key`` (that variable). Every
    successful evaluation is one ``decide`` with its impression, sent by the
    client's event processor. ``variant`` is the variation key.

    ``shutdown()`` closes the client within ``shutdown_timeout`` seconds
    (flushes only, when ``close_client=False``). ``track(name, context,
    details)`` is ``track_event``: ``details.value`` becomes the ``value``
    tag (``value_tag="revenue"``: the ``revenue`` tag, for whole numbers of
    cents), ``details.attributes`` the other tags. With a polling config
    manager the provider turns STALE when no datafile poll has succeeded for
    ``stale_after`` seconds (default: three update intervals).
    """

    def __init__(
        self,
        client: Optimizely,
        *,
        shutdown_timeout: float = 5.0,
        close_client: bool = True,
        hooks: Sequence[Hook] = (),
        value_tag: str = "value",
        stale_after: float | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(client, Optimizely):
            raise ConfigurationError(f"client must be a flagstream Optimizely, not {type(client).__name__}")
        if isinstance(shutdown_timeout, bool) or not isinstance(shutdown_timeout, (int, float)):
            raise ConfigurationError("shutdown_timeout must be a number of seconds")
        if value_tag not in VALUE_TAGS:
            raise ConfigurationError(f"value_tag must be one of {VALUE_TAGS}, not {value_tag!r}")
        if stale_after is not None and not (isinstance(stale_after, (int, float)) and stale_after > 0):
            raise ConfigurationError("stale_after must be a positive number of seconds or None")
        self.client = client
        self._logger = client.logger
        self._shutdown_timeout = float(shutdown_timeout)
        self._close_client = close_client
        self._hooks = list(hooks)
        self._metadata = Metadata(name=PROVIDER_NAME)
        self._value_tag = value_tag
        self._lock = threading.Lock()
        self._status = ProviderStatus.NOT_READY
        self._config: ProjectConfig | None = None
        self._listener_id: int | None = None
        manager = client.config_manager
        interval = getattr(manager, "update_interval", None)
        if not (hasattr(manager, "fetched_at") and isinstance(interval, (int, float)) and interval > 0):
            interval = None
        self._poller = manager if interval is not None else None
        self._stale_after = float(stale_after or STALE_INTERVALS * (interval or 0.0))
        self._watch_from = time.monotonic()

    # -- metadata and lifecycle ------------------------------------------------------

    # OpenFeature asks for both on every evaluation: one object each, made once.

    def get_metadata(self) -> Metadata:
        return self._metadata

    def get_provider_hooks(self) -> list[Hook]:
        return self._hooks

    @property
    def status(self) -> ProviderStatus:
        """What this provider last reported: NOT_READY, READY, ERROR or STALE."""
        return self._status

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Wait for the first config (up to the config manager's blocking timeout).

        Without one it raises ``ProviderNotReadyError``: OpenFeature then reports
        PROVIDER_ERROR, and READY follows when a datafile arrives.
        """
        del evaluation_context  # decisions take the context of each evaluation
        center = self.client.notification_center
        if self._listener_id is None:
            listener_id = center.add_notification_listener(
                NotificationTypes.OPTIMIZELY_CONFIG_UPDATE, self._on_config_update
            )
            self._listener_id = listener_id if listener_id > 0 else None
        config = self.client.config_manager.get_config() if self.client.is_valid else None
        with self._lock:
            self._watch_from = time.monotonic()
            if config is None:
                config = self._config  # a datafile may have arrived while we waited
            if config is None:
                self._status = ProviderStatus.ERROR
                raise ProviderNotReadyError("flagstream has no usable datafile yet")
            self._config = config
            self._status = ProviderStatus.READY

    def shutdown(self) -> None:
        """Flush and close the client (or only flush it), within ``shutdown_timeout``."""
        with self._lock:
            self._status = ProviderStatus.NOT_READY
            listener_id, self._listener_id = self._listener_id, None
        if listener_id is not None:
            self.client.notification_center.remove_notification_listener(listener_id)
        if self._close_client:
            report = self.client.close(self._shutdown_timeout)
        else:
            report = self.client.flush(self._shutdown_timeout)
        if report is not None and not getattr(report, "completed", True):
            self._logger.warning(
                f"OpenFeature provider shutdown: {getattr(report, 'pending', '?')} events were not "
                f"delivered within {self._shutdown_timeout:g} s."
            )

    # -- provider events ----------------------------------------------------------------

    def _on_config_update(self) -> None:
        # OPTIMIZELY_CONFIG_UPDATE, on the polling thread. A config manager that does not
        # notify the client is noticed at the next evaluation instead (see _evaluate).
        config = self.client.config_manager.get_config()
        if isinstance(config, ProjectConfig):
            self._adopt(config)

    def _adopt(self, config: ProjectConfig) -> None:
        """READY after ERROR or STALE, then CONFIGURATION_CHANGED, for a config not seen before."""
        events: list[tuple[_Emit, ProviderEventDetails]] = []
        with self._lock:
            previous, status = self._config, self._status
            if config is previous:
                return
            if status == ProviderStatus.NOT_READY:
                self._config = config  # initialize() is still waiting (it takes this one), or shut down
                return
            self._config = config
            self._watch_from = time.monotonic()
            if status != ProviderStatus.READY:
                self._status = ProviderStatus.READY
                events.append((self.emit_provider_ready, ProviderEventDetails(message="datafile received")))
            if previous is not None:
                details = ProviderEventDetails(
                    flags_changed=changed_flags(previous, config),
                    message=f"datafile revision {previous.revision} -> {config.revision}",
                    metadata={"revision": config.revision},
                )
                events.append((self.emit_provider_configuration_changed, details))
        for emit, details in events:
            emit(details)

    def _check_fresh(self) -> None:
        """STALE when polling has not succeeded for ``stale_after`` seconds; READY once it has."""
        fetched_at = getattr(self._poller, "fetched_at", None)
        now = time.monotonic()
        stale = now - max(fetched_at or 0.0, self._watch_from) > self._stale_after
        status = self._status
        if stale == (status == ProviderStatus.STALE) or status not in (
            ProviderStatus.READY,
            ProviderStatus.STALE,
        ):
            return
        with self._lock:
            if self._status != status:
                return
            self._status = ProviderStatus.STALE if stale else ProviderStatus.READY
        if stale:
            self.emit_provider_stale(
                ProviderEventDetails(message=f"no datafile poll has succeeded for {self._stale_after:g} s")
            )
        else:
            self.emit_provider_ready(ProviderEventDetails(message="datafile polling succeeded again"))

    # -- evaluation ----------------------------------------------------------------------

    def _resolve(
        self, flag_type: FlagType, flag_key: str, default: T, context: EvaluationContext | None
    ) -> FlagResolutionDetails[T]:
        try:
            if self._poller is not None:
                self._check_fresh()
            return self._evaluate(flag_type, flag_key, default, context)
        except Exception as exc:  # never break the host application
            self._logger.exception(f'OpenFeature evaluation of "{flag_key}" failed.')
            return _failed(default, _resolve.Failure(ErrorCode.GENERAL, f"{type(exc).__name__}: {exc}"))

    def _evaluate(
        self, flag_type: FlagType, flag_key: str, default: T, context: EvaluationContext | None
    ) -> FlagResolutionDetails[T]:
        client = self.client
        config: ProjectConfig | None = client.config_manager.get_config() if client.is_valid else None
        if config is None:
            return _failed(default, _NOT_READY)
        if config is not self._config:
            self._adopt(config)
        if not isinstance(flag_key, str):
            return _failed(
                default, _resolve.Failure(ErrorCode.FLAG_NOT_FOUND, "The flag key is not a string.")
            )
        target = _resolve.address(config, flag_key, flag_type)
        if isinstance(target, _resolve.Failure):
            return _failed(default, target)
        user = _resolve.user_for(client, context)
        if isinstance(user, _resolve.Failure):
            return _failed(default, user)
        decision, made = _resolve.decide(client, config, user, target, flag_type)
        value = _resolve.value_of(flag_type, target, decision)
        if isinstance(value, _resolve.Failure):
            return _failed(default, value)
        return FlagResolutionDetails(
            value=value,
            reason=_resolve.reason_of(made, user.user_id, config, target.feature),
            variant=decision.variation_key,
            flag_metadata=_resolve.flag_metadata(config, made, decision),
        )

    def resolve_boolean_details(
        self, flag_key: str, default_value: bool, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(_BOOLEAN, flag_key, default_value, evaluation_context)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(_STRING, flag_key, default_value, evaluation_context)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(_INTEGER, flag_key, default_value, evaluation_context)

    def resolve_float_details(
        self, flag_key: str, default_value: float, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[float]:
        return self._resolve(_FLOAT, flag_key, default_value, evaluation_context)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._resolve(_OBJECT, flag_key, default_value, evaluation_context)

    # The async twins are AbstractProvider's: they call these methods, which never wait
    # (decisions are in memory; impressions are queued for the event processor's worker).

    # -- tracking ---------------------------------------------------------------------------

    def track(
        self,
        tracking_event_name: str,
        evaluation_context: EvaluationContext | None = None,
        tracking_event_details: TrackingEventDetails | None = None,
    ) -> None:
        """``track_event(tracking_event_name, tags)`` for the context's user; never raises."""
        try:
            user = _resolve.user_for(self.client, evaluation_context)
            if isinstance(user, _resolve.Failure):
                self._logger.error(f'Not tracking "{tracking_event_name}": {user.message}')
                return
            tags = self._tags(tracking_event_details)
            user.track_event(tracking_event_name, tags)
        except Exception:
            self._logger.exception(f'OpenFeature track of "{tracking_event_name}" failed.')

    def _tags(self, details: TrackingEventDetails | None) -> dict[str, Any] | None:
        if details is None:
            return None
        tags: dict[str, Any] = dict(details.attributes or {})
        value = details.value
        if value is None:
            return tags or None
        if self._value_tag == "revenue":
            if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
                tags["revenue"] = int(value)
                return tags
            self._logger.warning(
                f"Tracking value {value!r} is not a whole number of cents; sent as the value tag."
            )
        tags["value"] = value
        return tags


_BOOLEAN: Final = FlagType.BOOLEAN
_STRING: Final = FlagType.STRING
_INTEGER: Final = FlagType.INTEGER
_FLOAT: Final = FlagType.FLOAT
_OBJECT: Final = FlagType.OBJECT
_NOT_READY: Final = _resolve.Failure(ErrorCode.PROVIDER_NOT_READY, "flagstream has no usable datafile yet.")


def _failed(default: T, failure: _resolve.Failure) -> FlagResolutionDetails[T]:
    return FlagResolutionDetails(
        value=default, error_code=failure.code, error_message=failure.message, reason=Reason.ERROR
    )
