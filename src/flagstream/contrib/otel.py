"""OpenTelemetry: delivery metrics, and decisions as span events (extra ``otel``).

    from flagstream.contrib.otel import instrument_delivery, record_decisions

    instrument_delivery(client)          # counters and gauges on the global MeterProvider
    record_decisions(client)             # a feature_flag.evaluation event per decision

**Metrics.** Observable instruments that read the processor's ``stats()`` at
each collection, so nothing is added to the caller's path:
``flagstream.delivery.{enqueued,delivered,requests,retried,dropped}``
(counters; ``dropped`` has a ``reason`` attribute) and
``flagstream.delivery.{queued_events,queued_bytes,in_flight_events,oldest_age_seconds,workers_alive}``
(gauges). They are the numbers ``prometheus_text()`` renders.

**Span events.** Each decision (``decide``, ``is_feature_enabled``,
``activate`` / ``get_variation``), including those made through the
OpenFeature provider, adds a ``feature_flag.evaluation`` event to the span
that is current, following the OpenTelemetry semantic conventions for
feature flags: ``feature_flag.key``, ``feature_flag.provider.name``,
``feature_flag.result.variant`` (the variation key), ``feature_flag.result.value``
(enabled, for flags), ``feature_flag.version`` (the datafile revision), and
``flagstream.rule_key``. ``feature_flag.context.id`` (the user id) only with
``include_user_id=True``; the pre-1.28 names ``feature_flag.provider_name``
and ``feature_flag.variant`` as well with ``legacy_attributes=True``.
Nothing is recorded when no span is recording.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

try:
    import opentelemetry.metrics  # noqa: F401  (the extra's library: a clear message when it is missing)
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the surface test
    raise ImportError(f"{__name__} needs the otel extra: pip install 'flagstream[otel]' ({exc})") from exc

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation

from flagstream._version import __version__
from flagstream.contrib._stats import COUNTERS, DROPPED, GAUGES, Number, dropped_by_reason, stats_source
from flagstream.delivery.stats import DeliveryStats
from flagstream.notifications import DecisionNotificationTypes, NotificationTypes

__all__ = ["EVENT_NAME", "DecisionRecorder", "instrument_delivery", "record_decisions"]

EVENT_NAME: Final = "feature_flag.evaluation"
PROVIDER_NAME: Final = "flagstream"
_TYPES: Final = frozenset(
    {
        DecisionNotificationTypes.FLAG,
        DecisionNotificationTypes.FEATURE,
        DecisionNotificationTypes.AB_TEST,
        DecisionNotificationTypes.FEATURE_TEST,
    }
)


def instrument_delivery(
    source: Any,
    *,
    meter_provider: MeterProvider | None = None,
    prefix: str = "flagstream.delivery",
    attributes: Mapping[str, str] | None = None,
) -> Meter:
    """Register the delivery counters and gauges of ``source`` (a client or a batch processor).

    ``attributes`` are added to every observation (to tell several clients
    apart). Returns the meter. Raises ConfigurationError for a source without
    ``stats()``.
    """
    stats = stats_source(source)
    extra = dict(attributes or {})
    meter = (meter_provider or metrics.get_meter_provider()).get_meter("flagstream", __version__)

    def reading(number: Number) -> Any:
        def callback(_options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(number.read(stats()), extra)]

        return callback

    def dropped(_options: CallbackOptions) -> Iterable[Observation]:
        snapshot: DeliveryStats = stats()
        return [
            Observation(count, {**extra, "reason": reason})
            for reason, count in dropped_by_reason(snapshot).items()
        ]

    for number in COUNTERS:
        meter.create_observable_counter(
            f"{prefix}.{number.name}", [reading(number)], unit=number.unit, description=number.help
        )
    meter.create_observable_counter(
        f"{prefix}.{DROPPED.name}", [dropped], unit=DROPPED.unit, description=DROPPED.help
    )
    for number in GAUGES:
        meter.create_observable_gauge(
            f"{prefix}.{number.name}", [reading(number)], unit=number.unit, description=number.help
        )
    return meter


@dataclass(slots=True)
class DecisionRecorder:
    """The DECISION listener :func:`record_decisions` added; :meth:`remove` takes it away."""

    client: Any
    listener_id: int
    include_user_id: bool
    legacy_attributes: bool

    def __call__(self, kind: str, user_id: str, _attributes: object, info: Mapping[str, Any]) -> None:
        if kind not in _TYPES:
            return
        span = trace.get_current_span()
        if not span.is_recording():
            return
        attributes = self._attributes(kind, user_id, info)
        span.add_event(EVENT_NAME, attributes)

    def _attributes(self, kind: str, user_id: str, info: Mapping[str, Any]) -> dict[str, Any]:
        if kind == DecisionNotificationTypes.FLAG:
            key, variant, value, rule = (
                info.get("flag_key"),
                info.get("variation_key"),
                info.get("enabled"),
                info.get("rule_key"),
            )
        elif kind == DecisionNotificationTypes.FEATURE:
            source_info = info.get("source_info") or {}
            key, value = info.get("feature_key"), info.get("feature_enabled")
            variant, rule = source_info.get("variation_key"), source_info.get("experiment_key")
        else:  # an experiment: activate / get_variation
            key, variant, value = info.get("experiment_key"), info.get("variation_key"), None
            rule = key
        attributes: dict[str, Any] = {
            "feature_flag.key": str(key),
            "feature_flag.provider.name": PROVIDER_NAME,
        }
        if variant is not None:
            attributes["feature_flag.result.variant"] = str(variant)
        if isinstance(value, bool):
            attributes["feature_flag.result.value"] = value
        if rule is not None:
            attributes["flagstream.rule_key"] = str(rule)
        config = self.client.config_manager.get_config()
        if config is not None:
            attributes["feature_flag.version"] = str(config.revision)
        if self.include_user_id:
            attributes["feature_flag.context.id"] = str(user_id)
        if self.legacy_attributes:
            attributes["feature_flag.provider_name"] = PROVIDER_NAME
            if variant is not None:
                attributes["feature_flag.variant"] = str(variant)
        return attributes

    def remove(self) -> bool:
        """Stop recording; ``False`` if the listener was already gone."""
        return bool(self.client.notification_center.remove_notification_listener(self.listener_id))


def record_decisions(
    client: Any, *, include_user_id: bool = False, legacy_attributes: bool = False
) -> DecisionRecorder:
    """Add a span event to the current span for every decision ``client`` makes.

    Uses the client's DECISION notification, so the listener runs on the
    deciding thread, inside the span the application has open there.
    """
    recorder = DecisionRecorder(client, -1, include_user_id, legacy_attributes)
    recorder.listener_id = client.notification_center.add_notification_listener(
        NotificationTypes.DECISION, recorder
    )
    return recorder
