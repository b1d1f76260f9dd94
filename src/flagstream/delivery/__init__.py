"""Event delivery: dispatchers, retry policy, batch processors (threads and asyncio).

The pipeline after the payload factory::

    process(user_event) ─▶ BatchCore (bounded queue) ─▶ delivery_plan ─▶ dispatcher ─▶ Event API
      caller's thread        no I/O, under a lock        serialize, retry,   HttpDispatcher /
                                                         bisect, dead-letter  AsyncHttpDispatcher

``BatchEventProcessor`` (threads) and ``AsyncBatchEventProcessor`` (asyncio)
are thin drivers over the same core and plan. ``ForwardingEventProcessor`` is
optimizely-sdk's synchronous one-request-per-event processor.
"""

from __future__ import annotations

from flagstream.delivery.aio import AsyncBatchEventProcessor
from flagstream.delivery.aio_http import AsyncHttpDispatcher
from flagstream.delivery.flushing import flushing
from flagstream.delivery.forwarding import ForwardingEventProcessor
from flagstream.delivery.http import HttpDispatcher
from flagstream.delivery.processor import BatchEventProcessor
from flagstream.delivery.protocols import (
    AsyncResultDispatcher,
    DeadLetterHandler,
    EventDispatcher,
    EventProcessor,
    ResultDispatcher,
)
from flagstream.delivery.result import DeliveryOutcome, DispatchResult, Verdict, classify
from flagstream.delivery.retry import RetryPolicy, parse_retry_after
from flagstream.delivery.settings import MAX_REQUEST_BYTES, BatchSettings
from flagstream.delivery.spool import EventSpool
from flagstream.delivery.stats import DROP_REASONS, DeliveryStats, FlushReport

__all__ = [
    "DROP_REASONS",
    "MAX_REQUEST_BYTES",
    "AsyncBatchEventProcessor",
    "AsyncHttpDispatcher",
    "AsyncResultDispatcher",
    "BatchEventProcessor",
    "BatchSettings",
    "DeadLetterHandler",
    "DeliveryOutcome",
    "DeliveryStats",
    "DispatchResult",
    "EventDispatcher",
    "EventProcessor",
    "EventSpool",
    "FlushReport",
    "ForwardingEventProcessor",
    "HttpDispatcher",
    "ResultDispatcher",
    "RetryPolicy",
    "Verdict",
    "classify",
    "flushing",
    "parse_retry_after",
]
