"""Seeded users, attributes, event tags and call scripts for the differential tests.

A ``Script`` is a client set-up (datafile, default decide options, user-profile
store) plus a list of public ``Call``s; the harness runs it on each SDK. Inputs
are drawn near the values the datafile's conditions test (so audiences match
and just miss) and include the awkward ones: None, NaN, inf, integers beyond
2^53, bools where numbers belong, nested containers, unicode, ``$opt_`` keys,
wrong-typed arguments. Everything is a function of the seed.
"""

from __future__ import annotations

import decimal
import enum
import fractions
import json
import math
import random
from dataclasses import dataclass, field, replace
from typing import Any

from gen import (
    DECIDE_OPTIONS,
    DEFAULT_KNOBS,
    NUMBERS,
    SEMVERS,
    STRINGS,
    TWO53,
    Knobs,
    datafile_json,
    generate_datafile,
)

__all__ = [
    "INVALID_DATAFILES",
    "Call",
    "Ctx",
    "Forced",
    "Script",
    "generate_invalid_script",
    "generate_script",
    "script_strategy",
]

# ---------------------------------------------------------------------------
# users, attributes, event tags


def _wrong_typed(rng: random.Random, exotic: bool = False) -> Any:
    return rng.choice(
        [
            None,
            math.nan,
            math.inf,
            -math.inf,
            2**64,
            -(2**60),
            TWO53 + 1,
            True,
            False,
            {"nested": [1, 2]},
            [1, "a"],
            (1, 2),
            b"bytes",
            1 + 2j,
            "",
            "😀",
        ]
        + (EXOTIC if exotic else [])
    )


def _exotic() -> list[Any]:
    """Numbers and strings users pass that are not the builtin types."""
    return [
        _Level.HIGH,
        _Colour.RED,
        decimal.Decimal("1.5"),
        fractions.Fraction(1, 3),
        _Float(2.5),
        _Str("sub"),
    ]


class _Level(enum.IntEnum):
    HIGH = 3


class _Colour(str, enum.Enum):
    RED = "red"


class _Float(float):
    pass


class _Str(str):
    pass


EXOTIC = _exotic()


