"""``ProjectConfig``: one datafile, parsed once into immutable entities and lookup maps.

The maps are built in the same order as optimizely-sdk builds them, because
that order decides which entity wins when a datafile reuses an id or key
(experiments, then rollout rules, then group experiments).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from flagstream import _json
from flagstream._logging import LoggerLike, get_logger
from flagstream.config.entities import (
    Attribute,
    Audience,
    Event,
    Experiment,
    FeatureFlag,
    Group,
    Holdout,
    Rollout,
    TrafficAllocation,
    Variable,
    VariableType,
    Variation,
)
from flagstream.errors import InvalidDatafileError

__all__ = ["RESERVED_ATTRIBUTE_PREFIX", "ProjectConfig"]

RESERVED_ATTRIBUTE_PREFIX: Final = "$opt_"
FEATURE_ROLLOUT_TYPE: Final = "fr"


def _variation(raw: Mapping[str, Any]) -> Variation:
    values = {str(v["id"]): v["value"] for v in raw.get("variables") or ()}
    enabled = raw.get("featureEnabled")
    return Variation(str(raw["id"]), raw["key"], enabled, values)


def _allocation(raw: Any) -> tuple[TrafficAllocation, ...]:
    return tuple(TrafficAllocation(str(t["entityId"]), t["endOfRange"]) for t in raw or ())


def _experiment(raw: Mapping[str, Any], group: Mapping[str, Any] | None = None) -> Experiment:
    variations = tuple(_variation(v) for v in raw.get("variations") or ())
    return Experiment(
        id=str(raw["id"]),
        key=raw["key"],
        status=raw.get("status", ""),
        layer_id=str(raw.get("layerId", "")),
        audience_ids=tuple(raw.get("audienceIds") or ()),
        audience_conditions=raw.get("audienceConditions"),
        variations=variations,
        variations_by_key={v.key: v for v in variations},
        variations_by_id={v.id: v for v in variations},
        forced_variations=dict(raw.get("forcedVariations") or {}),
        traffic_allocation=_allocation(raw.get("trafficAllocation")),
        group_id=str(group["id"]) if group is not None else raw.get("groupId"),
        group_policy=group.get("policy") if group is not None else raw.get("groupPolicy"),
        type=raw.get("type"),
    )


def _holdout(raw: Mapping[str, Any], *, is_global: bool) -> Holdout:
    variations = tuple(_variation(v) for v in raw.get("variations") or ())
    included = raw.get("includedRules")
    return Holdout(
        id=str(raw["id"]),
        key=raw["key"],
        status=raw.get("status", ""),
        audience_ids=tuple(raw.get("audienceIds") or ()),
        audience_conditions=raw.get("audienceConditions"),
        variations=variations,
        variations_by_key={v.key: v for v in variations},
        variations_by_id={v.id: v for v in variations},
        traffic_allocation=_allocation(raw.get("trafficAllocation")),
        included_rules=None if is_global or included is None else tuple(str(r) for r in included),
        exclude_targeted_deliveries=bool(raw.get("excludeTargetedDeliveries", False)),
    )


def _decode_conditions(conditions: Any) -> object | None:
    if isinstance(conditions, str):
        try:
            decoded: object = _json.loads(conditions)
        except _json.JSONDecodeError:
            # optimizely-sdk decodes with the stdlib, which also reads NaN, Infinity and
            # integers beyond 64 bits; a leaf holding one is then UNKNOWN, not the audience.
            try:
                decoded = json.loads(conditions)
            except ValueError:
                return None
        return decoded
    return conditions  # type: ignore[no-any-return]


def _variables(raw_flag: Mapping[str, Any]) -> tuple[Variable, ...]:
    out = []
    for v in raw_flag.get("variables") or ():
        vtype = v["type"]
        if vtype == VariableType.STRING and v.get("subType") == VariableType.JSON:
            vtype = VariableType.JSON
        out.append(Variable(str(v["id"]), v["key"], vtype, v["defaultValue"]))
    return tuple(out)


@dataclass(frozen=True, slots=True, eq=False)
class ProjectConfig:
    """An immutable, indexed view of one datafile. Build it with :meth:`from_datafile`.

    >>> config = ProjectConfig.from_datafile('{"version": "4", "accountId": "1", "projectId": "2",'
    ...     ' "revision": "7", "experiments": [], "events": [], "attributes": [], "audiences": [],'
    ...     ' "groups": [], "featureFlags": [], "rollouts": []}')
    >>> config.revision
    '7'
    """

    version: str
    # The datafile's values as given: strings once validated, anything (None included) when
    # skip_json_validation let the datafile through; they are sent in each payload as they are.
    account_id: Any
    project_id: Any
    revision: Any
    sdk_key: str | None
    environment_key: str | None
    anonymize_ip: bool
    bot_filtering: bool | None
    send_flag_decisions: bool
    region: str
    datafile: str
    # The maps are dicts, to be read and never changed: compiled code reads a dict directly,
    # a Mapping through generic method calls.
    experiment_id_map: dict[str, Experiment]
    experiment_key_map: dict[str, Experiment]
    group_id_map: dict[str, Group]
    audience_id_map: dict[str, Audience]
    attribute_key_map: dict[str, Attribute]
    attribute_id_map: dict[str, Attribute]
    event_key_map: dict[str, Event]
    feature_key_map: dict[str, FeatureFlag]
    rollout_id_map: dict[str, Rollout]
    experiment_feature_map: dict[str, tuple[str, ...]]
    flag_variations_map: dict[str, tuple[Variation, ...]]
    flag_variation_id_map: dict[str, dict[str, Variation]]
    variation_variable_usage_map: dict[str, dict[str, str]]
    holdouts: tuple[Holdout, ...]
    global_holdouts: tuple[Holdout, ...]
    rule_holdouts_map: dict[str, tuple[Holdout, ...]]
    holdout_id_map: dict[str, Holdout]
    _logger: LoggerLike = field(repr=False)

    # -- construction ------------------------------------------------------

    @classmethod
    def from_datafile(
        cls,
        datafile: str | bytes | Mapping[str, Any],
        *,
        skip_json_validation: bool = False,
        logger: object | None = None,
    ) -> ProjectConfig:
        """Parse and (unless ``skip_json_validation``) validate a datafile.

        Raises :class:`~flagstream.errors.UnsupportedDatafileVersionError` for a
        version other than 2, 3 or 4, and
        :class:`~flagstream.errors.InvalidDatafileError` for anything else that
        makes the datafile unusable; ``.errors`` names each problem's JSON path.
        """
        from flagstream.config.validation import (  # noqa: PLC0415 (import cycle)
            check_version,
            parse_datafile_text,
            validate_datafile,
        )

        log = get_logger(logger)
        if isinstance(datafile, Mapping):
            raw: Any = datafile
            text = _json.dumps(datafile).decode()
        elif isinstance(datafile, (str, bytes, bytearray, memoryview)):
            raw = parse_datafile_text(datafile)  # line and column on a syntax error; non-objects refused
            text = (
                bytes(datafile).decode("utf-8-sig", "replace") if not isinstance(datafile, str) else datafile
            )
        else:
            raise InvalidDatafileError(
                f"datafile must be JSON text, not {type(datafile).__name__}",
                (f"datafile: expected JSON text, got {type(datafile).__name__}",),
            )
        check_version(raw)
        if not skip_json_validation:
            errors = tuple(validate_datafile(raw))
            if errors:
                raise InvalidDatafileError(f"invalid datafile: {errors[0]}", errors)
        try:
            return cls._build(raw, text, log)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            # Only reachable with skip_json_validation: the validator rejects these shapes.
            raise InvalidDatafileError(
                f"datafile could not be read: {type(exc).__name__}: {exc}", (f"$: {exc}",)
            ) from None

    @classmethod
    def _build(cls, raw: Mapping[str, Any], text: str, log: LoggerLike) -> ProjectConfig:
        experiment_id_map: dict[str, Experiment] = {}
        for e in raw.get("experiments") or ():
            exp = _experiment(e)
            experiment_id_map[exp.id] = exp

        rollout_id_map: dict[str, Rollout] = {}
        for r in raw.get("rollouts") or ():
            rules = tuple(_experiment(e) for e in r.get("experiments") or ())
            rollout_id_map[str(r["id"])] = Rollout(str(r["id"]), rules)
            for rule in rules:
                experiment_id_map[rule.id] = rule

        group_id_map: dict[str, Group] = {}
        for g in raw.get("groups") or ():
            members = tuple(_experiment(e, g) for e in g.get("experiments") or ())
            group_id_map[str(g["id"])] = Group(
                str(g["id"]),
                g.get("policy", ""),
                tuple(m.id for m in members),
                _allocation(g["trafficAllocation"]),
            )
            for member in members:
                experiment_id_map[member.id] = member

        audience_id_map: dict[str, Audience] = {}
        for a in raw.get("audiences") or ():
            audience_id_map[str(a["id"])] = Audience(
                str(a["id"]), a["name"], _decode_conditions(a["conditions"])
            )
        for a in raw.get("typedAudiences") or ():
            audience_id_map[str(a["id"])] = Audience(
                str(a["id"]), a["name"], _decode_conditions(a["conditions"])
            )

        attributes = [Attribute(str(a["id"]), a["key"]) for a in raw.get("attributes") or ()]
        events = [
            Event(str(e["id"]), e["key"], tuple(str(x) for x in e.get("experimentIds") or ()))
            for e in raw.get("events") or ()
        ]

        features: dict[str, FeatureFlag] = {}
        experiment_feature_map: dict[str, tuple[str, ...]] = {}
        flag_variations_map: dict[str, tuple[Variation, ...]] = {}
        for f in raw.get("featureFlags") or ():
            variables = _variables(f)
            flag = FeatureFlag(
                id=str(f["id"]),
                key=f["key"],
                experiment_ids=tuple(str(x) for x in f.get("experimentIds") or ()),
                rollout_id=str(f.get("rolloutId") or ""),
                variables={v.key: v for v in variables},
                variables_by_id={v.id: v for v in variables},
            )
            features[flag.key] = flag
            for exp_id in flag.experiment_ids:
                experiment_feature_map[exp_id] = (flag.id,)
            _inject_everyone_else(flag, experiment_id_map, rollout_id_map)

        for flag in features.values():
            flag_rules = [experiment_id_map[x] for x in flag.experiment_ids]
            rollout = rollout_id_map.get(flag.rollout_id) if flag.rollout_id else None
            if flag.rollout_id and rollout is None:
                raise KeyError(f"rollout {flag.rollout_id} of flag {flag.key}")
            if rollout is not None:
                flag_rules.extend(experiment_id_map[r.id] for r in rollout.experiments)
            seen: dict[str, Variation] = {}
            for rule in flag_rules:
                for v in rule.variations_by_id.values():
                    seen.setdefault(v.id, v)
            flag_variations_map[flag.key] = tuple(seen.values())

        # Rollout objects hold the rule entities as finally registered (after any injection).
        rollout_id_map = {
            rid: Rollout(rid, tuple(experiment_id_map[r.id] for r in ro.experiments))
            for rid, ro in rollout_id_map.items()
        }

        usage: dict[str, dict[str, str]] = {}
        for exp in experiment_id_map.values():
            for v in exp.variations_by_id.values():
                usage[v.id] = v.variable_values

        holdouts: list[Holdout] = []
        global_holdouts: list[Holdout] = []
        rule_holdouts: dict[str, list[Holdout]] = {}
        holdout_id_map: dict[str, Holdout] = {}
        for h in raw.get("holdouts") or ():
            if h.get("includedRules") is not None:
                log.warning(
                    f'Global holdout "{h.get("key", "")}" (id: {h.get("id", "<unknown>")}) has "includedRules" '
                    "which will be ignored; global holdouts apply to all flags."
                )
            holdout = _holdout(h, is_global=True)
            holdouts.append(holdout)
            if holdout.is_running:
                holdout_id_map[holdout.id] = holdout
                global_holdouts.append(holdout)
        for h in raw.get("localHoldouts") or ():
            if h.get("includedRules") is None:
                log.error(
                    f'Local holdout with ID "{h.get("id", "<unknown>")}" is missing required "includedRules" '
                    "field and will be excluded from evaluation."
                )
                continue
            holdout = _holdout(h, is_global=False)
            holdouts.append(holdout)
            if holdout.is_running:
                holdout_id_map[holdout.id] = holdout
                for rule_id in holdout.included_rules or ():
                    rule_holdouts.setdefault(rule_id, []).append(holdout)

        return cls(
            version=raw["version"],
            account_id=raw.get("accountId"),
            project_id=raw.get("projectId"),
            revision=raw.get("revision"),
            sdk_key=raw.get("sdkKey"),
            environment_key=raw.get("environmentKey"),
            anonymize_ip=raw.get("anonymizeIP", False),
            bot_filtering=raw.get("botFiltering"),
            send_flag_decisions=raw.get("sendFlagDecisions", False),
            region=raw.get("region") or "US",
            datafile=text,
            experiment_id_map=experiment_id_map,
            experiment_key_map={e.key: e for e in experiment_id_map.values()},
            group_id_map=group_id_map,
            audience_id_map=audience_id_map,
            attribute_key_map={a.key: a for a in attributes},
            attribute_id_map={a.id: a for a in attributes},
            event_key_map={e.key: e for e in events},
            feature_key_map=features,
            rollout_id_map=rollout_id_map,
            experiment_feature_map=experiment_feature_map,
            flag_variations_map=flag_variations_map,
            flag_variation_id_map={
                key: {v.id: v for v in reversed(vs)} for key, vs in flag_variations_map.items()
            },
            variation_variable_usage_map=usage,
            holdouts=tuple(holdouts),
            global_holdouts=tuple(global_holdouts),
            rule_holdouts_map={k: tuple(v) for k, v in rule_holdouts.items()},
            holdout_id_map=holdout_id_map,
            _logger=log,
        )

    # -- lookups -----------------------------------------------------------

    def get_experiment_from_key(self, experiment_key: str) -> Experiment | None:
        return self.experiment_key_map.get(experiment_key)

    def get_experiment_from_id(self, experiment_id: str) -> Experiment | None:
        return self.experiment_id_map.get(experiment_id)

    def get_group(self, group_id: str | None) -> Group | None:
        return self.group_id_map.get(group_id) if group_id is not None else None

    def get_audience(self, audience_id: str) -> Audience | None:
        return self.audience_id_map.get(audience_id)

    def get_event(self, event_key: str) -> Event | None:
        return self.event_key_map.get(event_key)

    def get_feature_from_key(self, feature_key: str) -> FeatureFlag | None:
        return self.feature_key_map.get(feature_key)

    def get_rollout_from_id(self, rollout_id: str) -> Rollout | None:
        return self.rollout_id_map.get(rollout_id)

    def get_holdout(self, holdout_id: str) -> Holdout | None:
        return self.holdout_id_map.get(holdout_id)

    def get_holdouts_for_rule(self, rule_id: str) -> tuple[Holdout, ...]:
        return self.rule_holdouts_map.get(rule_id, ())

    def get_variation_from_key(self, experiment_key: str, variation_key: str) -> Variation | None:
        exp = self.experiment_key_map.get(experiment_key)
        return exp.variations_by_key.get(variation_key) if exp is not None else None

    def get_variation_from_id(self, experiment_key: str, variation_id: str) -> Variation | None:
        exp = self.experiment_key_map.get(experiment_key)
        return exp.variations_by_id.get(variation_id) if exp is not None else None

    def get_attribute_id(self, attribute_key: str) -> str | None:
        """The id to send for ``attribute_key``, or ``None`` when it is not in the datafile.

        A datafile attribute wins over the reserved ``$opt_`` prefix; a ``$opt_``
        key that is not in the datafile is sent with itself as id.
        """
        attribute = self.attribute_key_map.get(attribute_key)
        if attribute is not None:
            return attribute.id
        if attribute_key.startswith(RESERVED_ATTRIBUTE_PREFIX):
            return attribute_key
        return None

    def get_variable_value_for_variation(self, variable: Variable, variation: Variation) -> str | None:
        """The raw value of ``variable`` in ``variation`` (its default when the variation has none).

        ``None`` when the variation's id is not a variation of an experiment or rule
        (holdout variations carry no variable values), as optimizely-sdk does.
        """
        usages = self.variation_variable_usage_map.get(variation.id)
        if usages is None:
            return None
        return usages.get(variable.id, variable.default_value)

    def is_feature_experiment(self, experiment_id: str) -> bool:
        return experiment_id in self.experiment_feature_map


def _inject_everyone_else(
    flag: FeatureFlag, experiment_id_map: dict[str, Experiment], rollout_id_map: Mapping[str, Rollout]
) -> None:
    """Give each feature-rollout (``type: "fr"``) rule of ``flag`` the flag's everyone-else variation.

    A feature rollout's users who are not in its traffic fall through to the
    everyone-else variation, so it is appended with a slice ending at 10 000,
    as optimizely-sdk does.
    """
    rollout = rollout_id_map.get(flag.rollout_id) if flag.rollout_id else None
    if rollout is None or not rollout.experiments or not rollout.experiments[-1].variations:
        return
    everyone_else = rollout.experiments[-1].variations[0]
    everyone_else = Variation(
        everyone_else.id,
        everyone_else.key,
        bool(everyone_else.feature_enabled),
        everyone_else.variable_values,
    )
    for exp_id in flag.experiment_ids:
        rule = experiment_id_map.get(exp_id)
        if rule is None or rule.type != FEATURE_ROLLOUT_TYPE:
            continue
        by_key = dict(rule.variations_by_key)
        by_key[everyone_else.key] = everyone_else
        by_id = dict(rule.variations_by_id)
        by_id[everyone_else.id] = everyone_else
        experiment_id_map[exp_id] = Experiment(
            id=rule.id,
            key=rule.key,
            status=rule.status,
            layer_id=rule.layer_id,
            audience_ids=rule.audience_ids,
            audience_conditions=rule.audience_conditions,
            variations=(*rule.variations, everyone_else),
            variations_by_key=by_key,
            variations_by_id=by_id,
            forced_variations=rule.forced_variations,
            traffic_allocation=(*rule.traffic_allocation, TrafficAllocation(everyone_else.id, 10000)),
            group_id=rule.group_id,
            group_policy=rule.group_policy,
            type=rule.type,
        )
