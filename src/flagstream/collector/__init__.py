"""A local Event-API-compatible collector: see what an application sends, and test dispatchers.

``POST /v1/events`` validates and stores Event API batches (de-duplicated on
uuid, entity_id and timestamp) in SQLite; ``GET /api/events``,
``GET /api/results``, ``GET /`` (results page), ``/healthz`` and ``/metrics``
read them back. :class:`FaultConfig` makes it fail, slow down or reset
connections on purpose.
"""

from __future__ import annotations

from flagstream.collector.faults import FaultConfig
from flagstream.collector.handler import EVENTS_PATH, MAX_BODY_BYTES
from flagstream.collector.server import Collector

__all__ = ["EVENTS_PATH", "MAX_BODY_BYTES", "Collector", "FaultConfig"]
