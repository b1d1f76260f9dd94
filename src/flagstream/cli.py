"""The ``flagstream`` command: ``demo``, ``collector``, ``decide``, ``validate``, ``spool``, ``version``.

``python -m flagstream`` runs the same. Commands a person watches (``demo``,
``collector``, ``decide``) print with rich; ``validate`` prints one plain line
per problem so it can be grepped and used in CI. Exit codes: 0 success,
1 the check failed (invalid datafile, events missing), 2 usage errors.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from flagstream._version import __version__

__all__ = ["build_parser", "main", "parse_attribute"]


def parse_attribute(text: str) -> tuple[str, str | int | float | bool]:
    """``key=value`` with the value typed: ``true``/``false``, integers and decimals, else a string.

    >>> parse_attribute("visits=7"), parse_attribute("is_member=true"), parse_attribute("country=DE")
    (('visits', 7), ('is_member', True), ('country', 'DE'))
    """
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    if raw in ("true", "false"):
        return key, raw == "true"
    for kind in (int, float):
        try:
            return key, kind(raw)
        except ValueError:
            pass
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return key, raw[1:-1]  # "007" keeps its quotes off and stays a string
    return key, raw


def _console(stderr: bool = False) -> Any:
    try:
        from rich.console import Console  # noqa: PLC0415 - optional: the cli extra
    except ImportError:
        sys.stderr.write("this command needs the cli extra: pip install 'flagstream[cli]'\n")
        raise SystemExit(2) from None
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        console = Console(stderr=stderr, highlight=False, width=max(console.width, 120))  # logs, CI, pipes
    return console


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


# -- version ------------------------------------------------------------------------------------


def cmd_version(args: argparse.Namespace) -> int:
    """Print the flagstream version, its build (compiled or pure Python) and the Python version."""
    from flagstream import _build  # noqa: PLC0415

    print(f"flagstream {__version__}, {_build.BUILD} build (Python {platform.python_version()})")
    return 0


# -- validate -----------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    """Print every problem of a datafile with its JSON path; exit 1 when there is any."""
    from flagstream import _json  # noqa: PLC0415
    from flagstream.config.validation import check_version, validate_datafile_text  # noqa: PLC0415
    from flagstream.errors import UnsupportedDatafileVersionError  # noqa: PLC0415

    try:
        data = _read(args.file)
    except OSError as exc:
        print(f"{args.file}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return 2
    errors = validate_datafile_text(data)
    if not errors:
        parsed = _json.loads(data.removeprefix(b"\xef\xbb\xbf"))
        try:
            check_version(parsed)
        except UnsupportedDatafileVersionError as exc:
            errors = [f"version: {exc}"]
    if errors:
        for error in errors:
            print(f"{args.file}: {error}")
        print(f"{args.file}: {len(errors)} problem{'s' if len(errors) != 1 else ''}", file=sys.stderr)
        return 1
    counts = ", ".join(
        f"{len(parsed.get(k) or [])} {label}"
        for k, label in (("featureFlags", "flags"), ("experiments", "experiments"), ("groups", "groups"),
                         ("rollouts", "rollouts"), ("audiences", "audiences"), ("events", "events"))
    )  # fmt: skip
    print(f"{args.file}: valid (version {parsed['version']}, revision {parsed['revision']}: {counts})")
    return 0


# -- decide -------------------------------------------------------------------------------------


class _NoDispatch:
    """``decide`` inspects; it never sends events."""

    def dispatch_event(self, log_event: object) -> None:
        return None


def cmd_decide(args: argparse.Namespace) -> int:
    """Decide every flag (or ``--flag`` ones) for one user and print the decisions."""
    from flagstream import _json  # noqa: PLC0415
    from flagstream.client import Optimizely  # noqa: PLC0415
    from flagstream.config.validation import validate_datafile_text  # noqa: PLC0415

    try:
        data = _read(args.datafile)
    except OSError as exc:
        print(f"{args.datafile}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return 2
    errors = validate_datafile_text(data)
    if errors:
        for error in errors:
            print(f"{args.datafile}: {error}", file=sys.stderr)
        return 1
    attributes = dict(args.attr or [])
    options = ["DISABLE_DECISION_EVENT"] + (["INCLUDE_REASONS"] if args.reasons else [])
    client = Optimizely(data.decode("utf-8-sig"), event_dispatcher=_NoDispatch())
    try:
        user = client.create_user_context(args.user, attributes)
        if user is None:
            print("could not create a user context (see the log)", file=sys.stderr)
            return 1
        decisions = user.decide_for_keys(args.flag, options) if args.flag else user.decide_all(options)
    finally:
        client.close(1.0)
    if args.json:
        out = [{k: v for k, v in d.as_json().items() if k != "user_context"} for d in decisions.values()]
        print(_json.dumps({"user_id": args.user, "attributes": attributes, "decisions": out}).decode())
        return 0
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    console = _console()
    table = Table(title=f"Decisions for {args.user!r}", title_justify="left")
    for column in ("flag", "enabled", "variation", "rule", "variables"):
        table.add_column(column)
    for key, d in decisions.items():
        table.add_row(
            Text(key),
            Text("on", style="green") if d.enabled else Text("off", style="dim"),
            Text(d.variation_key or "—"),
            Text(d.rule_key or "—"),
            Text(_json.dumps(d.variables).decode() if d.variables else ""),
        )
    console.print(table)
    if args.reasons:
        for key, d in decisions.items():
            for reason in d.reasons:
                console.print(Text(f"{key}: {reason}", style="dim"))
    return 0


# -- collector ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _until_signal() -> Iterator[threading.Event]:
    """Install SIGINT/SIGTERM handlers that set the yielded event (before anything says "Ctrl-C")."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _describe(faults: Any) -> str:
    parts = []
    if faults.fail_rate:
        retry = f" with Retry-After {faults.retry_after_header()}" if faults.retry_after is not None else ""
        parts.append(f"{faults.fail_rate:.0%} of requests answered {faults.status}{retry}")
    if faults.reset_rate:
        parts.append(f"{faults.reset_rate:.0%} of connections reset")
    if faults.latency:
        parts.append(f"{faults.latency * 1000:.0f} ms added to every answer")
    return "; ".join(parts) + (f" (seed {faults.seed})" if faults.seed is not None else "")


