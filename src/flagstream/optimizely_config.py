"""``OptimizelyConfig``: a read-only description of a datafile for application code.

``client.get_optimizely_config()`` returns one, with the same fields and
values as optimizely-sdk's ``OptimizelyConfigService(config).get_config()``:
experiments by key, flags with their experiment rules and delivery rules,
variables merged per variation, attributes, events, audiences, and each
rule's audiences written as a sentence (``"us" AND ("adults" OR "kids")``).

It is built from the datafile text the config was made from, walking it in
the same order as optimizely-sdk so that the same entries win where a
datafile reuses a key, and reproducing what the SDK derives while loading: a
string variable with ``subType: "json"`` has type ``json``; a feature-rollout
experiment (``type: "fr"``) also lists its flag's everyone-else variation;
typed audiences' conditions are given as JSON text. Delivery rules show the
variables' default values, as in optimizely-sdk.

:func:`build_optimizely_config` caches the result per config, so repeated
calls return the same object.
"""

from __future__ import annotations

import copy
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from flagstream._logging import get_logger

if TYPE_CHECKING:
    from flagstream.config.project_config import ProjectConfig

__all__ = [
    "OptimizelyAttribute",
    "OptimizelyAudience",
    "OptimizelyConfig",
    "OptimizelyEvent",
    "OptimizelyExperiment",
    "OptimizelyFeature",
    "OptimizelyVariable",
    "OptimizelyVariation",
    "build_optimizely_config",
    "describe_audience_conditions",
]

# The value classes below are frozen but keep a __dict__ (no slots): code written for
# optimizely-sdk reads these objects with vars() / __dict__, e.g. to serialize them.
_OPERATORS: Final = ("and", "or", "not")
_DUMMY_AUDIENCE: Final = "$opt_dummy_audience"
_FEATURE_ROLLOUT: Final = "fr"


@dataclass(frozen=True)
class OptimizelyVariable:
    """A feature variable; ``value`` is the raw string from the datafile."""

    id: str
    key: str
    type: str
    value: Any


@dataclass(frozen=True)
class OptimizelyVariation:
    id: str
    key: str
    feature_enabled: bool | None
    variables_map: dict[str, OptimizelyVariable]


@dataclass(frozen=True)
class OptimizelyExperiment:
    """An experiment or rule; ``audiences`` is its audience conditions as a sentence."""

    id: str
    key: str
    variations_map: dict[str, OptimizelyVariation]
    audiences: str = ""


@dataclass(frozen=True)
class OptimizelyFeature:
    """A flag. ``experiments_map`` is deprecated in optimizely-sdk in favour of the rule lists."""

    id: str
    key: str
    experiments_map: dict[str, OptimizelyExperiment]
    variables_map: dict[str, OptimizelyVariable]
    delivery_rules: list[OptimizelyExperiment] = field(default_factory=list)
    experiment_rules: list[OptimizelyExperiment] = field(default_factory=list)


@dataclass(frozen=True)
class OptimizelyAttribute:
    id: str
    key: str


@dataclass(frozen=True)
class OptimizelyEvent:
    id: str
    key: str
    experiment_ids: list[str]


@dataclass(frozen=True)
class OptimizelyAudience:
    """An audience; ``conditions`` is JSON text (typed audiences too)."""

    id: str | None
    name: str | None
    conditions: Any


