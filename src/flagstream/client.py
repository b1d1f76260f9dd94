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

import os
from collections.abc import Mapping
from typing import Any

from flagstream.client_decide import _DecideAPI
from flagstream.client_experiments import _ExperimentsAPI
from flagstream.client_features import _FeaturesAPI
from flagstream.notifications import NotificationCenter

__all__ = ["Optimizely"]

ENDPOINT_ENV = "FLAGSTREAM_EVENT_ENDPOINT"


class Optimizely(_ExperimentsAPI, _FeaturesAPI, _DecideAPI):
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

    The calls live by responsibility: experiments (:mod:`flagstream.client_experiments`),
    feature flags (:mod:`flagstream.client_features`), ``decide``
    (:mod:`flagstream.client_decide`), what they share (:mod:`flagstream.client_shared`)
    and the wiring (:mod:`flagstream.client_base`); this class only joins them.
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