class _InputGen:
    def __init__(self, rng: random.Random, datafile: dict[str, Any], knobs: Knobs) -> None:
        self.rng = rng
        self.df = datafile
        self.knobs = knobs
        self.attr_keys = [a["key"] for a in datafile.get("attributes", [])]
        self.values: dict[str, list[Any]] = {}
        for aud in datafile.get("audiences", []) + datafile.get("typedAudiences", []):
            conds = aud["conditions"]
            if isinstance(conds, str):
                conds = json.loads(conds)
            self._collect(conds)
        self.user_ids = [f"user_{i}" for i in range(40)] + [
            "",
            "whitelisted",
            "ユーザー",
            "😀 emoji",
            "0",
            " ",
        ]
        if knobs.nasty_user_ids:
            self.user_ids.append("bad\ud800surrogate")
        exps = self.all_experiments()
        for exp in exps:
            self.user_ids.extend(exp.get("forcedVariations", {}).keys())

    def _collect(self, node: Any) -> None:
        if isinstance(node, dict):
            name = node.get("name")
            if isinstance(name, str):
                self.values.setdefault(name, []).append(node.get("value"))
        elif isinstance(node, list):
            for child in node:
                self._collect(child)

    def all_experiments(self) -> list[dict[str, Any]]:
        exps = list(self.df.get("experiments", []))
        for group in self.df.get("groups", []):
            exps.extend(group["experiments"])
        return exps

    def near(self, value: Any) -> Any:
        """A value that hits, just misses, or mistypes a condition value."""
        rng = self.rng
        if isinstance(value, bool):
            return rng.choice([value, not value, int(value), str(value).lower()])
        if isinstance(value, (int, float)):
            return rng.choice(
                [value, value + 1, value - 1, float(value), value * 2, -value, str(value), True, math.nan]
            )
        if isinstance(value, str):
            if value and value[0].isdigit():  # maybe a version
                return rng.choice(
                    [
                        value,
                        value + ".1",
                        value + "-beta",
                        value + "+b",
                        "1.2.3",
                        "2.0",
                        "0.1",
                        value + ".0.0",
                    ]
                )
            return rng.choice([value, value.upper(), "prefix" + value + "suffix", value[:1], "", 5])
        return value

    def attribute_value(self, key: str) -> Any:
        rng = self.rng
        seen = self.values.get(key)
        roll = rng.random()
        if seen and roll < 0.6:
            return self.near(rng.choice(seen))
        if roll < 0.8:
            return rng.choice(STRINGS + NUMBERS + [True, False] + SEMVERS[:6])
        if self.knobs.wrong_types:
            return _wrong_typed(rng, self.knobs.exotic_types)
        return rng.choice(STRINGS)

    def attributes(self) -> Any:
        rng = self.rng
        roll = rng.random()
        if roll < 0.06:
            return None
        if self.knobs.wrong_types and roll < 0.1:
            return rng.choice([[("age", 1)], "age=1", 5, _DictSubclass(age=30)])
        keys = (
            self.attr_keys
            + list(self.values)
            + ["undeclared", "ünï_key", "$opt_bucketing_id", "$opt_user_agent"]
        )
        attrs: dict[Any, Any] = {}
        for key in rng.sample(keys, min(len(keys), rng.randrange(0, 7))):
            if key == "$opt_bucketing_id":
                attrs[key] = rng.choice([f"bucket_{rng.randrange(30)}", "", 123, None])
            elif key == "$opt_user_agent":
                attrs[key] = rng.choice(["Googlebot/2.1", "Mozilla/5.0", 7])
            else:
                attrs[key] = self.attribute_value(key)
        if self.knobs.wrong_types and rng.random() < 0.03:
            attrs[7] = "int key"
        return attrs

    def user_id(self) -> Any:
        if self.knobs.wrong_types and self.rng.random() < 0.02:
            return self.rng.choice([None, 42, ["u"]])
        return self.rng.choice(self.user_ids)

    def event_tags(self) -> Any:
        rng = self.rng
        roll = rng.random()
        if roll < 0.15:
            return None
        if self.knobs.wrong_types and roll < 0.19:
            return rng.choice([[1, 2], "revenue=1", 3])
        tags: dict[str, Any] = {}
        if rng.random() < 0.5:
            tags["revenue"] = rng.choice(
                [
                    1000,
                    0,
                    -5,
                    10.5,
                    "100",
                    True,
                    None,
                    TWO53 + 5,
                    2**70,
                    42,
                    [1],
                    math.nan if self.knobs.nan_in_tags else 1,
                ]
            )
        if rng.random() < 0.5:
            value_pool: list[Any] = [1, 2.5, "3.5", "1,234", True, None, [1], -0.0, 1e308, "abc", TWO53 + 1]
            if self.knobs.nan_in_tags:
                value_pool += [math.nan, math.inf, "nan", "-inf"]
            tags["value"] = rng.choice(value_pool)
        for _ in range(rng.randrange(0, 3)):
            key: Any = rng.choice(["category", "ünï", "id", "nested", "flag", ""])
            if self.knobs.odd_tag_keys and rng.random() < 0.1:
                key = rng.choice(
                    [1, 2.5, True, None]
                )  # json.dumps turns these into "1", "2.5", "true", "null"
            tags[key] = rng.choice(["shoes", 7, 1.5, None, {"a": [1, {"b": "c"}]}, True, "😀"])
        return tags


class _DictSubclass(dict):  # type: ignore[type-arg]
    """``type(attributes) is dict`` is False for this: optimizely-sdk treats it as invalid."""


# ---------------------------------------------------------------------------
# scripts


@dataclass(frozen=True)
class Ctx:
    """A forced-decision context, built with the SDK's own class at call time."""

    flag_key: Any
    rule_key: Any = None


