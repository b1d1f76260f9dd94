"""Run one call script on two SDKs and compare everything observable.

An ``SdkFactory`` builds a client deterministically: a capturing dispatcher,
synchronous (forwarding) event processing, an in-memory user profile service
whose lookups and saves are recorded, notification listeners for ACTIVATE,
TRACK, DECISION, LOG_EVENT and OPTIMIZELY_CONFIG_UPDATE (registered before the
client is built), and a logger that swallows (it keeps logged tracebacks to
show, never to compare). ``run_script`` turns
every call into an ``Outcome`` of plain data; ``compare`` reports each field that
differs. Payload uuids and timestamps are checked (well-formed, unique, in the
call's time window) and then replaced by placeholders; client_name and
client_version are checked to be strings and dropped. Everything else must be
equal, value types included (``1`` is not ``1.0`` is not ``True``).
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import re
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scriptgen import Call, Ctx, Forced, Script

__all__ = [
    "FLAGSTREAM",
    "OPTIMIZELY",
    "CapturingDispatcher",
    "InMemoryUserProfileService",
    "Mismatch",
    "Outcome",
    "SdkFactory",
    "SwallowLogger",
    "compare",
    "compare_scripts",
    "flagstream_available",
    "locate",
    "run_script",
]

# ---------------------------------------------------------------------------
# deterministic collaborators (the same classes are given to both SDKs)


class SwallowLogger:
    """A logger both SDKs accept; it counts lines by level and keeps nothing else."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.exceptions: list[str] = []  # tracebacks logged with .exception(): shown, never compared

    def _count(self, level: str) -> None:
        self.counts[level] = self.counts.get(level, 0) + 1

    def log(self, level: int, *args: Any, **kwargs: Any) -> None:
        self._count(str(level))

    def debug(self, *args: Any, **kwargs: Any) -> None:
        self._count("debug")

    def info(self, *args: Any, **kwargs: Any) -> None:
        self._count("info")

    def warning(self, *args: Any, **kwargs: Any) -> None:
        self._count("warning")

    def error(self, *args: Any, **kwargs: Any) -> None:
        self._count("error")

    def exception(self, *args: Any, **kwargs: Any) -> None:
        self._count("exception")
        self.exceptions.append(f"{args[0] if args else ''} | {traceback.format_exc(limit=-3).strip()}")

    def critical(self, *args: Any, **kwargs: Any) -> None:
        self._count("critical")

    def isEnabledFor(self, level: int) -> bool:
        return False

    def getEffectiveLevel(self) -> int:
        return 100


class CapturingDispatcher:
    """Records every LogEvent handed to ``dispatch_event``."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def dispatch_event(self, log_event: Any) -> None:
        self.events.append(log_event)


class InMemoryUserProfileService:
    """lookup/save over a dict; copies in and out so no SDK can alias our store."""

    def __init__(self, profiles: Mapping[str, Any] | None = None) -> None:
        self.profiles: dict[Any, Any] = copy.deepcopy(dict(profiles or {}))
        self.raise_on_lookup = set(self.profiles.pop("__raise_on_lookup__", ()))
        self.raise_on_save = set(self.profiles.pop("__raise_on_save__", ()))
        self.ops: list[Any] = []

    def lookup(self, user_id: Any) -> Any:
        self.ops.append(["lookup", user_id])
        if isinstance(user_id, str) and user_id in self.raise_on_lookup:
            raise RuntimeError("profile store unavailable")
        return copy.deepcopy(self.profiles.get(user_id))

    def save(self, user_profile: Any) -> None:
        data = to_data(user_profile)
        self.ops.append(["save", data])
        user_id = user_profile.get("user_id") if isinstance(user_profile, Mapping) else None
        if isinstance(user_id, str) and user_id in self.raise_on_save:
            raise RuntimeError("profile store unavailable")
        if isinstance(user_profile, Mapping) and "user_id" in user_profile:
            self.profiles[user_profile["user_id"]] = copy.deepcopy(dict(user_profile))


@dataclass
class Recorder:
    """What one client run produces besides return values."""

    logger: SwallowLogger = field(default_factory=SwallowLogger)
    dispatcher: CapturingDispatcher = field(default_factory=CapturingDispatcher)
    ups: InMemoryUserProfileService | None = None
    notifications: list[Any] = field(default_factory=list)
    notification_reasons: list[Any] = field(default_factory=list)


# ---------------------------------------------------------------------------
# SDK factories


@dataclass(frozen=True)
class SdkFactory:
    """How to build one SDK's client for a script, and its forced-decision types."""

    name: str
    build: Callable[[Script, Recorder], Any]

    def decision_context(self, user: Any, ctx: Ctx) -> Any:
        cls = getattr(user, "OptimizelyDecisionContext", None) or _flagstream_attr(
            "OptimizelyDecisionContext"
        )
        return cls(ctx.flag_key, ctx.rule_key)

    def forced_decision(self, user: Any, forced: Forced) -> Any:
        cls = getattr(user, "OptimizelyForcedDecision", None) or _flagstream_attr("OptimizelyForcedDecision")
        return cls(forced.variation_key)