@dataclass(frozen=True)
class OptimizelyConfig:
    """The datafile, described for application code.

    >>> from flagstream.config.project_config import ProjectConfig
    >>> config = ProjectConfig.from_datafile('{"version": "4", "accountId": "1", "projectId": "2",'
    ...     ' "revision": "7", "experiments": [], "events": [], "attributes": [], "audiences": [],'
    ...     ' "groups": []}')
    >>> optimizely_config = build_optimizely_config(config)
    >>> optimizely_config.revision, optimizely_config.sdk_key, optimizely_config.features_map
    ('7', '', {})
    """

    revision: str
    experiments_map: dict[str, OptimizelyExperiment]
    features_map: dict[str, OptimizelyFeature]
    _datafile: str | None = field(default=None, repr=False)
    sdk_key: str = ""
    environment_key: str = ""
    attributes: list[OptimizelyAttribute] = field(default_factory=list)
    events: list[OptimizelyEvent] = field(default_factory=list)
    audiences: list[OptimizelyAudience] = field(default_factory=list)

    def get_datafile(self) -> str | None:
        """The datafile JSON text this config was built from."""
        return self._datafile


# -- audience sentences ------------------------------------------------------------------


def _is_operator(item: object) -> bool:
    return isinstance(item, str) and item in _OPERATORS


def describe_audience_conditions(conditions: object, names: Mapping[str, str]) -> str:
    """Audience conditions as optimizely-sdk writes them: ids replaced by quoted names.

    An id without a name is written as itself. The wording (where the operator
    goes, the spaces, the parentheses) is optimizely-sdk's, quirks included.

    >>> describe_audience_conditions(["and", "1", ["or", "2", "3"]], {"1": "us", "2": "a", "3": "b"})
    '"us" AND ("a" OR "b")'
    >>> describe_audience_conditions(["not", "1"], {"1": "us"})
    'NOT "us"'
    """
    if conditions is None or not isinstance(conditions, (list, tuple)):
        return ""
    return _describe(conditions, names)


def _quoted(audience_id: Any, names: Mapping[str, str]) -> str:
    name = names.get(audience_id, audience_id) if isinstance(audience_id, str) else str(audience_id)
    return f'"{name}"'


def _describe(conditions: Sequence[Any], names: Mapping[str, str]) -> str:
    count = len(conditions)
    if count == 0:
        return ""
    first = conditions[0]
    if count == 1:
        # A lone operator says nothing; a lone nested array cannot be described
        # (optimizely-sdk fails on it; the validator rejects it), so describe its content.
        if _is_operator(first):
            return ""
        return _describe(first, names) if isinstance(first, (list, tuple)) else _quoted(first, names)
    second = conditions[1]
    if (
        count == 2
        and _is_operator(first)
        and not isinstance(second, (list, tuple))
        and not _is_operator(second)
    ):
        return f"NOT {_quoted(second, names)}" if first == "not" else _quoted(second, names)
    # The running operator (OR until one is seen) joins ids; an array is parenthesized,
    # and only the last element is preceded by the operator.
    operator = "OR"
    out: list[str] = []
    for index, item in enumerate(conditions):
        last = index == count - 1
        if _is_operator(item):
            operator = item.upper()
        elif isinstance(item, (list, tuple)):
            inner = _describe(item, names)
            out.append(f"{operator} ({inner})" if last else f"({inner}) ")
        elif last:
            out.append(f"{operator} {_quoted(item, names)}")
        elif index < count - 2:
            out.append(f"{_quoted(item, names)} {operator} ")
        else:
            out.append(f"{_quoted(item, names)} ")
    return "".join(out)


# -- building ------------------------------------------------------------------------------