@dataclass(frozen=True)
class Forced:
    """A forced decision (variation key), built with the SDK's own class at call time."""

    variation_key: Any


@dataclass(frozen=True)
class Call:
    """One public call. ``target`` is ``"client"`` or a user-context handle (``"u3"``)."""

    target: str
    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    bind: str | None = None  # handle that receives the return value (create_user_context)

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        prefix = "client" if self.target == "client" else self.target
        bound = f"{self.bind} = " if self.bind else ""
        return f"{bound}{prefix}.{self.method}({', '.join(parts)})"


@dataclass(frozen=True)
class Script:
    """Client set-up plus the calls to run on it."""

    seed: int
    datafile: dict[str, Any]
    calls: tuple[Call, ...]
    default_decide_options: Any = None
    profiles: dict[str, Any] | None = None  # user profile service contents; None: no service
    knobs: Knobs = DEFAULT_KNOBS
    raw_datafile: str | None = None  # given instead of ``datafile`` (invalid-datafile scripts)
    skip_json_validation: bool = False

    def with_calls(self, calls: tuple[Call, ...]) -> Script:
        return replace(self, calls=calls)

    def datafile_text(self) -> str:
        """The exact text both SDKs are given."""
        return self.raw_datafile if self.raw_datafile is not None else datafile_json(self.datafile)


def _flag_keys(df: dict[str, Any]) -> list[str]:
    return [f["key"] for f in df.get("featureFlags", [])]


def _options(rng: random.Random, knobs: Knobs) -> Any:
    roll = rng.random()
    if roll < 0.2:
        return None
    if knobs.wrong_types and roll < 0.24:
        return rng.choice(["INCLUDE_REASONS", ("INCLUDE_REASONS",), 5, {"INCLUDE_REASONS": 1}])
    opts = rng.sample(DECIDE_OPTIONS, rng.randrange(0, 4))
    if rng.random() < 0.5 and "INCLUDE_REASONS" not in opts:
        opts.append("INCLUDE_REASONS")
    if rng.random() < 0.05:
        opts.append("NOT_AN_OPTION")
    if rng.random() < 0.05 and opts:
        opts.append(opts[0])  # duplicates
    return opts