def _flagstream_attr(name: str) -> Any:
    import flagstream
    from flagstream import user_context

    value = getattr(flagstream, name, None)
    return value if value is not None else getattr(user_context.OptimizelyUserContext, name)


def _register_listeners(center: Any, types: Any, rec: Recorder) -> None:
    # ACTIVATE and TRACK hand listeners the log event as a dict (optimizely-sdk: LogEvent.__dict__)
    def on_activate(experiment: Any, user_id: Any, attributes: Any, variation: Any, event: Any) -> None:
        rec.notifications.append(
            [
                "ACTIVATE",
                entity_data(experiment),
                user_id,
                to_data(attributes),
                entity_data(variation),
                type(event).__name__,
                log_event_data(event),
            ]
        )

    def on_track(event_key: Any, user_id: Any, attributes: Any, event_tags: Any, event: Any) -> None:
        rec.notifications.append(
            [
                "TRACK",
                event_key,
                user_id,
                to_data(attributes),
                to_data(event_tags),
                type(event).__name__,
                log_event_data(event),
            ]
        )

    def on_decision(kind: Any, user_id: Any, attributes: Any, decision_info: Any) -> None:
        info = to_data(decision_info)
        reasons = info.pop("reasons", None) if isinstance(info, dict) else None
        rec.notifications.append(["DECISION", kind, user_id, to_data(attributes), info])
        rec.notification_reasons.append(reasons)

    def on_log_event(log_event: Any) -> None:
        rec.notifications.append(["LOG_EVENT", log_event_data(log_event)])

    center.add_notification_listener(types.ACTIVATE, on_activate)
    center.add_notification_listener(types.TRACK, on_track)
    center.add_notification_listener(types.DECISION, on_decision)

    def on_config_update(*args: Any) -> None:
        rec.notifications.append(["OPTIMIZELY_CONFIG_UPDATE", len(args)])

    center.add_notification_listener(types.LOG_EVENT, on_log_event)
    center.add_notification_listener(types.OPTIMIZELY_CONFIG_UPDATE, on_config_update)


def _build_optimizely(script: Script, rec: Recorder) -> Any:
    from optimizely import optimizely
    from optimizely.event.event_processor import ForwardingEventProcessor
    from optimizely.helpers.enums import NotificationTypes
    from optimizely.helpers.sdk_settings import OptimizelySdkSettings
    from optimizely.notification_center import NotificationCenter

    center = NotificationCenter(rec.logger)  # type: ignore[arg-type]
    _register_listeners(center, NotificationTypes, rec)  # before construction: it notifies a config update
    processor = ForwardingEventProcessor(rec.dispatcher, logger=rec.logger, notification_center=center)  # type: ignore[arg-type]
    return optimizely.Optimizely(
        datafile=script.datafile_text(),
        skip_json_validation=script.skip_json_validation,
        event_dispatcher=rec.dispatcher,
        logger=rec.logger,  # type: ignore[arg-type]
        user_profile_service=rec.ups,  # type: ignore[arg-type]
        notification_center=center,
        event_processor=processor,
        default_decide_options=copy.deepcopy(script.default_decide_options),
        settings=OptimizelySdkSettings(odp_disabled=True),  # ODP is out of scope; no threads
    )


