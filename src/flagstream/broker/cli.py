"""``flagstream forward``, ``flagstream forward status`` and ``flagstream dlq list|replay|drop``.

:func:`register` adds them to the main parser; redis is imported only when one
of them runs, so ``flagstream --help`` works without the ``broker`` extra.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from typing import Any

from flagstream.errors import ConfigurationError

__all__ = ["cmd_dlq", "cmd_forward", "cmd_forward_status", "register"]


def _redis_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--redis", default=os.environ.get("FLAGSTREAM_BROKER_URL"),
                   help="redis:// URL, standalone or Cluster (default $FLAGSTREAM_BROKER_URL)")  # fmt: skip
    p.add_argument(
        "--stream", default="flagstream:events", help="base stream name (default flagstream:events)"
    )
    p.add_argument("--shards", type=int, default=1, help="shard streams (default 1; as the producers use)")
    p.add_argument("--group", default="forwarders", help="consumer group (default forwarders)")


def register(sub: Any) -> None:
    """Add ``forward`` (with ``status``) and ``dlq`` to the ``flagstream`` sub-parsers."""
    p = sub.add_parser("forward", help="deliver events from Redis Streams to the Event API (one per core)")
    _redis_options(p)
    p.add_argument("--name", default=None, help="consumer name; stable across restarts (default host-pid)")
    p.add_argument("--endpoint", default=None, help="POST here instead of each request's own URL")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")
    p.add_argument("--window", type=int, default=50, help="entries per read (default 50)")
    p.add_argument("--block-ms", type=int, default=1000, help="longest blocking read (default 1000)")
    p.add_argument("--min-idle", type=float, default=60.0, help="seconds before peers reclaim an entry (60)")
    p.add_argument("--max-deliveries", type=int, default=5, help="dead-letter after this many deliveries (5)")
    p.add_argument("--retry-deadline", type=float, default=120.0, help="seconds of retries per body (120)")
    p.add_argument("--post-timeout", type=float, default=10.0, help="seconds per POST attempt (10)")
    p.add_argument("--shutdown-timeout", type=float, default=10.0, help="seconds from SIGTERM to exit (10)")
    p.add_argument("--trim-interval", type=float, default=5.0, help="seconds between trims of acked entries")
    p.add_argument("--janitor-interval", type=float, default=60.0, help="seconds between consumer clean-ups")
    p.add_argument(
        "--janitor-idle", type=float, default=3600.0, help="remove consumers idle this long (3600)"
    )
    p.add_argument("--metrics-port", type=int, default=None, help="serve /metrics and /healthz on this port")
    p.add_argument("--metrics-host", default="127.0.0.1", help="address of the metrics endpoint")
    p.add_argument("--no-live", action="store_true", help="no live view even in a terminal")
    p.set_defaults(func=cmd_forward)
    forward_sub = p.add_subparsers(dest="forward_command", metavar="status")
    s = forward_sub.add_parser("status", help="per shard: length, lag, pending, oldest age, consumers, DLQ")
    _redis_options(s)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_forward_status)

    p = sub.add_parser("dlq", help="list, replay or drop dead-lettered event requests")
    p.add_argument("action", choices=("list", "replay", "drop"))
    _redis_options(p)
    p.add_argument("--id", action="append", dest="ids", metavar="ID", help="only this entry (repeatable)")
    p.add_argument("--all", action="store_true", help="with drop: every dead letter")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_dlq)


def _connect(args: argparse.Namespace, block_ms: int = 0) -> Any:
    from flagstream.broker._client import connect  # noqa: PLC0415

    if not args.redis:
        raise ConfigurationError("give --redis URL (or set FLAGSTREAM_BROKER_URL)")
    return connect(args.redis, socket_timeout=5.0, block_ms=block_ms)


def _layout(args: argparse.Namespace) -> Any:
    from flagstream.broker.layout import StreamLayout  # noqa: PLC0415

    return StreamLayout(args.stream, args.shards)


def cmd_forward(args: argparse.Namespace) -> int:
    """Run one forwarder until SIGTERM/SIGINT; prints one JSON line of counters at exit."""
    from flagstream.broker.forwarder import Forwarder  # noqa: PLC0415
    from flagstream.broker.metrics import MetricsServer  # noqa: PLC0415
    from flagstream.broker.settings import ForwarderSettings, default_consumer_name  # noqa: PLC0415
    from flagstream.delivery.retry import RetryPolicy  # noqa: PLC0415

    try:
        settings = ForwarderSettings(
            stream=args.stream, shards=args.shards, group=args.group,
            name=args.name or default_consumer_name(), endpoint=args.endpoint,
            concurrency=args.concurrency, window=args.window, block_ms=args.block_ms,
            min_idle=args.min_idle, max_deliveries=args.max_deliveries,
            retry=RetryPolicy(max_attempts=1_000_000, deadline=args.retry_deadline, backoff_max=5.0),
            post_timeout=min(args.post_timeout, args.min_idle / 2), shutdown_timeout=args.shutdown_timeout,
            trim_interval=args.trim_interval, janitor_interval=args.janitor_interval,
            janitor_idle=args.janitor_idle, socket_timeout=max(5.0, args.block_ms / 1000 + 2),
        )  # fmt: skip
        client = _connect(args, settings.block_ms)
    except ConfigurationError as exc:
        print(f"flagstream forward: {exc}", file=sys.stderr)
        return 2
    forwarder = Forwarder(client, settings)
    for shard in forwarder.layout.all_shards():
        try:
            forwarder.ensure_group(shard)
        except Exception as exc:  # Redis not there yet: the workers keep trying
            forwarder.redis_failed(exc, "creating the consumer group")
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        forwarder.request_stop()
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = (
        MetricsServer(forwarder.metrics, args.metrics_port, args.metrics_host)
        if args.metrics_port is not None
        else None
    )
    live = None
    if sys.stdout.isatty() and not args.no_live:
        from flagstream.broker.live import LiveView  # noqa: PLC0415

        live = LiveView(forwarder.metrics, settings.name)
        live.start()
    forwarder.start()
    where = f", metrics on http://{args.metrics_host}:{server.port}/metrics" if server else ""
    print(
        f"flagstream forward: {settings.name} reading {settings.shards} shard(s) of {settings.stream}{where}",
        flush=True,
    )
    while not stop.wait(0.5):
        pass
    started = time.monotonic()
    finished = forwarder.wait()
    if live is not None:
        live.stop()
    if server is not None:
        server.close()
    summary = {"forwarder": settings.name, "finished_in_time": finished,
               "shutdown_seconds": round(time.monotonic() - started, 3), **forwarder.metrics.snapshot()}  # fmt: skip
    print(json.dumps(summary), flush=True)
    return 0 if finished else 1


def cmd_forward_status(args: argparse.Namespace) -> int:
    """Print each shard's status."""
    from flagstream.broker.status import status  # noqa: PLC0415

    try:
        rows = status(_connect(args), _layout(args), args.group)
    except ConfigurationError as exc:
        print(f"flagstream forward status: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"flagstream forward status: cannot read from Redis: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
        return 0
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=f"{args.stream} ({args.group})")
    for column in (
        "shard",
        "length",
        "lag",
        "pending",
        "oldest pending",
        "consumers",
        "dead letters",
        "lost to trim",
    ):
        table.add_column(column, justify="right")
    for r in rows:
        age = "-" if r.oldest_pending_age is None else f"{r.oldest_pending_age:.1f} s"
        lag = "?" if r.lag is None else str(r.lag)
        lost = r.lost_undelivered + r.lost_pending
        table.add_row(
            str(r.shard),
            str(r.length),
            lag,
            str(r.pending),
            age,
            str(r.consumers),
            str(r.dead_letters),
            str(lost),
        )
    Console().print(table)
    return 0


def cmd_dlq(args: argparse.Namespace) -> int:
    """List, replay or drop dead letters."""
    from flagstream.broker import dlq  # noqa: PLC0415

    try:
        client, layout = _connect(args), _layout(args)
        if args.action == "list":
            found = dlq.list_dead(client, layout)
            if args.json:
                print(json.dumps([d.as_dict() for d in found], indent=2))
            else:
                for d in found:
                    print(
                        f"shard {d.shard}  {d.id}  {d.events} event(s)  {d.reason}: {d.error}  (from {d.source})"
                    )
                print(f"{len(found)} dead letter(s)")
            return 0
        if args.action == "drop" and not args.ids and not args.all:
            print("flagstream dlq drop: give --id ID (repeatable) or --all", file=sys.stderr)
            return 2
        count = (dlq.replay if args.action == "replay" else dlq.drop)(client, layout, args.ids)
    except ConfigurationError as exc:
        print(f"flagstream dlq: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"flagstream dlq: cannot reach Redis: {exc}", file=sys.stderr)
        return 1
    verb = "replayed" if args.action == "replay" else "dropped"
    print(json.dumps({verb: count}) if args.json else f"{verb} {count} dead letter(s)")
    return 0
