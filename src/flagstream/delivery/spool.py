"""The seam for a durable on-disk spool (the spool itself is a later issue).

A spool is one more answer to "the in-memory queue is full" and to "the
process may die before events are sent": events go to disk before
``process()`` returns, leave it only after a 2xx, and are replayed at start.
DESIGN.md fixes the intended implementation (SQLite in WAL mode, capped by
bytes and age with counted drops, shareable between processes).

How it will plug into :class:`~flagstream.delivery.processor.BatchEventProcessor`:

* ``overflow="spill"`` (or ``durable=True``) makes the driver call
  :meth:`EventSpool.put` where it now counts a ``queue_full`` drop
  (``BatchEventProcessor._refused``), or for every event;
* a worker with an empty queue calls :meth:`EventSpool.take` and delivers the
  batch through the same :func:`~flagstream.delivery.plan.delivery_plan`, then
  :meth:`EventSpool.ack` on settlement (delivered or dead-lettered) or
  :meth:`EventSpool.release` when it gives up (retried later);
* the spool reports its own drops (cap reached) through :meth:`EventSpool.take_dropped`
  so that ``stats()`` keeps counting every drop by reason.

Nothing here is used yet; the Protocol fixes the contract so the spool can be
written and tested on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from flagstream.events.user_event import UserEvent

__all__ = ["EventSpool", "SpooledBatch"]


class SpooledBatch(Protocol):
    """Events taken from a spool together, with the token that acknowledges them."""

    @property
    def token(self) -> object: ...

    @property
    def events(self) -> Sequence[UserEvent]: ...


@runtime_checkable
class EventSpool(Protocol):
    """Durable storage for user events waiting to be delivered (thread- and process-safe)."""

    def put(self, events: Sequence[UserEvent]) -> int:
        """Store ``events`` durably; returns how many were stored (the rest hit the cap)."""
        ...

    def take(self, max_events: int, max_bytes: int) -> SpooledBatch | None:
        """Lease the oldest stored events to one worker (invisible to others until released)."""
        ...

    def ack(self, batch: SpooledBatch) -> None:
        """The leased events are settled: delete them."""
        ...

    def release(self, batch: SpooledBatch) -> None:
        """Give the leased events back for a later attempt."""
        ...

    def take_dropped(self) -> dict[str, int]:
        """Events the spool dropped (cap, age) since the last call, by reason."""
        ...

    def close(self) -> None:
        """Flush and close the underlying storage."""
        ...