def _build_flagstream(script: Script, rec: Recorder) -> Any:
    import flagstream
    from flagstream.notifications import NotificationCenter, NotificationTypes

    center = NotificationCenter(rec.logger)
    _register_listeners(center, NotificationTypes, rec)
    kwargs: dict[str, Any] = {}
    if "logger" in inspect.signature(flagstream.ForwardingEventProcessor).parameters:
        kwargs["logger"] = rec.logger
    processor = flagstream.ForwardingEventProcessor(rec.dispatcher, **kwargs)
    return flagstream.Optimizely(
        datafile=script.datafile_text(),
        skip_json_validation=script.skip_json_validation,
        event_dispatcher=rec.dispatcher,
        logger=rec.logger,
        user_profile_service=rec.ups,
        notification_center=center,
        event_processor=processor,
        default_decide_options=copy.deepcopy(script.default_decide_options),
    )


OPTIMIZELY = SdkFactory("optimizely-sdk", _build_optimizely)
FLAGSTREAM = SdkFactory("flagstream", _build_flagstream)


def flagstream_available() -> str | None:
    """``None`` when flagstream's client can be compared; otherwise why not."""
    try:
        import flagstream
    except Exception as exc:  # pragma: no cover - the package is always importable here
        return f"flagstream does not import: {exc!r}"
    missing = [n for n in ("Optimizely", "ForwardingEventProcessor") if not hasattr(flagstream, n)]
    return f"flagstream does not export {', '.join(missing)}" if missing else None


# ---------------------------------------------------------------------------
# plain data


def to_data(x: Any, depth: int = 0) -> Any:
    """A deep, plain copy: mappings become dicts, sequences lists; scalars keep their type."""
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if depth > 30:
        return "<too deep>"
    if isinstance(x, Mapping):
        return {k: to_data(v, depth + 1) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_data(v, depth + 1) for v in x]
    if isinstance(x, (bytes, complex, set, frozenset)):
        return {"__repr__": repr(x)}
    return object_data(x, depth + 1)


def object_data(x: Any, depth: int = 0) -> Any:
    """Public attributes of an object, recursively (class names differ between SDKs)."""
    names: set[str] = set()
    if hasattr(x, "__dict__"):
        names.update(vars(x))
    for cls in type(x).__mro__:
        names.update(getattr(cls, "__slots__", ()))
    out = {}
    for name in sorted(names):
        if name.startswith("_"):
            continue
        value = getattr(x, name, None)
        if callable(value):
            continue
        out[name] = to_data(value, depth + 1)
    return out


def entity_data(x: Any) -> Any:
    """An experiment or variation named in a notification: its id and key."""
    if x is None:
        return None
    get = x.get if isinstance(x, Mapping) else lambda n: getattr(x, n, None)
    return {"id": get("id"), "key": get("key")}


def log_event_data(x: Any) -> Any:
    if x is None:
        return None
    get = x.get if isinstance(x, Mapping) else lambda n: getattr(x, n, None)
    out = {
        "url": get("url"),
        "http_verb": get("http_verb"),
        "params": to_data(get("params")),
        "headers": to_data(get("headers")),
    }
    body = get("body")
    out["wire"] = _wire(body, out["params"])
    return out


def _wire(body: Any, params: Any) -> Any:
    """What the Event API would receive, parsed back (NaN survives only as the SDK sends it)."""
    try:
        if isinstance(body, (bytes, str)) and body:
            text = body.decode() if isinstance(body, bytes) else body
        else:
            text = json.dumps(params)  # what optimizely-sdk's dispatchers send
        return json.loads(text)
    except Exception as exc:
        return {"__unserializable__": type(exc).__name__}


# ---------------------------------------------------------------------------
# outcomes


@dataclass
class Outcome:
    """Everything one call produced on one SDK, as plain data."""

    value: Any = None
    reasons: Any = None
    raised: str | None = None
    events: list[Any] = field(default_factory=list)
    wire: list[Any] = field(default_factory=list)
    notifications: list[Any] = field(default_factory=list)
    notification_reasons: list[Any] = field(default_factory=list)
    ups: list[Any] = field(default_factory=list)
    args_after: Any = None
    problems: list[str] = field(default_factory=list)
    detail: str = ""  # exception text; not compared


FIELDS = (
    "raised",
    "value",
    "reasons",
    "events",
    "wire",
    "notifications",
    "notification_reasons",
    "ups",
    "args_after",
    "problems",
)