def _status_line(collector: Any) -> str:
    snap = collector.state.snapshot()
    responses = snap["responses"]
    by_status = " ".join(f"{code or 'reset'}:{n:,}" for code, n in sorted(responses.items()))
    return (
        f"[bold]{snap['events_stored']:,}[/] events stored · {snap['duplicates']:,} duplicates · "
        f"requests {by_status or '0'} · {snap['payload_errors']:,} rejected"
    )


def _wait(stop: threading.Event, console: Any = None, collector: Any = None) -> None:
    """Wait for the stop signal; on a terminal, keep a live status line of the collector."""
    if console is None or collector is None or not console.is_terminal:
        while not stop.wait(0.5):
            pass
        return
    from rich.live import Live  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    with Live(Text.from_markup(_status_line(collector)), console=console, auto_refresh=False) as live:
        while not stop.wait(0.5):
            live.update(Text.from_markup(_status_line(collector)), refresh=True)


def cmd_collector(args: argparse.Namespace) -> int:
    """Run the collector until Ctrl-C or SIGTERM."""
    from flagstream.collector import Collector, FaultConfig  # noqa: PLC0415
    from flagstream.errors import ConfigurationError  # noqa: PLC0415

    console = _console()
    try:
        faults = FaultConfig(
            fail_rate=args.fail_rate,
            status=args.status,
            retry_after=args.retry_after,
            latency=args.latency,
            reset_rate=args.reset_rate,
            seed=args.seed,
        )
        collector = Collector(
            args.host,
            args.port,
            db=args.db,
            faults=faults,
            token=args.token,
            decode_workers=args.decode_workers,
        )
        collector.start()
    except (ConfigurationError, OSError) as exc:
        print(f"flagstream collector: {exc}", file=sys.stderr)
        return 2
    try:
        with _until_signal() as stop:
            console.print(f"[bold]flagstream collector[/] listening on [cyan]{collector.url}[/]")
            console.print(f"  events:  POST {collector.events_url}")
            console.print(
                f"  results: {collector.url}/   (JSON: /api/results, /api/events; /metrics, /healthz)"
            )
            console.print(f"  storage: {args.db}")
            if args.token:
                console.print(
                    "  read APIs need: Authorization: Bearer <token> (or ?token=<token> in a browser)"
                )
            if faults.is_active:
                console.print(f"  [yellow]faults:[/] {_describe(faults)}")
            console.print("Ctrl-C to stop.")
            sys.stdout.flush()
            _wait(stop, console, collector)
    finally:
        collector.stop()
    console.print(f"stopped; {collector.event_count():,} events stored in {args.db}")
    return 0


