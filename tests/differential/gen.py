"""Seeded datafile generator for the differential tests (users and call scripts: scriptgen.py).

Everything here is a pure function of a seed (``random.Random``), so a failing case
is reproduced from one integer. Datafiles are valid for optimizely-sdk 5.7 (they pass
its JSON schema) and cover every feature the decision path reads: experiment
statuses, traffic allocation with empty slices and gaps, random and overlapping
groups, whitelisting, legacy and typed audiences, ``audienceConditions`` trees,
every match type, feature tests, rollouts, ``fr``/``td`` experiment types, global
and local holdouts, variables of every type, and the project-level switches.

``Knobs`` turns the rarer, nastier corners on or off; the defaults are what the
main differential test uses.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_KNOBS",
    "Knobs",
    "datafile_json",
    "datafile_strategy",
    "generate_datafile",
]

# ---------------------------------------------------------------------------
# knobs


@dataclass(frozen=True)
class Knobs:
    """Which corners the generators reach into."""

    # datafile
    missing_audience_ids: bool = True  # audience ids that no audience defines (the SDK says UNKNOWN)
    dangling_traffic_ids: bool = False  # trafficAllocation entityIds that name no variation
    non_numeric_variation_ids: bool = True  # the payload normalizer nulls these
    unknown_condition_kinds: bool = True  # unknown match types / condition types
    qualified_conditions: bool = True  # ODP segments ("qualified"): ODP is out of scope
    invalid_variable_values: bool = True  # "4.5" for an integer, broken JSON, ...
    huge_json_numbers: bool = True  # ints beyond 64 bits, 1e400, NaN inside JSON variable values
    infinite_numbers: bool = True  # 1e400 as a condition value in the datafile itself
    lowercase_region: bool = True  # "eu" instead of "EU"
    local_holdout_without_rules: bool = True  # dropped (with an error) by optimizely-sdk
    # users / calls
    nasty_user_ids: bool = False  # lone surrogates: both SDKs' hashing raises on them
    broken_profiles: bool = True  # profiles whose bucket map holds non-dicts: optimizely-sdk raises
    unhashable_keys: bool = False  # lists inside decide_for_keys keys: optimizely-sdk raises
    nan_in_tags: bool = True  # NaN/inf inside event tags (not valid JSON on the wire)
    wrong_types: bool = True  # None / ints / lists where keys and ids belong
    odd_tag_keys: bool = True  # non-string event tag keys (1, 2.5, True, None)
    exotic_types: bool = True  # IntEnum, str-Enum, Decimal, Fraction, float/str subclasses as values


DEFAULT_KNOBS = Knobs()

STATUSES = ["Running", "Running", "Running", "Running", "Launched", "Paused", "Not started", "Archived"]
HOLDOUT_STATUSES = ["Running", "Running", "Running", "Draft", "Concluded", "Archived"]
MATCHES = [
    "exact",
    "exists",
    "substring",
    "gt",
    "ge",
    "lt",
    "le",
    "semver_eq",
    "semver_gt",
    "semver_ge",
    "semver_lt",
    "semver_le",
    None,  # no "match": legacy exact
]
SEMVERS = [
    "1.2.3",
    "1.2",
    "2",
    "1.2.3-beta",
    "1.2.3-beta.2",
    "1.2.3+build.7",
    "1.2.3-rc.1+build.1",
    "1.10.0",
    "0.9.9",
    "3.0.0-alpha",
    "1.2.3.4",
    "1..2",
    " 1.2",
    "a.b.c",
    "1.2.x",
    "",
    "10",
    "1.2.3-",
]
TWO53 = 2**53
NUMBERS: list[Any] = [
    0,
    1,
    -1,
    5,
    17,
    42,
    99,
    100,
    2.5,
    -3.75,
    0.0,
    1e-9,
    1000000,
    TWO53,
    TWO53 - 1,
    TWO53 + 1,
    -TWO53,
    -TWO53 - 1,
    9007199254740992.0,
    9007199254740994.0,
    1.5e300,
]
STRINGS = [
    "",
    "a",
    "en",
    "fr",
    "US",
    "us",
    "chrome",
    "firefox",
    "Mozilla/5.0",
    "ünï",
    "日本",
    "😀",
    "x y",
    "0",
]
VARIABLE_TYPES = ["boolean", "integer", "double", "string", "json", "json-string"]
DECIDE_OPTIONS = [
    "DISABLE_DECISION_EVENT",
    "ENABLED_FLAGS_ONLY",
    "IGNORE_USER_PROFILE_SERVICE",
    "INCLUDE_REASONS",
    "EXCLUDE_VARIABLES",
]


# ---------------------------------------------------------------------------
# datafile


class _Ids:
    """Unique ids: numeric strings, occasionally opaque."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.next = rng.randrange(10_000, 90_000) * 1000
        self.used: set[str] = set()

    def numeric(self) -> str:
        self.next += self.rng.randrange(1, 50)
        value = str(self.next)
        if self.rng.random() < 0.03:
            value = "0" + value  # leading zero: still numeric for the normalizer
        self.used.add(value)
        return value

    def opaque(self, prefix: str) -> str:
        self.next += self.rng.randrange(1, 50)
        value = f"{prefix}{self.next}"
        self.used.add(value)
        return value


