"""OpenFeature provider for flagstream (extra ``openfeature``: ``pip install 'flagstream[openfeature]'``).

    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext
    from flagstream import Optimizely
    from flagstream.openfeature import FlagstreamProvider

    api.set_provider_and_wait(FlagstreamProvider(Optimizely(datafile)))
    client = api.get_client()
    client.get_boolean_value("checkout_flow", False, EvaluationContext("user-1", {"country": "de"}))
    client.get_string_value("checkout_flow.button_text", "Buy", EvaluationContext("user-1"))
    client.track("purchase", EvaluationContext("user-1"), TrackingEventDetails(value=42.0))
    api.shutdown()                                   # flushes and closes the flagstream client

Keys, reasons, error codes and events are described in ``docs/openfeature.md``.
"""

from __future__ import annotations

try:
    import openfeature  # noqa: F401  (the extra's library: a clear message when it is missing)
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the surface test
    raise ImportError(
        f"{__name__} needs the openfeature extra: pip install 'flagstream[openfeature]' ({exc})"
    ) from exc

from flagstream.openfeature.provider import PROVIDER_NAME, FlagstreamProvider

__all__ = ["PROVIDER_NAME", "FlagstreamProvider"]
