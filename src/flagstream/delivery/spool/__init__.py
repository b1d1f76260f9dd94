"""The durable spool: accepted events survive SIGKILL, restarts and long outages.

``BatchEventProcessor(spool="/var/lib/app/flagstream")`` (or
``event_processor_options={"spool": ...}``, or ``FLAGSTREAM_SPOOL_DIR``) writes
each event to an append-only segment file before ``process()`` returns and
delivers from there. The parts, in the order an event meets them:

* :mod:`~flagstream.delivery.spool.format`: segment header, framed records, acknowledgements (no I/O);
* :mod:`~flagstream.delivery.spool.spool`: :class:`EventSpool`, assembled from its state
  (:mod:`~flagstream.delivery.spool.state`), the caller's append
  (:mod:`~flagstream.delivery.spool.writer`) and the workers' windows
  (:mod:`~flagstream.delivery.spool.windows`), with :mod:`~flagstream.delivery.spool.mirror`
  (the events just written, kept in memory so the workers need not read them back);
* :mod:`~flagstream.delivery.spool.segment`: one segment's state and reading a window from it;
* :mod:`~flagstream.delivery.spool.keeper`: the background thread (sync, rotate, caps, re-probing),
  with :mod:`~flagstream.delivery.spool.adoption` (dead owners' files) and
  :mod:`~flagstream.delivery.spool.closing`;
* :mod:`~flagstream.delivery.spool.files`: names, owner locks, directory scans;
* :mod:`~flagstream.delivery.spool.options`: ``spool=`` and ``FLAGSTREAM_SPOOL_DIR``;
* :mod:`~flagstream.delivery.spool.inspect`, ``cli``, ``redirect``: ``flagstream spool status|verify|drain``.
"""

from __future__ import annotations

from flagstream.delivery.spool.segment import SpooledEvent
from flagstream.delivery.spool.spool import EventSpool, SpoolStats

__all__ = ["EventSpool", "SpoolStats", "SpooledEvent"]