# -- demo ---------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the whole pipeline on this machine and print the delivery summary and results."""
    console = _console()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    from flagstream.demo.render import results_table, summary_table  # noqa: PLC0415
    from flagstream.demo.run import Demo, DemoOptions  # noqa: PLC0415

    options = DemoOptions(users=args.users, faults=args.faults, seed=args.seed, port=args.port)
    with Demo(options) as demo:
        console.print(f"[bold]flagstream demo[/]: collector on [cyan]{demo.collector.url}[/]"
                      + (" with faults (500s, then 429s with Retry-After, then latency)" if args.faults else ""))  # fmt: skip
        progress = Progress(
            TextColumn("[bold]simulating shoppers"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[delivery]}"),
            TimeElapsedColumn(),
            console=console,
        )
        with progress:
            task = progress.add_task("users", total=options.users, delivery="")

            def on_progress(done: int, stats: Any) -> None:
                delivered = getattr(stats, "delivered", 0)
                queued = getattr(stats, "queued_events", 0)
                progress.update(task, completed=done, delivery=f"delivered {delivered:,} · queued {queued:,}")

            summary = demo.run(on_progress)
        console.print(summary_table(summary))
        console.print(results_table(demo.results(), args.metric))
        console.print(f"Results page: [cyan]{summary.url}[/]")
        if args.keep:
            with _until_signal() as stop:
                console.print("--keep: the collector keeps running; Ctrl-C to stop.")
                sys.stdout.flush()
                _wait(stop, console, demo.collector)
    return 0 if summary.ok else 1


# -- wiring -------------------------------------------------------------------------------------


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("a port is 0-65535 (0: any free port)")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="flagstream", description="Feature flags and experiments, locally.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="simulate a shop end to end against a local collector")
    p.add_argument("--users", type=_positive, default=20_000, help="shoppers to simulate (default 20000)")
    p.add_argument("--faults", action="store_true", help="make the collector answer 500s, 429s and slowly")
    p.add_argument("--keep", action="store_true", help="keep the collector running after the summary")
    p.add_argument("--seed", type=int, default=7, help="random seed of the simulation")
    p.add_argument("--port", type=_port, default=0, help="collector port (default: a free one)")
    p.add_argument("--metric", default="purchase", help="event key of the results table (default purchase)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("collector", help="run a local Event API collector with a results page")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8090, help="port (default 8090; 0: any free one)")
    p.add_argument("--db", default="flagstream-events.db", help="SQLite file, or :memory:")
    p.add_argument("--fail-rate", type=float, default=0.0, help="share of requests to fail (0-1)")
    p.add_argument("--status", type=int, default=500, help="status of failed requests (default 500)")
    p.add_argument("--retry-after", type=float, default=None, help="Retry-After seconds on failures")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    p.add_argument("--reset-rate", type=float, default=0.0, help="share of connections to reset unanswered")
    p.add_argument("--seed", type=int, default=None, help="seed of the fault draws")
    p.add_argument("--token", default=None, help="bearer token required on the read APIs and the page")
    p.add_argument(
        "--decode-workers",
        type=_non_negative,
        default=2,
        help="processes that decode large bodies, so ingest uses more than one core (default 2; 0: none)",
    )
    p.set_defaults(func=cmd_collector)

    p = sub.add_parser("decide", help="decide flags for one user from a datafile (sends no events)")
    p.add_argument("--datafile", required=True, help="datafile path, or - for stdin")
    p.add_argument("--user", required=True, help="user id")
    p.add_argument("--attr", action="append", type=parse_attribute, metavar="KEY=VALUE",
                   help="user attribute (repeatable); true/false and numbers are typed")  # fmt: skip
    p.add_argument("--flag", action="append", metavar="KEY", help="decide only this flag (repeatable)")
    p.add_argument("--reasons", action="store_true", help="print the decision reasons")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_decide)

    p = sub.add_parser("validate", help="check a datafile; print every problem with its JSON path")
    p.add_argument("file", help="datafile path, or - for stdin")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=cmd_version)

    from flagstream.delivery.spool.cli import add_commands as add_spool_commands  # noqa: PLC0415

    add_spool_commands(sub, _console)

    from flagstream.broker.cli import register as register_broker  # noqa: PLC0415 (imports no redis)

    register_broker(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``flagstream`` command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