class _ScriptGen:
    def __init__(self, seed: int, datafile: dict[str, Any], knobs: Knobs) -> None:
        self.rng = random.Random(seed * 7919 + 1)
        self.df = datafile
        self.knobs = knobs
        self.inputs = _InputGen(self.rng, datafile, knobs)
        exps = self.inputs.all_experiments()
        self.exp_keys = [e["key"] for e in exps]
        self.rule_keys = [r["key"] for ro in datafile.get("rollouts", []) for r in ro["experiments"]]
        self.variation_keys = {e["key"]: [v["key"] for v in e["variations"]] for e in exps}
        for ro in datafile.get("rollouts", []):
            for r in ro["experiments"]:
                self.variation_keys[r["key"]] = [v["key"] for v in r["variations"]]
        self.flag_keys = _flag_keys(datafile)
        self.holdout_keys = [
            h["key"] for h in datafile.get("holdouts", []) + datafile.get("localHoldouts", [])
        ]
        self.rule_ids = [r["id"] for ro in datafile.get("rollouts", []) for r in ro["experiments"]]
        self.event_keys = [e["key"] for e in datafile.get("events", [])]
        self.variables = {
            f["key"]: [(v["key"], v["type"], v.get("subType")) for v in f["variables"]]
            for f in datafile.get("featureFlags", [])
        }
        rollouts = {r["id"]: r for r in datafile.get("rollouts", [])}
        all_exps = {e["id"]: e for e in exps}
        self.flag_rules: dict[str, list[str]] = {}
        self.flag_variations: dict[str, list[str]] = {}
        for flag in datafile.get("featureFlags", []):
            rules = [all_exps[i] for i in flag["experimentIds"] if i in all_exps]
            if flag["rolloutId"] in rollouts:
                rules += rollouts[flag["rolloutId"]]["experiments"]
            self.flag_rules[flag["key"]] = [r["key"] for r in rules]
            self.flag_variations[flag["key"]] = [v["key"] for r in rules for v in r["variations"]]
        self.handles: list[str] = []

    def pick(self, pool: list[Any], unknown: str = "no_such_key") -> Any:
        rng = self.rng
        roll = rng.random()
        if self.knobs.wrong_types and roll < 0.03:
            return rng.choice([None, 12, "", ["k"]])
        if roll < 0.08 or not pool:
            return unknown
        return rng.choice(pool)

    def experiment_key(self) -> Any:
        pool = self.exp_keys + (self.rule_keys if self.rng.random() < 0.2 else [])
        if self.holdout_keys and self.rng.random() < 0.03:
            pool = self.holdout_keys  # holdouts are not experiments: optimizely-sdk does not find them
        return self.pick(pool, "no_such_experiment")

    def client_call(self) -> Call:
        rng = self.rng
        inp = self.inputs
        kind = rng.choices(
            [
                "activate",
                "get_variation",
                "track",
                "is_feature_enabled",
                "get_enabled_features",
                "get_feature_variable",
                "get_all_feature_variables",
                "set_forced_variation",
                "get_forced_variation",
                "create_user_context",
                "get_optimizely_config",
            ],
            weights=[14, 8, 10, 10, 3, 12, 5, 5, 4, 12, 0.3],
        )[0]
        if kind in ("activate", "get_variation"):
            return Call("client", kind, (self.experiment_key(), inp.user_id(), inp.attributes()))
        if kind == "track":
            args: tuple[Any, ...] = (self.pick(self.event_keys, "no_such_event"), inp.user_id())
            roll = rng.random()
            if roll < 0.1:
                return Call("client", kind, args)
            if roll < 0.2:
                return Call("client", kind, args, {"event_tags": inp.event_tags()})
            return Call("client", kind, (*args, inp.attributes(), inp.event_tags()))
        if kind == "is_feature_enabled":
            return Call("client", kind, (self.pick(self.flag_keys), inp.user_id(), inp.attributes()))
        if kind == "get_enabled_features":
            return Call("client", kind, (inp.user_id(), inp.attributes()))
        if kind == "get_feature_variable":
            flag = self.pick(self.flag_keys)
            variables = self.variables.get(flag, []) if isinstance(flag, str) else []
            var_key, vtype = ("no_such_variable", "string")
            if variables and rng.random() < 0.92:
                var_key, vtype, _ = rng.choice(variables)
            elif self.knobs.wrong_types and rng.random() < 0.2:
                var_key = rng.choice([None, 3, ""])
            method = "get_feature_variable"
            roll = rng.random()
            if roll < 0.6:
                method = f"get_feature_variable_{vtype}"
            elif roll < 0.8:
                method = "get_feature_variable_" + rng.choice(
                    ["boolean", "double", "integer", "string", "json"]
                )
            if rng.random() < 0.05:
                vtype = "json"
            return Call("client", method, (flag, var_key, inp.user_id(), inp.attributes()))
        if kind == "get_all_feature_variables":
            return Call("client", kind, (self.pick(self.flag_keys), inp.user_id(), inp.attributes()))
        if kind == "set_forced_variation":
            exp = self.experiment_key()
            variations = self.variation_keys.get(exp, []) if isinstance(exp, str) else []
            roll = rng.random()
            if roll < 0.15:
                var: Any = None
            elif roll < 0.25 or not variations:
                var = rng.choice(
                    ["no_such_variation", "", 5] if self.knobs.wrong_types else ["no_such_variation"]
                )
            else:
                var = rng.choice(variations)
            return Call("client", kind, (exp, inp.user_id(), var))
        if kind == "get_forced_variation":
            return Call("client", kind, (self.experiment_key(), inp.user_id()))
        if kind == "create_user_context":
            handle = f"u{len(self.handles)}"
            self.handles.append(handle)
            if rng.random() < 0.3:
                return Call("client", kind, (inp.user_id(),), bind=handle)
            return Call("client", kind, (inp.user_id(), inp.attributes()), bind=handle)
        return Call("client", "get_optimizely_config")

    def ctx(self) -> Ctx:
        rng = self.rng
        flag = self.pick(self.flag_keys)
        rules = self.flag_rules.get(flag, []) if isinstance(flag, str) else []
        roll = rng.random()
        if roll < 0.35 or not rules:
            return Ctx(flag, None)
        if roll < 0.4:
            return Ctx(flag, "no_such_rule")
        return Ctx(flag, rng.choice(rules))

    def user_call(self) -> Call:
        rng = self.rng
        handle = rng.choice(self.handles)
        kind = rng.choices(
            [
                "decide",
                "decide_for_keys",
                "decide_all",
                "track_event",
                "set_attribute",
                "set_forced_decision",
                "get_forced_decision",
                "remove_forced_decision",
                "remove_all_forced_decisions",
                "get_user_attributes",
                "as_json",
            ],
            weights=[30, 10, 8, 6, 5, 8, 3, 3, 1, 2, 1],
        )[0]
        if kind == "decide":
            return Call(handle, kind, (self.pick(self.flag_keys), _options(rng, self.knobs)))
        if kind == "decide_for_keys":
            keys = [self.pick(self.flag_keys) for _ in range(rng.randrange(0, 4))]
            if not self.knobs.unhashable_keys:
                keys = [k for k in keys if not isinstance(k, list)]
            return Call(handle, kind, (keys, _options(rng, self.knobs)))
        if kind == "decide_all":
            return Call(handle, kind, (_options(rng, self.knobs),))
        if kind == "track_event":
            return Call(handle, kind, (self.pick(self.event_keys, "no_such_event"), self.inputs.event_tags()))
        if kind == "set_attribute":
            keys = [*self.inputs.attr_keys, "$opt_bucketing_id", "undeclared"]
            key = rng.choice(keys) if keys else "undeclared"
            return Call(handle, kind, (key, self.inputs.attribute_value(key)))
        if kind == "set_forced_decision":
            ctx = self.ctx()
            pool = self.flag_variations.get(ctx.flag_key, []) if isinstance(ctx.flag_key, str) else []
            return Call(handle, kind, (ctx, Forced(self.pick(pool, "no_such_variation"))))
        if kind in ("get_forced_decision", "remove_forced_decision"):
            return Call(handle, kind, (self.ctx(),))
        return Call(handle, kind)

    def profiles(self) -> dict[str, Any] | None:
        rng = self.rng
        if rng.random() < 0.3:
            return None
        exps = self.inputs.all_experiments()
        profiles: dict[str, Any] = {}
        for user in rng.sample(self.inputs.user_ids, min(6, len(self.inputs.user_ids))):
            bucket_map: dict[str, Any] = {}
            if self.rule_ids and rng.random() < 0.2:
                # a stored decision for a rollout rule: optimizely-sdk never consults profiles for rollouts
                rule = rng.choice(self.rule_ids)
                bucket_map[rule] = {"variation_id": rng.choice(["no_such_variation", rule])}
            for exp in rng.sample(exps, min(len(exps), rng.randrange(0, 3))):
                roll = rng.random()
                if roll < 0.7 and exp["variations"]:
                    bucket_map[exp["id"]] = {"variation_id": rng.choice(exp["variations"])["id"]}
                elif roll < 0.85:
                    bucket_map[exp["id"]] = {"variation_id": "no_such_variation"}
                else:
                    bucket_map[exp["id"]] = {}
            profile: dict[str, Any] = {"user_id": user, "experiment_bucket_map": bucket_map}
            roll = rng.random()
            if roll < 0.05:
                del profile["experiment_bucket_map"]
            elif self.knobs.broken_profiles and roll < 0.1:
                profile["experiment_bucket_map"] = {"123": "not a dict"}
            profiles[user] = profile
        if rng.random() < 0.25:
            # a service that fails or answers garbage for some users
            users = self.inputs.user_ids
            profiles["__raise_on_lookup__"] = rng.sample(users, 3)
            profiles["__raise_on_save__"] = rng.sample(users, 3)
            profiles[rng.choice(users)] = rng.choice(["garbage", [], {"user_id": "x"}, 5])
        return profiles

    def build(self, n_calls: int) -> tuple[list[Call], Any, dict[str, Any] | None]:
        rng = self.rng
        default_options = None
        roll = rng.random()
        if roll < 0.15:
            default_options = rng.sample(DECIDE_OPTIONS, rng.randrange(1, 3))
        elif self.knobs.wrong_types and roll < 0.18:
            default_options = "INCLUDE_REASONS"
        profiles = self.profiles()
        calls: list[Call] = []
        while len(calls) < n_calls:
            if self.handles and rng.random() < 0.45:
                calls.append(self.user_call())
            else:
                calls.append(self.client_call())
        return calls, default_options, profiles


