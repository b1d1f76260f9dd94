"""A producer process for the spool's crash and multi-process tests (run as a script, killed by the harness).

``python producer.py CONFIG_JSON`` builds an ``Optimizely`` client over a
datafile whose processor writes to a spool directory and sends to the
collector, then calls ``track``/``decide`` in a loop. It reports on stdout
(a pipe), one line per fact, each line written with one ``os.write`` so that
a SIGKILL never leaves half a line:

* ``owner <hex> <pid>``: the spool owner id, once the client is built;
* ``b <visitor>`` (``b <visitor> L`` when its event is large): a call for this
  (unique) visitor id is about to start;
* ``u <uuid> <visitor>``: the call returned and this event is on disk (the spool accepted it);
* ``m <uuid> <visitor>``: the call returned but the spool did not take the event (memory or cap);
* ``dropped <owner> <json>``: the spool's drops by reason so far, whenever they change;
* ``stats <json>``: after ``count`` calls: the processor closed, with its counters.

A producer dies with its parent (``PR_SET_PDEATHSIG``), and its loop is
bounded by ``count`` and ``deadline`` seconds even if nobody kills it.

``gunicorn --preload 'producer:wsgi_app()'`` serves the same client as a WSGI
app instead: built once in the master (spool from ``FLAGSTREAM_SPOOL_DIR``,
endpoint from ``FLAGSTREAM_TEST_ENDPOINT``), inherited by every forked worker;
``GET /?visitor=ID`` decides and tracks for that visitor and answers with the
worker's pid, its spool owner and the events as ``[uuid, on_disk]`` pairs.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import signal
import sys
import time
from typing import Any

from flagstream import Optimizely
from flagstream.delivery.processor import BatchEventProcessor
from flagstream.delivery.retry import RetryPolicy
from flagstream.events.ids import format_uuid

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the loop's deadline still ends the process


def _say(line: str) -> None:
    os.write(1, line.encode("ascii") + b"\n")


class ReportingProcessor(BatchEventProcessor):
    """Remembers each event's uuid and whether the spool accepted it, for the loop to report."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.returned: list[tuple[str, bool]] = []

    def process(self, user_event: Any) -> None:
        spool = self.spool
        before = spool.accepted if spool is not None else 0
        super().process(user_event)
        on_disk = spool is not None and spool.accepted > before
        self.returned.append((format_uuid(user_event.uuid), on_disk))


def main(config: dict[str, Any]) -> int:
    _die_with_parent()
    rng = random.Random(config.get("seed", 0))
    name = str(config.get("name", f"p{os.getpid()}"))
    processor = ReportingProcessor(
        batch_size=int(config.get("batch_size", 20)),
        flush_interval=float(config.get("flush_interval", 0.05)),
        max_in_flight=int(config.get("max_in_flight", 4)),
        retry=RetryPolicy(max_attempts=10_000, backoff_base=0.02, backoff_max=0.25, deadline=3600.0),
        spool=dict(config["spool"]),
        close_timeout=float(config.get("close_timeout", 10.0)),
    )
    with open(config["datafile"], "rb") as file:
        datafile = file.read()
    client = Optimizely(datafile, event_processor=processor, event_endpoint=config["endpoint"])
    spool = processor.spool
    assert spool is not None
    _say(f"owner {spool.owner} {os.getpid()}")
    count = int(config.get("count", 1_000_000))
    deadline = time.monotonic() + float(config.get("deadline", 60.0))
    large_every = int(config.get("large_every", 0))
    large_bytes = int(config.get("large_bytes", 100_000))
    dropped = 0
    for n in range(count):
        if time.monotonic() > deadline:
            break
        visitor = f"{name}-{n}"
        attributes: dict[str, Any] = {"country": rng.choice(["US", "DE", "FR"]), "age": rng.randint(18, 90)}
        large = large_every > 0 and rng.randrange(large_every) == 0
        if large:
            attributes["app_version"] = "v" + "x" * rng.randint(large_bytes // 2, large_bytes)
        _say(f"b {visitor} L" if large else f"b {visitor}")
        if rng.random() < 0.5:
            client.track("purchase", visitor, attributes, {"revenue": rng.randint(1, 10_000)})
        else:
            client.create_user_context(visitor, attributes).decide("banner")
        for uuid, on_disk in processor.returned:
            _say(f"{'u' if on_disk else 'm'} {uuid} {visitor}")
        processor.returned.clear()
        with spool._lock:  # the keeper and the workers add to it meanwhile
            drops = dict(spool.dropped)
        if sum(drops.values()) != dropped:  # said at once: this process may be killed next
            dropped = sum(drops.values())
            _say(f"dropped {spool.owner} " + json.dumps(drops))
    report = client.close(float(config.get("close_timeout", 10.0)))
    stats = processor.stats()
    _say(
        "stats "
        + json.dumps(
            {
                "spooled": getattr(report, "spooled", None),
                "delivered": stats.delivered,
                "dropped": dict(stats.dropped),
                "replayed": spool.replayed,
            }
        )
    )
    return 0


def wsgi_app() -> Any:
    """The WSGI app for gunicorn; the client is built here, in the master under ``--preload``."""
    processor = ReportingProcessor(
        batch_size=20,
        flush_interval=0.05,
        retry=RetryPolicy(max_attempts=10_000, backoff_base=0.02, backoff_max=0.25, deadline=3600.0),
    )
    with open(os.environ["FLAGSTREAM_TEST_DATAFILE"], "rb") as file:
        client = Optimizely(
            file.read(), event_processor=processor, event_endpoint=os.environ["FLAGSTREAM_TEST_ENDPOINT"]
        )

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        query = dict(part.partition("=")[::2] for part in environ.get("QUERY_STRING", "").split("&") if part)
        visitor = query.get("visitor", "anonymous")
        user = client.create_user_context(visitor, {"country": "US"})
        user.decide("banner")
        user.track_event("purchase", {"revenue": 100})
        events, processor.returned = processor.returned, []
        spool = processor.spool
        body = json.dumps(
            {"pid": os.getpid(), "owner": spool.owner if spool is not None else None, "events": events}
        ).encode("ascii")
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return app


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