def decision_data(d: Any) -> tuple[Any, Any]:
    if d is None:
        return None, None
    user = getattr(d, "user_context", None)
    value = {
        "variation_key": to_data(getattr(d, "variation_key", None)),
        "enabled": to_data(getattr(d, "enabled", None)),
        "variables": to_data(getattr(d, "variables", None)),
        "rule_key": to_data(getattr(d, "rule_key", None)),
        "flag_key": to_data(getattr(d, "flag_key", None)),
        "user_context": None if user is None else user_data(user),
    }
    as_json = getattr(d, "as_json", None)
    value["as_json"] = to_data(as_json()) if callable(as_json) else "<no as_json()>"
    return value, to_data(getattr(d, "reasons", None))


def user_data(user: Any) -> Any:
    if user is None:
        return None
    return {"user_id": to_data(user.user_id), "attributes": to_data(user.get_user_attributes())}


def summarize(method: str, result: Any) -> tuple[Any, Any]:
    """(value, reasons) for a call's return value."""
    if method == "decide":
        return decision_data(result)
    if method in ("decide_for_keys", "decide_all"):
        if not isinstance(result, Mapping):
            return {"type": type(result).__name__, "data": to_data(result)}, None
        values, reasons = {}, {}
        for key, d in result.items():
            values[key], reasons[key] = decision_data(d)
        return {"type": type(result).__name__, "order": list(result), "decisions": values}, reasons
    if method == "create_user_context":
        return user_data(result), None
    if method == "get_forced_decision":
        return (None if result is None else {"variation_key": to_data(result.variation_key)}), None
    if method == "get_optimizely_config":
        if result is None:
            return None, None
        data = object_data(result)
        try:
            data["datafile"] = json.loads(result.get_datafile())
        except Exception as exc:
            data["datafile"] = f"<{type(exc).__name__}>"
        return data, None
    return {"type": type(result).__name__, "data": to_data(result)}, None


class _Normalizer:
    """Replaces payload uuids and timestamps after checking them."""

    def __init__(self, seen_uuids: set[str], t0: int, t1: int) -> None:
        self.seen = seen_uuids
        self.t0, self.t1 = t0, t1
        self.placeholders: dict[str, str] = {}
        self.problems: list[str] = []

    def params(self, params: Any, dispatched: bool) -> Any:
        if not isinstance(params, dict):
            self.problems.append(f"params is {type(params).__name__}")
            return params
        for name in ("client_name", "client_version"):
            if not isinstance(params.get(name), str) or not params.get(name):
                self.problems.append(f"{name} is {params.get(name)!r}")
            params.pop(name, None)
        local: set[str] = set()
        for visitor in params.get("visitors") or []:
            for snapshot in visitor.get("snapshots") or []:
                for event in snapshot.get("events") or []:
                    event["uuid"] = self.uuid(event.get("uuid"), local, dispatched)
                    event["timestamp"] = self.timestamp(event.get("timestamp"))
        return params

    def uuid(self, value: Any, local: set[str], dispatched: bool) -> str:
        if not isinstance(value, str):
            self.problems.append(f"uuid {value!r} is not a string")
            return "<bad uuid>"
        try:
            canonical = str(uuid.UUID(value))
        except ValueError:
            canonical = ""
        if canonical != value:
            self.problems.append(f"uuid {value!r} is not a canonical UUID")
        if value in local:
            self.problems.append(f"uuid {value} repeated inside one payload")
        local.add(value)
        if dispatched:
            if value in self.seen:
                self.problems.append(f"uuid {value} dispatched twice")
            self.seen.add(value)
        if value not in self.placeholders:
            self.placeholders[value] = f"<uuid{len(self.placeholders)}>"
        return self.placeholders[value]

    def timestamp(self, value: Any) -> str:
        if type(value) is not int:
            self.problems.append(f"timestamp {value!r} is not an int")
        elif not self.t0 - 2 <= value <= self.t1 + 2:
            self.problems.append(f"timestamp {value} outside the call [{self.t0}, {self.t1}]")
        return "<ts>"

    def log_event(self, data: Any, dispatched: bool) -> tuple[Any, Any]:
        if data is None:
            return None, None
        wire = data.pop("wire", None)
        data["params"] = self.params(data["params"], dispatched)
        if isinstance(wire, dict) and "__unserializable__" not in wire:
            # the same placeholders: uuids were registered by params above
            self_seen, self.seen = self.seen, set()
            wire = self.params(wire, dispatched=False)
            self.seen = self_seen
        return data, wire


