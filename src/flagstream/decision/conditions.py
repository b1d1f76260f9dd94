"""Custom-attribute conditions: one audience leaf compiled into a fast closure.

A leaf is ``{"type", "name", "match", "value"}``. It is compiled once per
config into ``leaf(attributes, trace) -> True | False | None`` where ``None``
means UNKNOWN (three-valued logic). The rules are optimizely-sdk 5.7's:

* the condition ``type`` must be ``custom_attribute`` or
  ``third_party_dimension``; a missing ``match`` means ``exact``;
* except for ``exists`` and ``qualified``, a missing attribute or a ``None``
  value is UNKNOWN (logged at debug level);
* numbers are ints and floats but never bools, and a number is only usable
  when finite and within ``[-2**53, 2**53]``;
* ``exact`` compares strings with strings, bools with bools, numbers with
  numbers; anything else is UNKNOWN with a warning naming the value's type;
* ``semver_*`` compares dotted versions with pre-release (``-``) and build
  (``+``) suffixes, see :func:`compare_versions`;
* ``qualified`` (ODP segments, out of scope) is False for every user.

Log lines carry optimizely's texts and the condition as JSON; they are only
formatted when their level is on.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Mapping
from numbers import Integral
from typing import Final

from flagstream.decision import messages as msg
from flagstream.decision._trace import Trace
from flagstream.decision.semver import compare_versions, split_version

__all__ = [
    "CONDITION_TYPES",
    "MATCH_TYPES",
    "LeafEvaluator",
    "compare_versions",
    "compile_leaf",
    "is_finite_number",
    "split_version",
]

LeafEvaluator = Callable[[Mapping[str, object], Trace], "bool | None"]

CONDITION_TYPES: Final = ("custom_attribute", "third_party_dimension")
MATCH_TYPES: Final = frozenset(
    {
        "exact",
        "exists",
        "gt",
        "ge",
        "lt",
        "le",
        "semver_eq",
        "semver_ge",
        "semver_gt",
        "semver_le",
        "semver_lt",
        "substring",
        "qualified",
    }
)
_MAX_ABS: Final = 2**53
_MISSING: Final = object()


def is_number(value: object) -> bool:
    """True for ints and floats (and other integral numbers) that are not bools."""
    tp = type(value)
    if tp is int or tp is float:
        return True
    return isinstance(value, (Integral, float)) and not isinstance(value, bool)


def is_finite_number(value: object) -> bool:
    """True for a number (not a bool) that is finite and within ``[-2**53, 2**53]``."""
    tp = type(value)
    if tp is int:
        return -_MAX_ABS <= value <= _MAX_ABS  # type: ignore[operator]
    if tp is float:
        return math.isfinite(value) and abs(value) <= _MAX_ABS  # type: ignore[arg-type]
    if not isinstance(value, (Integral, float)) or isinstance(value, bool):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    # Only true ints and floats have the 2**53 bound applied (as the reference does).
    return not (isinstance(value, (int, float)) and abs(value) > _MAX_ABS)


def _is_exact_type(value: object) -> bool:
    return isinstance(value, (str, Integral, float))


def _same_type(a: object, b: object) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return True
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b)
    return isinstance(a, (Integral, float)) and isinstance(b, (Integral, float))


# --- compilation -------------------------------------------------------------------------------


class _LeafJson:
    """The condition as optimizely logs it, rendered on first use."""

    __slots__ = ("_cond", "_text")

    def __init__(self, cond: tuple[object, object, object, object]) -> None:
        self._cond = cond
        self._text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            name, value, ctype, match = self._cond
            try:
                self._text = json.dumps({"name": name, "value": value, "type": ctype, "match": match})
            except (TypeError, ValueError):
                self._text = repr({"name": name, "value": value, "type": ctype, "match": match})
        return self._text


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def compile_leaf(cond: tuple[object, object, object, object]) -> LeafEvaluator:
    """Compile one condition ``(name, value, type, match)`` into an evaluator."""
    name, value, ctype, match = cond
    text = _LeafJson(cond)

    if ctype not in CONDITION_TYPES:

        def unknown_type(attrs: Mapping[str, object], t: Trace) -> bool | None:
            if t.warn:
                t.logger.warning(msg.UNKNOWN_CONDITION_TYPE.format(text))
            return None

        return unknown_type

    if match is None:
        match = "exact"
    if not _hashable(match) or match not in MATCH_TYPES:

        def unknown_match(attrs: Mapping[str, object], t: Trace) -> bool | None:
            if t.warn:
                t.logger.warning(msg.UNKNOWN_MATCH_TYPE.format(text))
            return None

        return unknown_match

    if match == "exists":
        if not _hashable(name):
            return lambda attrs, t: False

        def exists(attrs: Mapping[str, object], t: Trace) -> bool | None:
            return attrs.get(name) is not None  # type: ignore[call-overload]

        return exists

    if match == "qualified":
        # ODP segments are out of scope: no user is qualified for any segment.
        if isinstance(value, str):
            return lambda attrs, t: False
        return _unknown_value(text)

    if not _hashable(name):
        return lambda attrs, t: None
    key: str = name  # type: ignore[assignment]
    body = _match_body(str(match), value, key, text)

    def leaf(attrs: Mapping[str, object], t: Trace) -> bool | None:
        user_value = attrs.get(key, _MISSING)
        if user_value is _MISSING:
            if t.debug:
                t.logger.debug(msg.MISSING_ATTRIBUTE_VALUE.format(text, key))
            return None
        if user_value is None:
            if t.debug:
                t.logger.debug(msg.NULL_ATTRIBUTE_VALUE.format(text, key))
            return None
        return body(user_value, t)

    return _fast_leaf(str(match), value, key, leaf) or leaf


def _fast_leaf(match: str, cv: object, key: str, slow: LeafEvaluator) -> LeafEvaluator | None:
    """A one-call evaluator for the common case (a well-typed attribute), deferring to ``slow`` otherwise.

    The fast paths only answer when the generic path would reach the plain
    comparison without logging anything; every other case goes to ``slow``.
    """
    if match == "exact":
        if type(cv) is str:
            text_value: str = cv

            def exact_str(attrs: Mapping[str, object], t: Trace) -> bool | None:
                v = attrs.get(key)
                if type(v) is str:
                    return v == text_value
                return slow(attrs, t)

            return exact_str
        if type(cv) is bool:
            flag_value: bool = cv

            def exact_bool(attrs: Mapping[str, object], t: Trace) -> bool | None:
                v = attrs.get(key)
                if v is True or v is False:
                    return v is flag_value
                return slow(attrs, t)

            return exact_bool
    if match in ("exact", "gt", "ge", "lt", "le") and type(cv) in (int, float) and is_finite_number(cv):
        number: float = cv  # type: ignore[assignment]
        compare = {
            "exact": operator.eq,
            "gt": operator.gt,
            "ge": operator.ge,
            "lt": operator.lt,
            "le": operator.le,
        }[match]

        def numeric(attrs: Mapping[str, object], t: Trace) -> bool | None:
            v = attrs.get(key)
            tp = type(v)
            # NaN and infinities fail the range test and take the slow path (which logs).
            if (tp is int or tp is float) and -_MAX_ABS <= v <= _MAX_ABS:  # type: ignore[operator]
                return compare(v, number)  # type: ignore[arg-type,no-any-return]
            return slow(attrs, t)

        return numeric
    if match == "substring" and type(cv) is str:
        needle: str = cv

        def substring(attrs: Mapping[str, object], t: Trace) -> bool | None:
            v = attrs.get(key)
            if type(v) is str:
                return needle in v
            return slow(attrs, t)

        return substring
    return None


def _unknown_value(text: _LeafJson) -> LeafEvaluator:
    def unknown_value(attrs: Mapping[str, object], t: Trace) -> bool | None:
        if t.warn:
            t.logger.warning(msg.UNKNOWN_CONDITION_VALUE.format(text))
        return None

    return unknown_value


_Body = Callable[[object, Trace], "bool | None"]


def _unexpected(t: Trace, text: _LeafJson, user_value: object, key: str) -> None:
    if t.warn:
        t.logger.warning(msg.UNEXPECTED_TYPE.format(text, type(user_value), key))


def _infinite(t: Trace, text: _LeafJson, key: str) -> None:
    if t.warn:
        t.logger.warning(msg.INFINITE_ATTRIBUTE_VALUE.format(text, key))


def _match_body(match: str, cv: object, key: str, text: _LeafJson) -> _Body:
    """The part of a leaf that runs once the attribute is present and not None."""

    def bad_condition_value(user_value: object, t: Trace) -> bool | None:
        if t.warn:
            t.logger.warning(msg.UNKNOWN_CONDITION_VALUE.format(text))
        return None

    if match == "exact":
        if not _is_exact_type(cv) or (is_number(cv) and not is_finite_number(cv)):
            return bad_condition_value
        if isinstance(cv, str):

            def exact_str(user_value: object, t: Trace) -> bool | None:
                if isinstance(user_value, str):
                    return cv == user_value
                _unexpected(t, text, user_value, key)
                return None

            return exact_str
        if isinstance(cv, bool):

            def exact_bool(user_value: object, t: Trace) -> bool | None:
                if type(user_value) is bool:
                    return cv is user_value
                _unexpected(t, text, user_value, key)
                return None

            return exact_bool

        def exact_number(user_value: object, t: Trace) -> bool | None:
            if not is_number(user_value):
                _unexpected(t, text, user_value, key)
                return None
            if not is_finite_number(user_value):
                _infinite(t, text, key)
                return None
            return bool(cv == user_value)

        return exact_number

    if match in ("gt", "ge", "lt", "le"):
        if not is_finite_number(cv):
            return bad_condition_value
        target: float = cv  # type: ignore[assignment]

        def numeric(user_value: object, t: Trace) -> bool | None:
            if not is_number(user_value):
                _unexpected(t, text, user_value, key)
                return None
            if not is_finite_number(user_value):
                _infinite(t, text, key)
                return None
            number: float = user_value  # type: ignore[assignment]
            if match == "gt":
                return bool(number > target)
            if match == "ge":
                return bool(number >= target)
            if match == "lt":
                return bool(number < target)
            return bool(number <= target)

        return numeric

    if not isinstance(cv, str):
        return bad_condition_value
    target_text: str = cv

    if match == "substring":

        def substring(user_value: object, t: Trace) -> bool | None:
            if isinstance(user_value, str):
                return target_text in user_value
            _unexpected(t, text, user_value, key)
            return None

        return substring

    # semver_*: accept = which comparison results mean True
    accept = {
        "semver_eq": (0,),
        "semver_gt": (1,),
        "semver_ge": (0, 1),
        "semver_lt": (-1,),
        "semver_le": (-1, 0),
    }[match]

    def semver(user_value: object, t: Trace) -> bool | None:
        if not isinstance(user_value, str):
            _unexpected(t, text, user_value, key)
            return None
        result = compare_versions(target_text, user_value)
        if result is None:
            if t.warn and (split_version(target_text) is None or split_version(user_value) is None):
                t.logger.warning(msg.INVALID_ATTRIBUTE_FORMAT)
            return None
        return result in accept

    return semver
