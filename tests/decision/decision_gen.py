"""Seeded generator of decision-heavy datafiles and users for the service differential tests.

Everything is a pure function of a ``random.Random``: a failing case is
reproduced from its seed. Datafiles reach into every corner the decision path
reads: statuses, traffic allocations with gaps, empty slices and dangling
ids, random and overlapping groups, whitelisting (valid and invalid keys),
legacy and typed audiences (typed overriding legacy), audienceConditions
trees with missing audiences, every match type, feature tests, ``td`` and
``fr`` experiments, rollouts with several rules, global holdouts (with and
without ``excludeTargetedDeliveries``) and local holdouts.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

ATTRIBUTE_KEYS = ["country", "age", "vip", "version", "score", "plan"]
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
    None,
]
STRINGS = ["us", "fr", "de", "u", "", "pro", "free", "1.2.3", "1.2", "2.0.0-beta", "1.10.1", "10"]
NUMBERS = [0, 1, 18, 21, 65, 1.5, -3, 2**53, 2**53 + 1, 99.9]


class _Gen:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.next_id = 1000 + rng.randrange(1000)
        self.keys: set[str] = set()

    def id(self) -> str:
        self.next_id += self.rng.randrange(1, 7)
        return str(self.next_id)

    def key(self, prefix: str) -> str:
        while True:
            k = f"{prefix}_{self.rng.randrange(10_000)}"
            if k not in self.keys:
                self.keys.add(k)
                return k

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    # -- audiences ---------------------------------------------------------

    def condition_value(self, match: str | None) -> Any:
        r = self.rng
        if match in ("gt", "ge", "lt", "le"):
            return r.choice([*NUMBERS, "18", True, None]) if self.chance(0.15) else r.choice(NUMBERS)
        if match and match.startswith("semver"):
            return r.choice(["1.2.3", "1.2", "2.0.0-beta", "1.10.1", "1.2.3+build", "3", 3])
        if match == "exists":
            return None
        if match == "substring":
            return r.choice(["u", "pro", "", "e", 5])
        return r.choice([*STRINGS, *NUMBERS, True, False, None])

    def leaf(self) -> dict[str, Any]:
        r = self.rng
        match = r.choice(MATCHES)
        leaf: dict[str, Any] = {
            "name": r.choice(ATTRIBUTE_KEYS),
            "type": "custom_attribute",
            "value": self.condition_value(match),
        }
        if match is not None:
            leaf["match"] = match
        if self.chance(0.04):
            leaf["type"] = "custom_dimension"
        if self.chance(0.04):
            leaf["match"] = "regex"
        if self.chance(0.1) and leaf.get("value") is None:
            del leaf["value"]
        return leaf

    def tree(self, depth: int, leaf_fn: Any) -> Any:
        r = self.rng
        if depth == 0 or self.chance(0.3):
            return leaf_fn()
        op = r.choice(["and", "or", "not", "implicit"])
        kids = [self.tree(depth - 1, leaf_fn) for _ in range(r.randint(1, 3))]
        return kids if op == "implicit" else [op, *kids]

    def audiences(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        legacy, typed = [], []
        for _ in range(self.rng.randint(1, 5)):
            aid = self.id()
            leaves = [self.leaf() for _ in range(self.rng.randint(1, 3))]
            legacy.append(
                {"id": aid, "name": f"aud {aid}", "conditions": json.dumps(["and", ["or", ["or", *leaves]]])}
            )
        for _ in range(self.rng.randint(0, 4)):
            # sometimes a typed audience overrides a legacy one with the same id
            aid = self.rng.choice(legacy)["id"] if legacy and self.chance(0.3) else self.id()
            typed.append({"id": aid, "name": f"typed {aid}", "conditions": self.tree(3, self.leaf)})
        return legacy, typed

    def targeting(self, entity: dict[str, Any], audience_ids: list[str]) -> None:
        r = self.rng
        pool = [*audience_ids, "999999"] if audience_ids else ["999999"]
        if self.chance(0.3):
            entity["audienceIds"] = []
        else:
            entity["audienceIds"] = r.sample(pool, k=min(len(pool), r.randint(1, 2)))
        if self.chance(0.5):
            entity["audienceConditions"] = self.tree(2, lambda: r.choice(pool))
            if self.chance(0.1):
                entity["audienceConditions"] = []

    # -- traffic -----------------------------------------------------------

    def allocation(self, entity_ids: list[str]) -> list[dict[str, int | str]]:
        r = self.rng
        out: list[dict[str, Any]] = []
        end = 0
        choices = [*entity_ids, ""] if self.chance(0.3) else list(entity_ids)
        if self.chance(0.05):
            choices.append("424242")  # names no variation
        for i in range(r.randint(1, 4)):
            if self.chance(0.15):
                end += r.randint(1, 3000)  # a gap
            end = min(10_000, end + r.randint(0, 6000))
            out.append({"entityId": r.choice(choices) if choices else "", "endOfRange": end})
            if i == 0 and self.chance(0.5):
                break
        if self.chance(0.5):
            out.append({"entityId": r.choice(choices) if choices else "", "endOfRange": 10_000})
        return out

    def variations(self, n: int) -> list[dict[str, Any]]:
        return [
            {"id": self.id(), "key": self.key("var"), "featureEnabled": self.chance(0.7), "variables": []}
            for _ in range(n)
        ]

    def experiment(
        self, audience_ids: list[str], prefix: str = "exp", rollout: bool = False
    ) -> dict[str, Any]:
        r = self.rng
        variations = self.variations(r.randint(1, 3))
        exp: dict[str, Any] = {
            "id": self.id(),
            "key": self.key(prefix),
            "status": "Running"
            if rollout or self.chance(0.75)
            else r.choice(["Paused", "Not started", "Archived"]),
            "layerId": self.id(),
            "variations": variations,
            "trafficAllocation": self.allocation([v["id"] for v in variations]),
            "forcedVariations": {},
        }
        if not rollout and self.chance(0.3):
            for _ in range(r.randint(1, 3)):
                user = f"user_{r.randrange(40)}"
                exp["forcedVariations"][user] = r.choice([v["key"] for v in variations] + ["no_such_var"])
        self.targeting(exp, audience_ids)
        return exp

    def holdout(self, audience_ids: list[str], rule_ids: list[str] | None) -> dict[str, Any]:
        r = self.rng
        variations = self.variations(1)
        h: dict[str, Any] = {
            "id": self.id(),
            "key": self.key("holdout"),
            "status": "Running" if self.chance(0.8) else "Draft",
            "variations": variations,
            "trafficAllocation": [
                {"entityId": variations[0]["id"], "endOfRange": r.choice([500, 2000, 5000, 10000])}
            ],
        }
        self.targeting(h, audience_ids)
        if rule_ids is not None:
            h["includedRules"] = r.sample(rule_ids, k=min(len(rule_ids), r.randint(1, 2)))
        elif self.chance(0.5):
            h["excludeTargetedDeliveries"] = True
        return h

    # -- datafile ----------------------------------------------------------

    def build(self) -> dict[str, Any]:
        r = self.rng
        legacy, typed = self.audiences()
        audience_ids = [a["id"] for a in legacy] + [a["id"] for a in typed]
        experiments = [self.experiment(audience_ids) for _ in range(r.randint(0, 4))]
        groups = []
        for _ in range(r.randint(0, 2)):
            members = [self.experiment(audience_ids) for _ in range(r.randint(1, 3))]
            groups.append(
                {
                    "id": self.id(),
                    "policy": "random" if self.chance(0.8) else "overlapping",
                    "experiments": members,
                    "trafficAllocation": self.allocation([m["id"] for m in members]),
                }
            )
        all_experiments = experiments + [m for g in groups for m in g["experiments"]]
        rollouts, flags = [], []
        free = list(all_experiments)
        r.shuffle(free)
        for _ in range(r.randint(1, 4)):
            rules = [self.experiment(audience_ids, "rule", rollout=True) for _ in range(r.randint(0, 4))]
            if rules and self.chance(0.8):
                rules[-1]["audienceIds"] = []
                rules[-1].pop("audienceConditions", None)
            rollout = {"id": self.id(), "experiments": rules}
            rollouts.append(rollout)
            exp_ids = []
            for _ in range(r.randint(0, 2)):
                if free:
                    exp = free.pop()
                    if self.chance(0.25):
                        exp["type"] = r.choice(["td", "fr", "ab"])
                    exp_ids.append(exp["id"])
            flags.append(
                {
                    "id": self.id(),
                    "key": self.key("flag"),
                    "experimentIds": exp_ids,
                    "rolloutId": rollout["id"] if self.chance(0.9) else "",
                    "variables": [],
                }
            )
        rule_ids = [e["id"] for ro in rollouts for e in ro["experiments"]] + [
            e["id"] for e in all_experiments
        ]
        datafile: dict[str, Any] = {
            "version": "4",
            "accountId": "12001",
            "projectId": "12002",
            "revision": str(r.randint(1, 99)),
            "anonymizeIP": False,
            "botFiltering": False,
            "sendFlagDecisions": True,
            "attributes": [{"id": self.id(), "key": k} for k in ATTRIBUTE_KEYS],
            "audiences": legacy,
            "typedAudiences": typed,
            "experiments": experiments,
            "groups": groups,
            "featureFlags": flags,
            "rollouts": rollouts,
            "events": [],
            "integrations": [],
        }
        if self.chance(0.6):
            datafile["holdouts"] = [self.holdout(audience_ids, None) for _ in range(r.randint(1, 2))]
        if rule_ids and self.chance(0.6):
            datafile["localHoldouts"] = [self.holdout(audience_ids, rule_ids) for _ in range(r.randint(1, 2))]
        return datafile


def generate_datafile(seed: int) -> dict[str, Any]:
    """A decision-heavy datafile determined by ``seed``."""
    return _Gen(random.Random(seed)).build()


def attribute_value(rng: random.Random) -> Any:
    return rng.choice(
        [
            *STRINGS,
            *NUMBERS,
            True,
            False,
            None,
            math.nan,
            math.inf,
            -math.inf,
            10**20,
            [1],
            {"a": 1},
            2.5e300,
        ]
    )


def user_attributes(rng: random.Random) -> dict[str, Any]:
    attrs = {
        k: attribute_value(rng) for k in rng.sample(ATTRIBUTE_KEYS, k=rng.randint(0, len(ATTRIBUTE_KEYS)))
    }
    roll = rng.random()
    if roll < 0.1:
        attrs["$opt_bucketing_id"] = f"bucket_{rng.randrange(50)}"
    elif roll < 0.15:
        attrs["$opt_bucketing_id"] = rng.choice([123, None, 4.5, True])
    return attrs


def all_experiments(datafile: dict[str, Any]) -> list[dict[str, Any]]:
    return list(datafile["experiments"]) + [m for g in datafile["groups"] for m in g["experiments"]]


def all_rules(datafile: dict[str, Any]) -> list[dict[str, Any]]:
    return all_experiments(datafile) + [e for ro in datafile["rollouts"] for e in ro["experiments"]]
