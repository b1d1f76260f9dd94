"""What both processors do with a spool's windows: build their requests and settle them.

``BatchEventProcessor`` (threads) and ``AsyncBatchEventProcessor`` (tasks) drive
the same delivery plan over windows taken from an
:class:`~flagstream.delivery.spool.EventSpool`; this module is the part they
share, so a spooled event is settled the same way whichever drives it.
"""

from __future__ import annotations

from collections.abc import Sequence

from flagstream._logging import LoggerLike
from flagstream.delivery.core import BatchCore
from flagstream.delivery.plan import Settle
from flagstream.delivery.spool.segment import SpooledEvent
from flagstream.delivery.spool.spool import EventSpool, SpoolWindow
from flagstream.events.log_event import LogEvent
from flagstream.events.payload import log_event_from_visitors

__all__ = ["KEPT_IN_SPOOL", "from_visitors", "log_kept", "settle_window"]

#: Reasons for which a window's events stay on disk (sent again later, or by the next process).
KEPT_IN_SPOOL = frozenset({"retry_exhausted", "shutdown"})


def from_visitors(events: Sequence[SpooledEvent]) -> LogEvent:
    """One request from spooled events of one context: the bytes the caller wrote."""
    return log_event_from_visitors(events[0].context, [event.visitor for event in events])


def settle_window(spool: EventSpool, core: BatchCore, window: SpoolWindow, action: Settle) -> bool:
    """Record ``action`` for events of ``window``; whether they stay in the spool.

    The caller holds its processor's lock, so that a flush sees the spool's count
    and the processor's change together. Retries that ran out and a close that
    ends the wait are not drops: the events are safe on disk.
    """
    keep = not action.delivered and action.reason in KEPT_IN_SPOOL
    kept = action.items if keep else ()
    spool.settle(window, action.events, delivered=action.delivered, keep=kept)  # type: ignore[arg-type]
    if keep and window.segment.removed_for is not None:
        keep = False  # its segment was dropped meanwhile: the spool counted them under that reason
    if action.delivered:
        if window.own:
            core.delivered += action.events
    elif not keep:
        reason = action.reason or "internal_error"
        core.dropped[reason] = core.dropped.get(reason, 0) + action.events
    return keep


def log_kept(logger: LoggerLike, action: Settle) -> None:
    """The warning for events that were not delivered yet and stay in the spool."""
    error = action.result.error if action.result else None
    logger.warning(
        "flagstream: %d event(s) not delivered yet (%s: %s); they stay in the spool",
        action.events,
        action.reason,
        error,
    )
