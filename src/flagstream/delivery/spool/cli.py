"""``flagstream spool status|verify|drain DIR``: look into a spool directory, and empty it."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from flagstream.delivery.spool.inspect import DirectoryReport, inspect_directory

__all__ = ["add_commands"]


def add_commands(sub: Any, console: Any) -> None:
    """Register ``spool`` and its sub-commands on the top-level sub-parsers."""
    spool = sub.add_parser("spool", help="inspect, verify or drain a durable spool directory")
    actions = spool.add_subparsers(dest="spool_command", required=True, metavar="ACTION")
    p = actions.add_parser("status", help="events, bytes, oldest event, owners alive or dead, damage")
    p.add_argument("directory")
    p.set_defaults(func=lambda args: _status(args, console()))
    p = actions.add_parser("verify", help="check every record's checksum; exit 1 if anything is damaged")
    p.add_argument("directory")
    p.set_defaults(func=lambda args: _verify(args, console()))
    p = actions.add_parser("drain", help="deliver what stopped processes left in the directory")
    p.add_argument("directory")
    p.add_argument(
        "--endpoint", default=None, help="send here instead of each event's own Event API endpoint"
    )
    p.add_argument(
        "--timeout", type=float, default=600.0, help="give up after this many seconds (default 600)"
    )
    p.set_defaults(func=lambda args: _drain(args, console()))


def _report(args: argparse.Namespace) -> DirectoryReport | None:
    if not os.path.isdir(args.directory):
        print(f"flagstream: {args.directory}: not a directory")
        return None
    return inspect_directory(args.directory)


def _status(args: argparse.Namespace, console: Any) -> int:
    from rich.table import Table  # noqa: PLC0415 - the cli extra

    report = _report(args)
    if report is None:
        return 2
    table = Table(title=f"spool {report.directory}")
    for column in ("owner", "state", "segments", "events waiting", "bytes", "damaged"):
        table.add_column(column, justify="left" if column in ("owner", "state") else "right")
    for owner in report.owners:
        table.add_row(
            owner.owner,
            "alive" if owner.alive else "dead (adoptable)",
            str(len(owner.segments)),
            f"{owner.unsettled:,}",
            f"{sum(s.bytes for s in owner.segments):,}",
            str(sum(s.corrupt + (s.header_error is not None) for s in owner.segments)),
        )
    console.print(table)
    console.print(
        f"{report.unsettled:,} events waiting, {report.bytes:,} bytes, "
        f"oldest {report.age():.0f} s, {len(report.corrupt_files)} file(s) set aside as .corrupt"
    )
    return 0


def _verify(args: argparse.Namespace, console: Any) -> int:
    report = _report(args)
    if report is None:
        return 2
    for owner in report.owners:
        for segment in owner.segments:
            if segment.header_error:
                console.print(f"{segment.name}: unreadable: {segment.header_error}")
            elif segment.corrupt:
                tail = " (torn tail)" if segment.torn else ""
                console.print(f"{segment.name}: {segment.corrupt} damaged stretch(es){tail}")
    for name in report.corrupt_files:
        console.print(f"{name}: set aside earlier")
    events = sum(s.events for o in report.owners for s in o.segments)
    console.print(f"{events:,} intact events, {report.damaged} damaged record(s) or file(s)")
    return 1 if report.damaged else 0


def _drain(args: argparse.Namespace, console: Any) -> int:
    from rich.progress import Progress  # noqa: PLC0415 - the cli extra

    from flagstream.delivery.http import HttpDispatcher  # noqa: PLC0415
    from flagstream.delivery.processor import BatchEventProcessor  # noqa: PLC0415
    from flagstream.delivery.spool.redirect import RedirectingDispatcher  # noqa: PLC0415

    report = _report(args)
    if report is None:
        return 2
    waiting = sum(o.unsettled for o in report.owners if not o.alive)
    alive = [o.owner for o in report.owners if o.alive and o.unsettled]
    if alive:
        console.print(f"{len(alive)} owner(s) still running; their events are theirs to deliver")
    dispatcher = HttpDispatcher()
    sender = RedirectingDispatcher(dispatcher, args.endpoint) if args.endpoint else dispatcher
    processor = BatchEventProcessor(sender, spool=args.directory)
    deadline = time.monotonic() + args.timeout
    try:
        with Progress(console=console, transient=not console.is_terminal) as progress:
            task = progress.add_task("delivering", total=waiting)
            while time.monotonic() < deadline:
                stats = processor.stats()
                settled = stats.replayed + sum(stats.dropped.values())
                progress.update(task, completed=min(settled, waiting))
                if settled >= waiting and _dead_left(args.directory) == 0:
                    break
                time.sleep(0.2)
    finally:
        processor.close()
    stats = processor.stats()
    console.print(f"delivered {stats.replayed:,} of {waiting:,}; dropped {dict(stats.dropped) or 'none'}")
    left = _dead_left(args.directory)
    if left:
        console.print(f"{left:,} events still waiting (server unreachable? run drain again)")
    return 1 if left else 0


def _dead_left(directory: str) -> int:
    return sum(o.unsettled for o in inspect_directory(directory).owners if not o.alive)