class _DatafileGen:
    def __init__(self, seed: int, version: str | None, knobs: Knobs) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.knobs = knobs
        rng = self.rng
        self.version = version or rng.choices(["4", "3", "2"], weights=[85, 8, 7])[0]
        self.ids = _Ids(rng)
        self.keys: set[str] = set()
        self.attributes: list[dict[str, str]] = []
        self.attr_values: dict[str, list[Any]] = {}
        self.audiences: list[dict[str, Any]] = []
        self.typed_audiences: list[dict[str, Any]] = []
        self.audience_ids: list[str] = []
        self.all_rule_ids: list[str] = []
        # a number beyond any limit: inf is written as the (valid JSON) literal 1e400
        self.too_big = math.inf if knobs.infinite_numbers else 1e308
        # some files concentrate on holdouts that exclude targeted deliveries
        self.holdout_focus = self.version == "4" and self.chance(0.15)

    # -- helpers
    def key(self, prefix: str) -> str:
        while True:
            base = f"{prefix}_{self.rng.randrange(1000)}"
            if self.rng.random() < 0.04:
                base = f"{prefix}_ü{self.rng.randrange(100)}"
            if base not in self.keys:
                self.keys.add(base)
                return base

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    # -- attributes and audiences
    def make_attributes(self) -> None:
        names = [
            "age",
            "country",
            "browser",
            "app_version",
            "score",
            "is_vip",
            "plan",
            "big",
            "ratio",
            "tier",
        ]
        self.rng.shuffle(names)
        for name in names[: self.rng.randrange(4, len(names) + 1)]:
            self.attributes.append({"id": self.ids.numeric(), "key": name})
        if self.chance(0.3):
            self.attributes.append({"id": self.ids.numeric(), "key": "ünicode_ключ"})
        if self.chance(0.2):
            # a declared attribute with the reserved prefix: sent by id, with a warning
            self.attributes.append({"id": self.ids.numeric(), "key": "$opt_declared"})

    def condition_value(self, match: str | None) -> Any:
        rng = self.rng
        if match in (None, "exact"):
            kind = rng.random()
            if kind < 0.35:
                return rng.choice(STRINGS)
            if kind < 0.7:
                return rng.choice(NUMBERS)
            if kind < 0.9:
                return rng.choice([True, False])
            return (
                rng.choice([None, [1], {"a": 1}, self.too_big]) if self.knobs.unknown_condition_kinds else 1
            )
        if match == "exists":
            return rng.choice([None, "x", 1])
        if match == "substring":
            return rng.choice(STRINGS) if rng.random() < 0.9 else rng.choice([5, None, True])
        if match in ("gt", "ge", "lt", "le"):
            return rng.choice(NUMBERS) if rng.random() < 0.9 else rng.choice(["5", None, True, self.too_big])
        if match.startswith("semver"):
            return rng.choice(SEMVERS) if rng.random() < 0.93 else rng.choice([1, 1.2, None, True])
        if match == "qualified":
            return rng.choice(["seg_a", "seg_b", 3])
        return rng.choice(STRINGS + NUMBERS)

    def leaf(self) -> dict[str, Any]:
        rng = self.rng
        attr_keys = [a["key"] for a in self.attributes] + ["undeclared_attr", "$opt_dummy_attribute"]
        name = rng.choice(attr_keys)
        match = rng.choice(MATCHES)
        cond_type = "custom_attribute"
        if self.knobs.unknown_condition_kinds and self.chance(0.04):
            match = rng.choice(["regex", "EXACT", "contains"])
        if self.knobs.unknown_condition_kinds and self.chance(0.04):
            cond_type = rng.choice(["third_party_dimension", "unknown_type"])
        if self.knobs.qualified_conditions and self.chance(0.05):
            match, cond_type, name = "qualified", "third_party_dimension", "odp.audiences"
        value = self.condition_value(match)
        self.attr_values.setdefault(name, []).append(value)
        leaf: dict[str, Any] = {"name": name, "type": cond_type, "value": value}
        if match is not None:
            leaf["match"] = match
        if self.chance(0.05):
            del leaf["value"]  # no value at all: exists still works, the rest say UNKNOWN
        return leaf

    def tree(self, depth: int, leaf_fn: Any) -> Any:
        rng = self.rng
        if depth <= 0 or self.chance(0.3):
            return leaf_fn()
        op = rng.choice(["and", "or", "or", "not"])
        n = 1 if op == "not" and self.chance(0.8) else rng.randrange(1, 4)
        children = [self.tree(depth - 1, leaf_fn) for _ in range(n)]
        if self.chance(0.08) and not any(isinstance(c, list) for c in children):
            # no operator: implicit OR (never around a bare sub-list: optimizely-sdk's
            # OptimizelyConfig builder crashes on that shape, which exports never contain)
            return children
        return [op, *children]

    def make_audiences(self) -> None:
        rng = self.rng
        for _ in range(rng.randrange(2, 8)):
            aid = self.ids.numeric()
            name = f"aud {aid}"
            tree = self.tree(3, self.leaf)
            if not isinstance(tree, list):
                tree = ["or", tree]
            if self.version == "4" and self.chance(0.5):
                # typed audience; legacy twin with the dummy condition, as Optimizely exports them
                typed_conditions = tree
                if self.chance(0.1):
                    typed_conditions = self.leaf()  # a single leaf, not a list
                self.typed_audiences.append({"id": aid, "name": name, "conditions": typed_conditions})
                if self.chance(0.8):
                    dummy = [
                        "or",
                        {
                            "match": "exact",
                            "name": "$opt_dummy_attribute",
                            "type": "custom_attribute",
                            "value": "$opt_dummy_value",
                        },
                    ]
                    self.audiences.append({"id": aid, "name": name, "conditions": json.dumps(dummy)})
            else:
                self.audiences.append({"id": aid, "name": name, "conditions": json.dumps(tree)})
            self.audience_ids.append(aid)

    def audience_ref(self) -> str:
        if self.knobs.missing_audience_ids and self.chance(0.08):
            return "99" + str(self.rng.randrange(10**6))
        return self.rng.choice(self.audience_ids)

    def targeting(self, rule: dict[str, Any]) -> None:
        rng = self.rng
        kind = rng.random()
        if kind < 0.35:
            rule["audienceIds"] = []
        elif kind < 0.6 or self.version != "4":
            rule["audienceIds"] = [self.audience_ref() for _ in range(rng.randrange(1, 3))]
        else:
            rule["audienceIds"] = [self.audience_ref()]
            cond = self.tree(3, self.audience_ref)
            if not isinstance(cond, list):
                cond = rng.choice([[cond], ["or", cond], ["and", cond]])
            rule["audienceConditions"] = cond
            if self.chance(0.05):
                rule["audienceConditions"] = []

    # -- experiments
    def allocation(self, entity_ids: list[str], full: bool) -> list[dict[str, Any]]:
        """Increasing endOfRange slices with empty slices and gaps."""
        rng = self.rng
        slices: list[dict[str, Any]] = []
        end = 0
        candidates = list(entity_ids)
        if self.knobs.dangling_traffic_ids and self.chance(0.1):
            candidates.append(self.ids.numeric())
        for entity in candidates:
            if self.chance(0.12):
                end = min(10000, end + rng.randrange(0, 2500))
                slices.append({"entityId": "", "endOfRange": end})
            end = min(10000, end + rng.randrange(0, 6000))
            slices.append({"entityId": entity, "endOfRange": end})
        if full and candidates and self.chance(0.6):
            slices[-1]["endOfRange"] = 10000
        if self.chance(0.05):
            slices.append({"entityId": rng.choice(candidates) if candidates else "", "endOfRange": 10000})
        if self.chance(0.03):
            slices = []
        return slices

    def variation(self, variables: list[dict[str, Any]] | None, feature: bool) -> dict[str, Any]:
        if self.knobs.non_numeric_variation_ids and self.chance(0.06):
            vid = self.ids.opaque(self.rng.choice(["var_", "v-", " "]))
        else:
            vid = self.ids.numeric()
        var: dict[str, Any] = {"id": vid, "key": self.key("var")}
        if feature:
            var["featureEnabled"] = self.chance(0.75)
            usages = []
            for variable in variables or []:
                if self.chance(0.7):
                    usages.append({"id": variable["id"], "value": self.variable_value(variable["type"])})
            var["variables"] = usages
        elif self.version != "2":
            var["variables"] = []
        return var

    def experiment(
        self,
        layer_id: str | None = None,
        variables: list[dict[str, Any]] | None = None,
        feature: bool = False,
        rollout_rule: bool = False,
    ) -> dict[str, Any]:
        rng = self.rng
        eid = self.ids.numeric() if self.chance(0.97) else self.ids.opaque("exp-")
        n_var = 1 if rollout_rule and self.chance(0.8) else rng.randrange(1, 5)
        if not rollout_rule and not feature and self.chance(0.03):
            n_var = 0  # an A/B experiment with no variations yet
        variations = [self.variation(variables, feature) for _ in range(n_var)]
        exp: dict[str, Any] = {
            "id": eid,
            "key": self.key("rule" if rollout_rule else "exp"),
            "status": "Running" if rollout_rule and self.chance(0.9) else rng.choice(STATUSES),
            "layerId": layer_id or (self.ids.numeric() if self.chance(0.9) else self.ids.opaque("layer_")),
            "variations": variations,
            "trafficAllocation": self.allocation([v["id"] for v in variations], full=True),
            "forcedVariations": {},
        }
        if self.chance(0.05):
            exp["layerId"] = ""  # campaign_id falls back to the experiment id
        self.targeting(exp)
        if not rollout_rule and variations and self.chance(0.4):
            users = [f"user_{rng.randrange(40)}", "whitelisted", "", "ユーザー"]
            for user in rng.sample(users, rng.randrange(1, 3)):
                exp["forcedVariations"][user] = rng.choice(variations)["key"]
            if self.chance(0.1):
                exp["forcedVariations"]["whitelisted_bad"] = "no_such_variation"
        if self.version == "4" and not rollout_rule and self.chance(0.45):
            exp["type"] = rng.choice(["ab", "fr", "td", "td", "mab", "fr"])
        if self.holdout_focus and not rollout_rule and self.chance(0.6):
            exp["type"] = "td"
            exp["status"] = "Running"
        self.all_rule_ids.append(eid)
        return exp

    # -- variables
    def variable_value(self, vtype: str) -> str:
        rng = self.rng
        bad = self.knobs.invalid_variable_values and self.chance(0.05)
        if vtype == "boolean":
            return rng.choice(["True", "1", "yes"]) if bad else rng.choice(["true", "false"])
        if vtype == "integer":
            if bad:
                return rng.choice(["4.5", "", "abc", "1e3"])
            return str(rng.choice([0, 1, -7, 42, 10**6, TWO53 + 1, -(2**63)]))
        if vtype == "double":
            if bad:
                return rng.choice(["abc", "", "1,5"])
            return rng.choice(["0", "3.14", "-2.5", "1e10", "-0.0", "1", "NaN", "inf", "9007199254740993"])
        if vtype == "string":
            return rng.choice(["", "hello", "ünï", "日本語", "😀", "true", "42", '{"a":1}', "line\nbreak"])
        # json
        if bad:
            return rng.choice(["{bad", "", "[1,2", "nul"])
        values = [
            '{"a": 1, "b": [1, 2.5, "x"], "c": {"d": null}}',
            "{}",
            "[]",
            "[1, 2, 3]",
            '"just a string"',
            "12",
            "true",
            "null",
            '{"k": "ü😀", "n": -0.0}',
            '{"big": 9007199254740993}',
            '{"a": 1, "a": 2}',
        ]
        if self.knobs.huge_json_numbers:
            values += ['{"huge": 123456789012345678901234567890}', '{"inf": 1e400}', '{"nan": NaN}']
        return rng.choice(values)

    def variables(self) -> list[dict[str, Any]]:
        out = []
        for _ in range(self.rng.randrange(0, 6)):
            vtype = self.rng.choice(VARIABLE_TYPES)
            declared = "string" if vtype == "json-string" else vtype
            var: dict[str, Any] = {
                "id": self.ids.numeric(),
                "key": self.key("var"),
                "type": declared,
                "defaultValue": self.variable_value("json" if vtype == "json-string" else vtype),
            }
            if vtype == "json-string":
                var["subType"] = "json"
            out.append(var)
        return out

    # -- holdouts
    def holdout(self, local: bool) -> dict[str, Any]:
        rng = self.rng
        hid = self.ids.numeric()
        variations = [
            {
                "id": self.ids.numeric(),
                "key": self.key("holdout_off"),
                "featureEnabled": False,
                "variables": [],
            }
        ]
        if self.chance(0.1):
            variations[0]["featureEnabled"] = True
        holdout: dict[str, Any] = {
            "id": hid,
            "key": self.key("holdout"),
            "status": rng.choice(HOLDOUT_STATUSES),
            "variations": variations,
            "trafficAllocation": [
                {
                    "entityId": variations[0]["id"],
                    "endOfRange": rng.choice([0, 1000, 2500, 5000, 8000, 10000]),
                }
            ],
            "audienceIds": [],
        }
        self.targeting(holdout)
        if self.chance(0.25):
            holdout["excludeTargetedDeliveries"] = True
        if local:
            if not (self.knobs.local_holdout_without_rules and self.chance(0.25)):
                pool = [*self.all_rule_ids, "123"]
                holdout["includedRules"] = rng.sample(pool, min(len(pool), rng.randrange(1, 4)))
        elif self.chance(0.1):
            holdout["includedRules"] = [rng.choice(self.all_rule_ids)] if self.all_rule_ids else []
        return holdout

    # -- the whole file
    def build(self) -> dict[str, Any]:
        rng = self.rng
        self.make_attributes()
        self.make_audiences()
        experiments: list[dict[str, Any]] = []
        groups: list[dict[str, Any]] = []
        feature_flags: list[dict[str, Any]] = []
        rollouts: list[dict[str, Any]] = []
        features = self.version != "2"

        # flags: each owns a variable set, a rollout and feature tests
        flag_experiments: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (flag, experiment)
        if features:
            for _ in range(rng.randrange(1, 7)):
                variables = self.variables()
                flag: dict[str, Any] = {
                    "id": self.ids.numeric(),
                    "key": self.key("flag"),
                    "rolloutId": "",
                    "experimentIds": [],
                    "variables": variables,
                }
                if self.chance(0.85):
                    rollout_id = self.ids.numeric()
                    rules = []
                    n_rules = rng.choice([0, 1, 1, 2, 2, 3, 4]) if self.chance(0.9) else 0
                    for i in range(n_rules + (1 if self.chance(0.9) else 0)):
                        rule = self.experiment(rollout_id, variables, feature=True, rollout_rule=True)
                        if self.chance(0.02):
                            rule["key"] = rng.choice([" ", "  "])  # blank key: the bucketer refuses it
                        if i == n_rules:  # everyone else: no audience
                            rule["audienceIds"] = []
                            rule.pop("audienceConditions", None)
                            rule["key"] = f"everyone_else_{rollout_id}"
                            self.keys.add(rule["key"])
                        rules.append(rule)
                    rollouts.append({"id": rollout_id, "experiments": rules})
                    flag["rolloutId"] = rollout_id
                for _ in range(rng.choice([0, 1, 1, 2, 3])):
                    exp = self.experiment(None, variables, feature=True)
                    flag_experiments.append((flag, exp))
                    flag["experimentIds"].append(exp["id"])
                feature_flags.append(flag)

        # plain A/B experiments
        plain = [self.experiment() for _ in range(rng.randrange(1 if not features else 0, 5))]

        # groups: some feature tests and plain experiments go into groups
        pool = [exp for _, exp in flag_experiments] + plain
        rng.shuffle(pool)
        grouped: set[str] = set()
        for _ in range(rng.choice([0, 0, 1, 1, 2])):
            members = [e for e in pool if e["id"] not in grouped][: rng.randrange(1, 4)]
            if not members:
                break
            policy = "random" if self.chance(0.8) else "overlapping"
            for e in members:
                grouped.add(e["id"])
            group = {
                "id": self.ids.numeric(),
                "policy": policy,
                "experiments": members,
                "trafficAllocation": self.allocation([e["id"] for e in members], full=True)
                if policy == "random"
                else [],
            }
            groups.append(group)
        for exp in pool:
            if exp["id"] not in grouped:
                experiments.append(exp)
        rng.shuffle(experiments)

        events = []
        all_exp_ids = [e["id"] for e in pool]
        for _ in range(rng.randrange(1, 5)):
            events.append(
                {
                    "id": self.ids.numeric(),
                    "key": self.key("event"),
                    "experimentIds": rng.sample(all_exp_ids, min(len(all_exp_ids), rng.randrange(0, 3))),
                }
            )

        datafile: dict[str, Any] = {
            "version": self.version,
            "accountId": str(rng.randrange(10**9, 10**10)),
            "projectId": str(rng.randrange(10**9, 10**10)),
            "revision": str(rng.randrange(1, 500)),
            "experiments": experiments,
            "groups": groups,
            "events": events,
            "audiences": self.audiences,
            "attributes": self.attributes,
        }
        if features:
            datafile["featureFlags"] = feature_flags
            datafile["rollouts"] = rollouts
        if self.version == "4":
            if self.typed_audiences or self.chance(0.5):
                datafile["typedAudiences"] = self.typed_audiences
            for name in ("anonymizeIP", "botFiltering", "sendFlagDecisions"):
                if self.chance(0.8):
                    datafile[name] = self.chance(0.5)
            region = rng.choice(["US", "EU", None, None])
            if self.knobs.lowercase_region and self.chance(0.1):
                region = "eu"
            if region is not None:
                datafile["region"] = region
            if self.chance(0.5):
                datafile["sdkKey"] = f"sdk_{rng.randrange(10**6)}"
                datafile["environmentKey"] = rng.choice(["production", "dev"])
            if self.chance(0.2):
                datafile["integrations"] = [{"key": "odp", "host": "https://odp.invalid", "publicKey": "pk"}]
            if features and (self.chance(0.6) or self.holdout_focus):
                datafile["holdouts"] = [self.holdout(local=False) for _ in range(rng.randrange(0, 3))]
                if self.holdout_focus:
                    wide = self.holdout(local=False)
                    wide.update(status="Running", excludeTargetedDeliveries=True, audienceIds=[])
                    wide.pop("audienceConditions", None)
                    wide["trafficAllocation"][0]["endOfRange"] = rng.choice([5000, 10000])
                    datafile["holdouts"].insert(0, wide)
            if features and self.chance(0.5):
                datafile["localHoldouts"] = [self.holdout(local=True) for _ in range(rng.randrange(0, 3))]
        return datafile


def generate_datafile(
    seed: int, *, version: str | None = None, knobs: Knobs = DEFAULT_KNOBS
) -> dict[str, Any]:
    """A valid datafile (as a dict) determined by ``seed``."""
    return _DatafileGen(seed, version, knobs).build()


def datafile_json(datafile: dict[str, Any]) -> str:
    """The datafile as the JSON text both SDKs are given (strict JSON; inf becomes 1e400)."""
    text = json.dumps(datafile, ensure_ascii=False)
    # json writes inf as Infinity, which is not JSON; 1e400 is, and parses back to inf
    return re.sub(r"(?<=[:\[,] )(-?)Infinity(?=[,\]}])", r"\g<1>1e400", text)


def datafile_strategy(knobs: Knobs = DEFAULT_KNOBS) -> Any:
    """A hypothesis strategy of valid datafiles (dicts); shrinks towards small seeds.

    Imported lazily so the generator itself needs only the standard library.
    """
    from hypothesis import strategies as st

    return st.builds(
        lambda seed, version: generate_datafile(seed, version=version, knobs=knobs),
        st.integers(min_value=0, max_value=2**31),
        st.sampled_from([None, "2", "3", "4"]),
    )
