"""From an OpenFeature evaluation to a flagstream decision and back: no I/O, no state.

The steps, in the order the provider runs them (each may end the evaluation
with an OpenFeature error code, the default value and reason ERROR):

1. the config: none yet -> ``PROVIDER_NOT_READY``;
2. the address: ``flag_key`` or ``flag_key.variable_key`` -> ``FLAG_NOT_FOUND``,
   then the requested type against the flag or variable -> ``TYPE_MISMATCH``;
3. the user: ``targeting_key`` -> ``TARGETING_KEY_MISSING`` / ``INVALID_CONTEXT``;
4. the decision (exactly the one ``user.decide`` makes, impression included);
5. the value, the reason, the variant (variation key) and the flag metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagType, Reason

from flagstream.config.entities import Experiment, FeatureFlag, Variable, VariableType
from flagstream.decide import OptimizelyDecideOption, OptimizelyDecision
from flagstream.decision.results import DecisionSource, FeatureDecision

if TYPE_CHECKING:
    from flagstream.client import Optimizely
    from flagstream.config.project_config import ProjectConfig
    from flagstream.user_context import OptimizelyUserContext

__all__ = ["Address", "Failure", "address", "decide", "flag_metadata", "reason_of", "user_for", "value_of"]

_EXCLUDE_VARIABLES: Final = [OptimizelyDecideOption.EXCLUDE_VARIABLES]
_ENABLED_FLAGS_ONLY: Final = OptimizelyDecideOption.ENABLED_FLAGS_ONLY
_INCLUDE_REASONS: Final = OptimizelyDecideOption.INCLUDE_REASONS

# Enum members looked up once: FlagType.BOOLEAN costs a class-attribute lookup through the
# enum machinery (about 0.3 µs) on every evaluation otherwise.
_BOOLEAN: Final = FlagType.BOOLEAN
_FLOAT: Final = FlagType.FLOAT
_OBJECT: Final = FlagType.OBJECT
_SPLIT: Final = Reason.SPLIT
_TARGETING_MATCH: Final = Reason.TARGETING_MATCH
_DEFAULT: Final = Reason.DEFAULT

# Which variable types each OpenFeature type reads (a float also reads an integer variable).
_VARIABLE_TYPES: Final[Mapping[FlagType, frozenset[str]]] = {
    FlagType.BOOLEAN: frozenset({VariableType.BOOLEAN}),
    FlagType.STRING: frozenset({VariableType.STRING}),
    FlagType.INTEGER: frozenset({VariableType.INTEGER}),
    FlagType.FLOAT: frozenset({VariableType.DOUBLE, VariableType.INTEGER}),
    FlagType.OBJECT: frozenset({VariableType.JSON}),
}


@dataclass(frozen=True, slots=True)
class Failure:
    """Why an evaluation returns the default: an OpenFeature error code and one sentence."""

    code: ErrorCode
    message: str


class Address(NamedTuple):
    """What a key names: the flag itself (``variable`` is None) or one of its variables.

    A NamedTuple (built in C) rather than a frozen dataclass: one is made per evaluation.
    """

    feature: FeatureFlag
    variable: Variable | None


def address(config: ProjectConfig, key: str, flag_type: FlagType) -> Address | Failure:
    """Resolve ``key`` (``flag`` or ``flag.variable``) for a ``flag_type`` evaluation.

    A key that names a flag is that flag, even if it contains a dot; otherwise
    the text after the last dot names a variable of the flag before it. For
    string, integer and float evaluations a bare flag key names the flag's only
    variable; an object evaluation of a bare flag key returns all its variables.
    """
    features = config.feature_key_map
    feature = features.get(key)
    variable: Variable | None = None
    if feature is None:
        flag_key, dot, variable_key = key.rpartition(".")
        feature = features.get(flag_key) if dot else None
        if feature is None:
            return Failure(ErrorCode.FLAG_NOT_FOUND, f'No flag was found for key "{key}".')
        variable = feature.variables.get(variable_key)
        if variable is None:
            return Failure(ErrorCode.FLAG_NOT_FOUND, f'Flag "{flag_key}" has no variable "{variable_key}".')
    elif flag_type is _BOOLEAN:
        return Address(feature, None)  # the common case, first (enum identity is cheaper than ==)
    elif flag_type is not _OBJECT:
        if len(feature.variables) != 1:
            return Failure(
                ErrorCode.TYPE_MISMATCH,
                f'Flag "{key}" has {len(feature.variables)} variables; a {flag_type.lower()} '
                f'evaluation of a bare flag key needs exactly one (use "{key}.<variable_key>").',
            )
        variable = next(iter(feature.variables.values()))
    if variable is not None and variable.type not in _VARIABLE_TYPES[flag_type]:
        return Failure(
            ErrorCode.TYPE_MISMATCH,
            f'Variable "{feature.key}.{variable.key}" is of type {variable.type}, not {flag_type.lower()}.',
        )
    return Address(feature, variable)


def user_for(client: Optimizely, context: EvaluationContext | None) -> OptimizelyUserContext | Failure:
    """The user context of ``context``: ``targeting_key`` is the user id, the rest are attributes.

    Validated as :meth:`Optimizely.create_user_context` validates (which logs
    the same line for a bad id); attribute values pass unchanged, so audiences
    and impressions see what ``create_user_context`` would have given them.
    """
    targeting_key = context.targeting_key if context is not None else None
    if targeting_key is None or targeting_key == "":
        return Failure(ErrorCode.TARGETING_KEY_MISSING, "The evaluation context has no targeting_key.")
    attributes = context.attributes if context is not None else None
    if type(attributes) is not dict and isinstance(attributes, Mapping):
        attributes = dict(attributes)  # the user context copies a dict itself
    user = client.create_user_context(targeting_key, attributes)  # any type may come in: it checks
    if user is None:
        return Failure(
            ErrorCode.INVALID_CONTEXT,
            "The evaluation context cannot be a user context "
            "(targeting_key must be a string and attributes a mapping).",
        )
    return user


def decide(
    client: Optimizely,
    config: ProjectConfig,
    user: OptimizelyUserContext,
    target: Address,
    flag_type: FlagType,
) -> tuple[OptimizelyDecision, FeatureDecision]:
    """``user.decide(flag)`` with the decision service's answer kept (its rule and source).

    The same steps as ``Optimizely._decide_one`` once the flag is known: default
    decide options merged, ``ENABLED_FLAGS_ONLY`` dropped, the impression sent by
    ``_finish_decision``. A boolean evaluation of a flag skips variables (it reads none).
    """
    reads_no_variable = target.variable is None and flag_type is _BOOLEAN
    options = client._merge_options(_EXCLUDE_VARIABLES if reads_no_variable else None)
    if _ENABLED_FLAGS_ONLY in options:
        options = [o for o in options if o != _ENABLED_FLAGS_ONLY]
    made = client._decisions.decide_flag(config, user, target.feature, options)
    decision = client._finish_decision(
        config, user, target.feature.key, made, options, _INCLUDE_REASONS in options
    )
    return decision, made


def value_of(flag_type: FlagType, target: Address, decision: OptimizelyDecision) -> Any:
    """The value to return, or a :class:`Failure` for a variable value that did not parse."""
    variable = target.variable
    if variable is None:
        if flag_type is _BOOLEAN:
            return decision.enabled
        return decision.variables  # an object evaluation of the flag: every variable
    value = decision.variables.get(variable.key)
    if value is None:
        return Failure(
            ErrorCode.PARSE_ERROR,
            f'The value of variable "{target.feature.key}.{variable.key}" is not a valid {variable.type}.',
        )
    if flag_type is _FLOAT:
        return float(value)
    if flag_type is _OBJECT and not isinstance(value, (dict, list)):
        return Failure(
            ErrorCode.TYPE_MISMATCH,
            f'The json variable "{target.feature.key}.{variable.key}" holds a '
            f"{type(value).__name__}, not an object or array.",
        )
    return value


def reason_of(made: FeatureDecision, user_id: str, config: ProjectConfig, feature: FeatureFlag) -> Reason:
    """The OpenFeature reason of a decision.

    SPLIT for an experiment or holdout bucketing, TARGETING_MATCH for a
    whitelisted user or a targeted delivery rule, DEFAULT for the "everyone
    else" rule and for no rule at all (the flag is off for the user).
    """
    rule = made.experiment
    if made.variation is None:
        return _DEFAULT
    if made.source == DecisionSource.HOLDOUT:
        return _SPLIT
    if made.source == DecisionSource.ROLLOUT:
        rollout = config.rollout_id_map.get(feature.rollout_id)
        if (
            rule is not None
            and rollout is not None
            and rollout.experiments
            and rollout.experiments[-1].id == rule.id
        ):
            return _DEFAULT
        return _TARGETING_MATCH
    if isinstance(rule, Experiment):
        if rule.forced_variations.get(user_id) == made.variation.key:
            return _TARGETING_MATCH
        return _SPLIT
    return _TARGETING_MATCH  # a flag-level forced decision


def flag_metadata(
    config: ProjectConfig, made: FeatureDecision, decision: OptimizelyDecision
) -> dict[str, Any]:
    """``flag_key``, ``rule_key``, ``variation_id``, ``source``, ``enabled``, ``revision`` (when known)."""
    metadata: dict[str, Any] = {
        "flag_key": decision.flag_key,
        "enabled": decision.enabled,
        "source": made.source,
        "revision": config.revision,
    }
    if decision.rule_key is not None:
        metadata["rule_key"] = decision.rule_key
    if made.experiment is not None:
        metadata["rule_id"] = made.experiment.id
    if made.variation is not None:
        metadata["variation_id"] = made.variation.id
    return metadata