def _resolve(factory: SdkFactory, target: Any, arg: Any) -> Any:
    if isinstance(arg, Ctx):
        return factory.decision_context(target, arg)
    if isinstance(arg, Forced):
        return factory.forced_decision(target, arg)
    return arg


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Run:
    """One script on one SDK."""

    sdk: str
    outcomes: list[Outcome]
    build_error: str | None = None
    init_notifications: list[Any] = field(default_factory=list)  # sent while the client was built


def run_script(factory: SdkFactory, script: Script) -> Run:
    """Build a fresh client and run every call of ``script`` on it."""
    rec = Recorder(ups=None if script.profiles is None else InMemoryUserProfileService(script.profiles))
    try:
        client = factory.build(script, rec)
    except Exception as exc:
        return Run(factory.name, [], f"{type(exc).__name__}: {exc}")
    init_notifications = list(rec.notifications)
    handles: dict[str, Any] = {}
    seen_uuids: set[str] = set()
    outcomes = []
    try:
        for call in script.calls:
            outcomes.append(_run_call(factory, client, handles, call, rec, seen_uuids))
    finally:
        close = getattr(client, "close", None)
        if callable(close):
            close()
    return Run(factory.name, outcomes, None, init_notifications)


def _run_call(
    factory: SdkFactory, client: Any, handles: dict[str, Any], call: Call, rec: Recorder, seen: set[str]
) -> Outcome:
    out = Outcome()
    target = client if call.target == "client" else handles.get(call.target)
    n_events, n_notes = len(rec.dispatcher.events), len(rec.notifications)
    n_ups = len(rec.ups.ops) if rec.ups else 0
    rec.notification_reasons.clear()
    n_exc = len(rec.logger.exceptions)
    args = copy.deepcopy(call.args)
    kwargs = copy.deepcopy(call.kwargs)
    before = to_data([args, kwargs])
    t0 = _now_ms()
    if target is None:
        out.raised = "<no user context>"
    else:
        try:
            resolved = [_resolve(factory, target, a) for a in args]
            result = getattr(target, call.method)(*resolved, **kwargs)
            out.value, out.reasons = summarize(call.method, result)
            if call.bind:
                handles[call.bind] = result
        except Exception as exc:
            out.raised = type(exc).__name__
            out.detail = f"{type(exc).__name__}: {exc}"
            if call.bind:
                handles[call.bind] = None
    t1 = _now_ms()
    logged = rec.logger.exceptions[n_exc:]
    if logged:
        out.detail = " || ".join([out.detail, *logged]) if out.detail else " || ".join(logged)
    after = to_data([args, kwargs])
    if not same(before, after):
        out.args_after = after
    norm = _Normalizer(seen, t0, t1)
    for event in rec.dispatcher.events[n_events:]:
        data, wire = norm.log_event(log_event_data(event), dispatched=True)
        out.events.append(data)
        out.wire.append(wire)
    for note in rec.notifications[n_notes:]:  # listeners stored fresh copies: normalize in place
        if note[0] in ("ACTIVATE", "TRACK", "LOG_EVENT"):
            note[-1], _ = norm.log_event(note[-1], dispatched=False)
        out.notifications.append(note)
    out.notification_reasons = list(rec.notification_reasons)
    if rec.ups:
        out.ups = rec.ups.ops[n_ups:]
    out.problems = norm.problems
    return out


# ---------------------------------------------------------------------------
# comparison


def same(a: Any, b: Any) -> bool:
    return first_diff(a, b) is None


def first_diff(a: Any, b: Any, path: str = "") -> str | None:
    """Where ``a`` and ``b`` first differ (``None`` when they are equal, types included)."""
    if type(a) is not type(b):
        return f"{path or '.'}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, float):
        if math.isnan(a) and math.isnan(b):
            return None
        if a != b or math.copysign(1, a) != math.copysign(1, b):
            return f"{path or '.'}: {a!r} vs {b!r}"
        return None
    if isinstance(a, dict):
        if a.keys() != b.keys():
            only_a = sorted(map(repr, a.keys() - b.keys()))
            only_b = sorted(map(repr, b.keys() - a.keys()))
            return f"{path or '.'}: keys only in first {only_a}, only in second {only_b}"
        for key in a:
            diff = first_diff(a[key], b[key], f"{path}.{key}")
            if diff:
                return diff
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path or '.'}: length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            diff = first_diff(x, y, f"{path}[{i}]")
            if diff:
                return diff
        return None
    if a != b:
        return f"{path or '.'}: {a!r} vs {b!r}"
    return None