INVALID_DATAFILES = {
    "unsupported version": lambda df: {**df, "version": "5"},
    "truncated JSON": lambda df: datafile_json(df)[: len(datafile_json(df)) // 2],
    "not JSON": lambda df: "<html>503</html>",
    "missing projectId": lambda df: {k: v for k, v in df.items() if k != "projectId"},
    "experiments is an object": lambda df: {**df, "experiments": {}},
    "endOfRange is a string": lambda df: {
        **df,
        "experiments": [
            {
                **e,
                "trafficAllocation": [
                    {**t, "endOfRange": str(t["endOfRange"])} for t in e["trafficAllocation"]
                ],
            }
            for e in df["experiments"]
        ]
        or [
            {
                "id": "1",
                "key": "e",
                "status": "Running",
                "layerId": "2",
                "variations": [],
                "audienceIds": [],
                "forcedVariations": {},
                "trafficAllocation": [{"entityId": "", "endOfRange": "10"}],
            }
        ],
    },
    "empty string": lambda df: "",
}


def generate_invalid_script(
    seed: int, kind: str, n_calls: int = 60, knobs: Knobs = DEFAULT_KNOBS, skip_json_validation: bool = False
) -> Script:
    """A script whose datafile optimizely-sdk rejects (``kind`` names the defect)."""
    df = generate_datafile(seed, version="4", knobs=knobs)
    broken = INVALID_DATAFILES[kind](df)
    raw = broken if isinstance(broken, str) else datafile_json(broken)
    calls, default_options, profiles = _ScriptGen(seed, df, knobs).build(n_calls)
    return Script(
        seed,
        df,
        tuple(calls),
        default_options,
        profiles,
        knobs,
        raw_datafile=raw,
        skip_json_validation=skip_json_validation,
    )


def generate_script(
    seed: int,
    n_calls: int = 200,
    *,
    version: str | None = None,
    knobs: Knobs = DEFAULT_KNOBS,
    datafile: dict[str, Any] | None = None,
) -> Script:
    """A datafile plus ``n_calls`` public calls, all determined by ``seed``."""
    df = datafile if datafile is not None else generate_datafile(seed, version=version, knobs=knobs)
    calls, default_options, profiles = _ScriptGen(seed, df, knobs).build(n_calls)
    return Script(seed, df, tuple(calls), default_options, profiles, knobs)


# ---------------------------------------------------------------------------


def script_strategy(n_calls: int = 60, knobs: Knobs = DEFAULT_KNOBS) -> Any:
    """A hypothesis strategy of scripts (datafile + calls); imported lazily."""
    from hypothesis import strategies as st

    return st.integers(min_value=0, max_value=2**31).map(lambda s: generate_script(s, n_calls, knobs=knobs))
