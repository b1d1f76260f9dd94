"""Seeded generator of valid datafiles (versions 2, 3 and 4) covering every section the SDK reads.

``random_datafile(seed)`` is deterministic, so hypothesis can draw a seed and
shrink to the smallest failing one. Every datafile it makes is accepted by
optimizely-sdk 5.7's JSON schema and loads there without error.
"""

from __future__ import annotations

import json
import random
from typing import Any

NAMES = ["plain", "with space", 'quo"te', "ünïcødé", "日本", "emoji 🎉", "back\\slash", ""]
MATCHES = ["exact", "exists", "substring", "gt", "ge", "lt", "le", "semver_eq", "semver_ge", None]


def _describable(tree: Any) -> Any:
    """Unwrap ``[[...]]``: optimizely-sdk cannot describe an array holding only an array."""
    if not isinstance(tree, list):
        return tree
    if len(tree) == 1 and isinstance(tree[0], list):
        return _describable(tree[0])
    return [_describable(child) for child in tree]


class _Gen:
    def __init__(self, seed: int, version: str | None) -> None:
        self.rng = random.Random(seed)
        self.version = version or self.rng.choice(["2", "3", "4"])
        self.next_id = 1000

    def new_id(self) -> str:
        self.next_id += self.rng.randint(1, 7)
        return str(self.next_id)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    # -- conditions ------------------------------------------------------------

    def leaf(self, attributes: list[str]) -> dict[str, Any]:
        r = self.rng
        leaf: dict[str, Any] = {"type": "custom_attribute", "name": r.choice(attributes or ["a"])}
        match = r.choice(MATCHES)
        if match is not None:
            leaf["match"] = match
        if match != "exists":
            leaf["value"] = r.choice([1, 2.5, "x", True, "1.2.3", -3, 10**6, "ü"])
        return leaf

    def condition_tree(self, depth: int, make_leaf: Any) -> Any:
        r = self.rng
        if depth <= 0 or self.chance(0.35):
            return make_leaf()
        op = r.choice(["and", "or", "not", None])
        children = [
            self.condition_tree(depth - 1, make_leaf) for _ in range(1 if op == "not" else r.randint(1, 3))
        ]
        return [op, *children] if op else children

    def audience_conditions(self, audience_ids: list[str]) -> Any:
        r = self.rng
        if not audience_ids or self.chance(0.2):
            return []
        pool = [*audience_ids, "9999999"]  # a missing audience is tolerated at decision time
        tree = self.condition_tree(3, lambda: r.choice(pool))
        return _describable(tree if isinstance(tree, list) else [tree])

    # -- entities ------------------------------------------------------------------

    def variables_for(self, variables: list[dict[str, Any]]) -> list[dict[str, str]]:
        out = []
        for v in variables:
            if self.chance(0.6):
                out.append({"id": v["id"], "value": self.value_for(v)})
        return out

    def value_for(self, variable: dict[str, Any]) -> str:
        r = self.rng
        kind = "json" if variable.get("subType") == "json" else variable["type"]
        return {
            "boolean": lambda: r.choice(["true", "false"]),
            "integer": lambda: str(r.randint(-(10**6), 10**6)),
            "double": lambda: repr(r.uniform(-100, 100)),
            "string": lambda: r.choice(NAMES),
            "json": lambda: json.dumps({"k": r.randint(0, 9), "s": r.choice(NAMES)}),
        }[kind]()

    def experiment(
        self,
        key: str,
        audience_ids: list[str],
        variables: list[dict[str, Any]] | None,
        *,
        rule_type: str | None = None,
    ) -> dict[str, Any]:
        r = self.rng
        exp_id = self.new_id()
        variations = []
        for i in range(r.randint(1, 4)):
            var: dict[str, Any] = {"id": self.new_id(), "key": f"{key}_var{i}"}
            if variables is not None:
                var["featureEnabled"] = r.choice([True, False])
                var["variables"] = self.variables_for(variables)
            elif self.chance(0.5):
                var["variables"] = []
            variations.append(var)
        allocation = []
        end = 0
        for _ in range(r.randint(0, 5)):
            end = min(10000, end + r.randint(0, 4000))
            entity = r.choice([*[v["id"] for v in variations], ""])
            allocation.append({"entityId": entity, "endOfRange": end})
        exp: dict[str, Any] = {
            "id": exp_id,
            "key": key,
            "status": r.choice(["Running", "Running", "Paused", "Not started", "Archived"]),
            "layerId": self.new_id(),
            "audienceIds": r.sample(audience_ids, min(len(audience_ids), r.randint(0, 2))),
            "variations": variations,
            "trafficAllocation": allocation,
            "forcedVariations": {
                r.choice(NAMES) + str(i): r.choice(variations)["key"] for i in range(r.randint(0, 2))
            },
        }
        if self.version != "2" and self.chance(0.7):
            exp["audienceConditions"] = self.audience_conditions(audience_ids)
        if rule_type is not None:
            exp["type"] = rule_type
        return exp

    def datafile(self) -> dict[str, Any]:
        r = self.rng
        attributes = [
            {"id": self.new_id(), "key": k} for k in r.sample(["age", "country", "app", "$opt_x", "ü"], 3)
        ]
        attr_keys = [a["key"] for a in attributes]
        audiences = []
        for i in range(r.randint(0, 4)):
            tree = self.condition_tree(3, lambda: self.leaf(attr_keys))
            if not isinstance(tree, list):
                tree = ["or", tree]
            audiences.append(
                {"id": self.new_id(), "name": f"{r.choice(NAMES)} {i}", "conditions": json.dumps(tree)}
            )
        if self.chance(0.3):
            audiences.append(
                {
                    "id": "$opt_dummy_audience",
                    "name": "Optimizely-Generated Audience for Backwards Compatibility",
                    "conditions": '["or", {"match": "exact", "name": "$opt_dummy_attribute",'
                    ' "type": "custom_attribute", "value": "$opt_dummy_value"}]',
                }
            )
        audience_ids = [a["id"] for a in audiences]
        typed = []
        if self.version == "4":
            for a in audiences:
                if self.chance(0.4):
                    typed.append(
                        {
                            "id": a["id"],
                            "name": a["name"] + " typed",
                            "conditions": self.leaf(attr_keys)
                            if self.chance(0.2)
                            else ["and", self.condition_tree(2, lambda: self.leaf(attr_keys))],
                        }
                    )
        experiments = [self.experiment(f"exp_{i}", audience_ids, None) for i in range(r.randint(0, 3))]
        groups = []
        for g in range(r.randint(0, 2)):
            members = [self.experiment(f"grp{g}_exp{i}", audience_ids, None) for i in range(r.randint(1, 3))]
            allocation = []
            end = 0
            for m in members:
                end = min(10000, end + r.randint(1000, 5000))
                allocation.append({"entityId": m["id"], "endOfRange": end})
            if self.chance(0.3):
                allocation.append({"entityId": "", "endOfRange": 10000})
            groups.append(
                {
                    "id": self.new_id(),
                    "policy": r.choice(["random", "overlapping"]),
                    "trafficAllocation": allocation,
                    "experiments": members,
                }
            )
        datafile: dict[str, Any] = {
            "version": self.version,
            "accountId": self.new_id(),
            "projectId": self.new_id(),
            "revision": str(r.randint(1, 500)),
            "attributes": attributes,
            "audiences": audiences,
            "experiments": experiments,
            "groups": groups,
            "events": [],
        }
        if self.version != "2":
            self.add_features(datafile, audience_ids)
        all_ids = [e["id"] for e in datafile["experiments"]] + [
            m["id"] for g in groups for m in g["experiments"]
        ]
        datafile["events"] = [
            {
                "id": self.new_id(),
                "key": f"event_{i}",
                "experimentIds": r.sample(all_ids, min(len(all_ids), 2)),
            }
            for i in range(r.randint(0, 3))
        ]
        if typed:
            datafile["typedAudiences"] = typed
        for name in ("anonymizeIP", "botFiltering", "sendFlagDecisions"):
            if self.chance(0.6):
                datafile[name] = r.choice([True, False])
        if self.chance(0.5):
            datafile["sdkKey"] = "sdk-" + self.new_id()
            datafile["environmentKey"] = r.choice(["production", "dev"])
        if self.chance(0.3):
            datafile["region"] = r.choice(["US", "EU"])
        if self.chance(0.3):
            datafile["integrations"] = [{"key": "odp", "host": "https://example.invalid", "publicKey": "pk"}]
        r.shuffle(datafile["attributes"])
        return datafile

    def add_features(self, datafile: dict[str, Any], audience_ids: list[str]) -> None:
        r = self.rng
        flags = []
        rollouts = []
        holdouts: list[dict[str, Any]] = []
        local_holdouts: list[dict[str, Any]] = []
        for f in range(r.randint(0, 4)):
            variables = []
            for j, vtype in enumerate(
                r.sample(["boolean", "integer", "double", "string", "json"], r.randint(0, 5))
            ):
                variable = {"id": self.new_id(), "key": f"var_{j}", "type": vtype}
                if vtype == "json" and self.chance(0.5):
                    variable["type"] = "string"
                    variable["subType"] = "json"
                variable["defaultValue"] = self.value_for(variable)
                variables.append(variable)
            flag_key = f"flag_{f}"
            tests = [
                self.experiment(
                    f"{flag_key}_test{i}",
                    audience_ids,
                    variables,
                    rule_type="fr" if self.chance(0.2) else None,
                )
                for i in range(r.randint(0, 2))
            ]
            datafile["experiments"].extend(tests)
            rollout_id = ""
            if self.chance(0.8):
                rollout_id = self.new_id()
                rules = [
                    self.experiment(f"{flag_key}_rule{i}", audience_ids, variables)
                    for i in range(r.randint(0, 3))
                ]
                rules.append(self.experiment(f"{flag_key}_everyone_else", [], variables))
                rules[-1]["audienceIds"] = []
                rules[-1].pop("audienceConditions", None)
                rollouts.append({"id": rollout_id, "experiments": rules})
            flags.append(
                {
                    "id": self.new_id(),
                    "key": flag_key,
                    "experimentIds": [t["id"] for t in tests],
                    "rolloutId": rollout_id,
                    "variables": variables,
                }
            )
        if self.chance(0.4):
            rule_ids = [e["id"] for e in datafile["experiments"]] + [
                rule["id"] for ro in rollouts for rule in ro["experiments"]
            ]
            for i in range(r.randint(1, 2)):
                holdout = self.experiment(f"holdout_{i}", audience_ids, None)
                for key in ("layerId", "forcedVariations"):
                    holdout.pop(key)
                if self.chance(0.5):
                    holdout["includedRules"] = r.sample(rule_ids, min(len(rule_ids), 2))
                    holdout["excludeTargetedDeliveries"] = r.choice([True, False])
                    local_holdouts.append(holdout)
                else:
                    holdouts.append(holdout)
        datafile["featureFlags"] = flags
        datafile["rollouts"] = rollouts
        if holdouts:
            datafile["holdouts"] = holdouts
        if local_holdouts:
            datafile["localHoldouts"] = local_holdouts


def random_datafile(seed: int, version: str | None = None) -> dict[str, Any]:
    """A valid datafile, the same one for the same ``seed`` (and ``version``)."""
    return _Gen(seed, version).datafile()