def locate(a: Any, b: Any) -> tuple[str, Any, Any]:
    """The first differing path and the two values found there."""
    path = ""
    while True:
        if type(a) is not type(b):
            return path or ".", a, b
        if isinstance(a, dict) and a.keys() == b.keys():
            for key in a:
                if not same(a[key], b[key]):
                    path, a, b = f"{path}.{key}", a[key], b[key]
                    break
            else:
                return path or ".", a, b
        elif isinstance(a, list):
            for i, (x, y) in enumerate(zip(a, b, strict=False)):
                if not same(x, y):
                    if len(a) != len(b):  # show where the lists part ways, not the whole lists
                        return f"{path}[{i}:] (lengths {len(a)} vs {len(b)})", a[i : i + 2], b[i : i + 2]
                    path, a, b = f"{path}[{i}]", x, y
                    break
            else:
                n = min(len(a), len(b))
                return f"{path}[{n}:] (lengths {len(a)} vs {len(b)})", a[n:], b[n:]
        else:
            return path or ".", a, b


@dataclass
class Mismatch:
    """One field of one call that differs between the two SDKs."""

    seed: int
    index: int
    call: Call
    field: str
    where: str
    first: Any
    second: Any
    names: tuple[str, str]
    detail: tuple[str, str] = ("", "")
    raised: tuple[str | None, str | None] = (None, None)  # what each SDK raised on this call

    @property
    def signature(self) -> tuple[str, str, str]:
        """The class of disagreement: field, method and the differing path without indices."""
        where = re.sub(r"\[\d+\]", "[]", self.where.split(":")[0])
        where = re.sub(r"<uuid\d+>", "<uuid>", where)
        if self.call.method in ("decide_for_keys", "decide_all"):
            # the flag key is data, not the class of the difference
            where = re.sub(r"^\.decisions\.[^.\[]+", ".decisions.<flag>", where)
            if self.field == "reasons":
                where = re.sub(r"^\.[^.\[]+", ".<flag>", where)
        return (self.field, self.call.method, where)


def compare(script: Script, a: Run, b: Run) -> list[Mismatch]:
    """Every differing field of every call."""
    names = (a.sdk, b.sdk)
    if a.build_error or b.build_error:
        return [
            Mismatch(
                script.seed, -1, Call("client", "__init__"), "build", "", a.build_error, b.build_error, names
            )
        ]
    out = []
    if not same(a.init_notifications, b.init_notifications):
        construct = Call("client", "__init__")
        diff = first_diff(a.init_notifications, b.init_notifications) or ""
        out.append(
            Mismatch(
                script.seed, -1, construct, "init", diff, a.init_notifications, b.init_notifications, names
            )
        )
    for index, (x, y) in enumerate(zip(a.outcomes, b.outcomes, strict=False)):
        for name in FIELDS:
            vx, vy = getattr(x, name), getattr(y, name)
            if name == "problems":
                if vx or vy:
                    out.append(Mismatch(script.seed, index, script.calls[index], name, "", vx, vy, names))
                continue
            diff = first_diff(vx, vy)
            if diff:
                out.append(
                    Mismatch(
                        script.seed,
                        index,
                        script.calls[index],
                        name,
                        diff,
                        vx,
                        vy,
                        names,
                        (x.detail, y.detail),
                        (x.raised, y.raised),
                    )
                )
    return out


def compare_scripts(first: SdkFactory, second: SdkFactory, script: Script) -> tuple[int, list[Mismatch]]:
    """Run ``script`` on both SDKs: (number of compared calls, mismatches)."""
    a = run_script(first, script)
    b = run_script(second, script)
    return len(script.calls), compare(script, a, b)


def null_non_finite(node: Any) -> Any:
    """NaN and infinities as null, as flagstream sends them (a documented difference)."""
    if isinstance(node, float) and not math.isfinite(node):
        return None
    if isinstance(node, dict):
        return {k: null_non_finite(v) for k, v in node.items()}
    if isinstance(node, list):
        return [null_non_finite(v) for v in node]
    return node