class _Builder:
    """Walks the raw datafile once, in optimizely-sdk's order."""

    def __init__(self, raw: Mapping[str, Any], logger: Any) -> None:
        self.raw = raw
        self.logger = logger
        self.flags: list[Mapping[str, Any]] = list(raw.get("featureFlags") or ())
        self.rollouts: list[Mapping[str, Any]] = list(raw.get("rollouts") or ())
        # Variable types as the SDK sees them after loading (string + subType json -> json).
        self.flag_of_experiment: dict[str, Mapping[str, Any]] = {}
        self.defaults_by_flag_key: dict[str, dict[str, OptimizelyVariable]] = {}
        self.defaults_by_flag_key_and_id: dict[str, dict[str, OptimizelyVariable]] = {}
        self.defaults_by_flag_id: dict[str, dict[str, OptimizelyVariable]] = {}
        for flag in self.flags:
            for exp_id in flag.get("experimentIds") or ():
                self.flag_of_experiment[exp_id] = flag
            by_key: dict[str, OptimizelyVariable] = {}
            by_id: dict[str, OptimizelyVariable] = {}
            for variable in flag.get("variables") or ():
                vtype = variable["type"]
                if vtype == "string" and variable.get("subType", "") == "json":
                    vtype = "json"
                described = OptimizelyVariable(
                    variable["id"], variable["key"], vtype, variable["defaultValue"]
                )
                by_key[variable["key"]] = described
                by_id[variable["id"]] = described
            self.defaults_by_flag_id[flag["id"]] = by_key
            self.defaults_by_flag_key[flag["key"]] = by_key
            self.defaults_by_flag_key_and_id[flag["key"]] = by_id
        self.extra_variations = self._everyone_else_for_feature_rollouts()
        self.audiences = self._audiences()
        self.audience_names = {
            a.id: a.name if a.name is not None else "" for a in self.audiences if a.id is not None
        }

    def _everyone_else_for_feature_rollouts(self) -> dict[str, list[dict[str, Any]]]:
        """Variations the SDK appends to ``type: "fr"`` experiments while loading, by experiment id."""
        experiments: dict[str, Mapping[str, Any]] = {}
        for exp in self.raw.get("experiments") or ():
            experiments[exp["id"]] = exp
        for rollout in self.rollouts:
            for rule in rollout.get("experiments") or ():
                experiments[rule["id"]] = rule
        for group in self.raw.get("groups") or ():
            for exp in group.get("experiments") or ():
                experiments[exp["id"]] = exp
        rollouts = {r["id"]: r for r in self.rollouts}
        flags_by_key = {f["key"]: f for f in self.flags}  # the SDK walks flags by key: the last one wins
        extra: dict[str, list[dict[str, Any]]] = {}
        for flag in flags_by_key.values():
            rollout_id = flag.get("rolloutId")
            rules = (rollouts[rollout_id].get("experiments") or []) if rollout_id else []
            if not rules or not rules[-1].get("variations"):
                continue
            source = rules[-1]["variations"][0]
            everyone_else = {
                "id": source["id"],
                "key": source["key"],
                "featureEnabled": bool(source.get("featureEnabled", False)),
                "variables": source.get("variables") or [],
            }
            for exp_id in flag.get("experimentIds") or ():
                if experiments[exp_id].get("type") == _FEATURE_ROLLOUT:
                    extra.setdefault(exp_id, []).append(everyone_else)
        return extra

    def _audiences(self) -> list[OptimizelyAudience]:
        out = []
        typed_ids = set()
        for audience in self.raw.get("typedAudiences") or ():
            # The SDK stores typed conditions as JSON text while loading; json.dumps is its wording.
            out.append(
                OptimizelyAudience(
                    audience.get("id"), audience.get("name"), json.dumps(audience["conditions"])
                )
            )
            typed_ids.add(audience.get("id"))
        for audience in self.raw.get("audiences") or ():
            audience_id = audience.get("id")
            if audience_id not in typed_ids and audience_id != _DUMMY_AUDIENCE:
                out.append(OptimizelyAudience(audience_id, audience.get("name"), audience.get("conditions")))
        return out

    def variables(
        self, experiment: Mapping[str, Any], variation: Mapping[str, Any], flag_id: str | None
    ) -> dict[str, OptimizelyVariable]:
        flag = self.flag_of_experiment.get(experiment["id"])
        if flag_id:
            # Delivery rules: the flag's defaults, whatever the variation sets (as optimizely-sdk).
            return copy.copy(self.defaults_by_flag_id[flag_id])
        if flag is None:
            return {}
        merged = copy.copy(self.defaults_by_flag_key[flag["key"]])
        if variation.get("featureEnabled"):
            by_id = self.defaults_by_flag_key_and_id[flag["key"]]
            for usage in variation.get("variables", []) or ():
                default = by_id.get(usage["id"])
                if default is not None:
                    merged[default.key] = OptimizelyVariable(
                        default.id, default.key, default.type, usage["value"]
                    )
        return merged

    def experiment(self, exp: Mapping[str, Any], flag_id: str | None = None) -> OptimizelyExperiment:
        variations: dict[str, OptimizelyVariation] = {}
        for variation in [*(exp.get("variations") or ()), *self.extra_variations.get(exp["id"], ())]:
            variations[variation["key"]] = OptimizelyVariation(
                variation["id"],
                variation["key"],
                variation.get("featureEnabled", None),
                self.variables(exp, variation, flag_id),
            )
        audiences = describe_audience_conditions(exp.get("audienceConditions", []), self.audience_names)
        return OptimizelyExperiment(exp["id"], exp["key"], variations, audiences)

    def build(self, datafile: str) -> OptimizelyConfig:
        raw = self.raw
        by_key: dict[str, OptimizelyExperiment] = {}
        by_id: dict[str, OptimizelyExperiment] = {}
        members = [exp for group in raw.get("groups") or () for exp in group.get("experiments") or ()]
        for exp in [*(raw.get("experiments") or ()), *members]:
            if exp["key"] in by_key:
                self.logger.warning(f"Duplicate experiment keys found in datafile: {exp['key']}")
            described = self.experiment(exp)
            by_key[exp["key"]] = described
            by_id[exp["id"]] = described

        features: dict[str, OptimizelyFeature] = {}
        for flag in self.flags:
            rollout = next((r for r in self.rollouts if r.get("id") == flag.get("rolloutId")), None)
            delivery = [
                self.experiment(rule, flag["id"]) for rule in (rollout or {}).get("experiments") or ()
            ]
            tests = [by_id[exp_id] for exp_id in flag.get("experimentIds") or ()]
            features[flag["key"]] = OptimizelyFeature(
                flag["id"],
                flag["key"],
                {t.key: t for t in tests},
                self.defaults_by_flag_key[flag["key"]],
                delivery,
                tests,
            )

        return OptimizelyConfig(
            revision=raw.get("revision"),  # type: ignore[arg-type]
            experiments_map=by_key,
            features_map=features,
            _datafile=datafile,
            sdk_key=raw.get("sdkKey") or "",
            environment_key=raw.get("environmentKey") or "",
            attributes=[OptimizelyAttribute(a["id"], a["key"]) for a in raw.get("attributes") or ()],
            events=[OptimizelyEvent(e["id"], e["key"], e["experimentIds"]) for e in raw.get("events") or ()],
            audiences=self.audiences,
        )


_CACHE_SIZE: Final = 4
_cache: OrderedDict[int, tuple[ProjectConfig, OptimizelyConfig | None]] = OrderedDict()
_cache_lock = threading.Lock()


def build_optimizely_config(
    project_config: ProjectConfig, logger: object | None = None
) -> OptimizelyConfig | None:
    """The :class:`OptimizelyConfig` of ``project_config``, built once and cached.

    Returns ``None`` (and logs one line) only when the datafile, loaded with
    ``skip_json_validation``, has a shape that cannot be described.
    """
    key = id(project_config)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] is project_config:
            _cache.move_to_end(key)
            return hit[1]
    log = get_logger(logger)
    text = project_config.datafile
    try:
        raw = json.loads(text[1:] if text.startswith("\ufeff") else text)
        built: OptimizelyConfig | None = _Builder(raw, log).build(text)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as exc:
        log.error(f"Could not describe the datafile (get_optimizely_config): {type(exc).__name__}: {exc}")
        built = None
    with _cache_lock:
        # Holding the config keeps its id from being reused while it is a key.
        _cache[key] = (project_config, built)
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return built
