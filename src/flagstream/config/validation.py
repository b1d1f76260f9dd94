"""Datafile validation: every problem, each named by its JSON path.

:func:`validate_datafile` walks a parsed datafile once (a plain dict walk, no
JSON-schema engine) and returns a list of messages such as::

    experiments[3].trafficAllocation[0].endOfRange: expected integer
    featureFlags[0].rolloutId: rollout "901" not found

It accepts everything optimizely-sdk 5.7's JSON schema accepts and that the
SDK can actually use, and it also rejects what the schema lets through but the
SDK then crashes on or silently misreads: wrong types in the sections the
schema does not describe (``featureFlags``, ``rollouts``, ``typedAudiences``,
holdouts, condition trees), duplicate ids and keys, and dangling references.
Each of those is a deliberate difference listed in ``docs/compatibility.md``.

A reference to an audience that is not in the datafile is *not* an error:
optimizely-sdk evaluates such an audience as unknown at decision time, and so
does flagstream.

The datafile version is checked separately by :func:`check_version`, because
an unsupported version is its own error
(:class:`~flagstream.errors.UnsupportedDatafileVersionError`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from flagstream import _json
from flagstream.errors import InvalidDatafileError, UnsupportedDatafileVersionError

__all__ = [
    "MAX_CONDITION_DEPTH",
    "SUPPORTED_VERSIONS",
    "check_version",
    "parse_datafile_text",
    "validate_datafile",
    "validate_datafile_text",
]

SUPPORTED_VERSIONS: Final = ("2", "3", "4")
#: Condition trees deeper than this are rejected: evaluating them recursively
#: would exhaust the interpreter's stack (optimizely-sdk crashes on them).
MAX_CONDITION_DEPTH: Final = 100

_OPERATORS: Final = frozenset(("and", "or", "not"))
_UTF8_BOM: Final = b"\xef\xbb\xbf"

_Check = Callable[[object], bool]
_MISSING: Final = object()


def _is_str(v: object) -> bool:
    return isinstance(v, str)


def _is_int(v: object) -> bool:
    # JSON-schema draft 4 (what optimizely-sdk validates with): 1.0 and true are not integers.
    return isinstance(v, int) and not isinstance(v, bool)


def _is_bool(v: object) -> bool:
    return isinstance(v, bool)


def _is_array(v: object) -> bool:
    return isinstance(v, (list, tuple))


def _is_object(v: object) -> bool:
    return isinstance(v, Mapping)


_KINDS: Final[dict[str, _Check]] = {
    "string": _is_str,
    "integer": _is_int,
    "boolean": _is_bool,
    "array": _is_array,
    "object": _is_object,
}


def _type_name(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        return "array"
    if isinstance(v, Mapping):
        return "object"
    return type(v).__name__


def _member(path: str, key: object) -> str:
    """The path of a user-chosen object member (forcedVariations keys)."""
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


class _Walker:
    """Collects problems; one instance per validation."""

    __slots__ = ("errors",)

    def __init__(self) -> None:
        self.errors: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def get(
        self,
        parent: Mapping[str, Any],
        name: str,
        path: str,
        kind: str,
        *,
        required: bool = True,
        nullable: bool = False,
    ) -> Any:
        """``parent[name]`` when present and of ``kind``, else ``None`` (and a message when wrong)."""
        value = parent.get(name, _MISSING)
        if value is _MISSING:
            if required:
                self.add(f"{path}.{name}" if path else name, "missing required field")
            return None
        if value is None and nullable:
            return None
        if not _KINDS[kind](value):
            self.add(
                f"{path}.{name}" if path else name,
                f"expected {kind}{' or null' if nullable else ''}, got {_type_name(value)}",
            )
            return None
        return value

    def items(
        self, parent: Mapping[str, Any], name: str, path: str, *, required: bool = True
    ) -> list[tuple[str, Any]]:
        """The ``(path, element)`` pairs of an array member whose elements must be objects."""
        array = self.get(parent, name, path, "array", required=required)
        out: list[tuple[str, Any]] = []
        for i, element in enumerate(array or ()):
            where = f"{path}.{name}[{i}]" if path else f"{name}[{i}]"
            if _is_object(element):
                out.append((where, element))
            else:
                self.add(where, f"expected object, got {_type_name(element)}")
        return out

    def strings(self, parent: Mapping[str, Any], name: str, path: str, *, required: bool = True) -> list[str]:
        array = self.get(parent, name, path, "array", required=required)
        out: list[str] = []
        for i, element in enumerate(array or ()):
            if isinstance(element, str):
                out.append(element)
            else:
                self.add(f"{path}.{name}[{i}]", f"expected string, got {_type_name(element)}")
        return out

    def unique(self, seen: dict[str, str], value: object, what: str, where: str) -> None:
        if not isinstance(value, str):
            return
        first = seen.get(value)
        if first is None:
            seen[value] = where
        else:
            self.add(where, f'duplicate {what} "{value}" (first at {first})')

    # -- condition trees ---------------------------------------------------

    def tree(self, node: object, path: str, leaf: str, depth: int = 0) -> None:
        """A condition tree: non-empty arrays, an operator only first, leaves of kind ``leaf``."""
        if depth > MAX_CONDITION_DEPTH:
            self.add(path, f"conditions nested deeper than {MAX_CONDITION_DEPTH} levels")
            return
        if _is_array(node):
            assert isinstance(node, (list, tuple))
            if not node:
                self.add(path, "empty condition array")
            elif leaf == "string" and len(node) == 1 and _is_array(node[0]):
                # optimizely-sdk fails to describe such audienceConditions (OptimizelyConfig) and
                # with it the whole client fails to start.
                self.add(path, "array whose only element is an array (write the inner array alone)")
            for i, child in enumerate(node):
                if i == 0 and isinstance(child, str) and child in _OPERATORS:
                    continue
                self.tree(child, f"{path}[{i}]", leaf, depth + 1)
        elif not _KINDS[leaf](node):
            self.add(path, f"expected {leaf} or array, got {_type_name(node)}")
        elif leaf == "object":
            self.condition(node, path)  # type: ignore[arg-type]

    def condition(self, leaf: Mapping[str, Any], path: str) -> None:
        """A leaf condition. optimizely-sdk tolerates odd names and match types (it evaluates
        them as unknown) but crashes on ones it cannot hash (it looks them up in dicts)."""
        unhashable = ["name", "match"]
        if leaf.get("match") == "qualified":
            unhashable.append("value")  # segment names are collected into a set while loading
        for name in unhashable:
            value = leaf.get(name)
            if _is_array(value) or _is_object(value):
                self.add(f"{path}.{name}", f"expected string, got {_type_name(value)}")

    # -- entities ----------------------------------------------------------

    def variations(self, exp: Mapping[str, Any], path: str) -> set[str]:
        ids: dict[str, str] = {}
        keys: dict[str, str] = {}
        for where, var in self.items(exp, "variations", path):
            vid = self.get(var, "id", where, "string")
            vkey = self.get(var, "key", where, "string")
            self.unique(ids, vid, "variation id", f"{where}.id")
            self.unique(keys, vkey, "variation key", f"{where}.key")
            self.get(var, "featureEnabled", where, "boolean", required=False, nullable=True)
            for uwhere, use in self.items(var, "variables", where, required=False):
                self.get(use, "id", uwhere, "string")
                self.get(use, "value", uwhere, "string")
        return set(ids)

    def allocation(self, parent: Mapping[str, Any], path: str, targets: set[str] | None, what: str) -> None:
        for where, slice_ in self.items(parent, "trafficAllocation", path):
            entity = self.get(slice_, "entityId", where, "string")
            self.get(slice_, "endOfRange", where, "integer")
            if targets is not None and entity and entity not in targets:
                self.add(f"{where}.entityId", f'{what} "{entity}" not found')

    def rule_audiences(self, rule: Mapping[str, Any], path: str) -> None:
        self.strings(rule, "audienceIds", path)
        if rule.get("audienceConditions") is not None:
            conditions = rule["audienceConditions"]
            if _is_array(conditions):
                if conditions:  # an empty array means "everyone"
                    self.tree(conditions, f"{path}.audienceConditions", "string")
            else:
                self.add(
                    f"{path}.audienceConditions", f"expected array or null, got {_type_name(conditions)}"
                )

    def experiment(self, exp: Mapping[str, Any], path: str) -> None:
        for name in ("id", "key", "layerId", "status"):
            self.get(exp, name, path, "string")
        variation_ids = self.variations(exp, path)
        self.allocation(exp, path, variation_ids, "variation")
        self.rule_audiences(exp, path)
        forced = self.get(exp, "forcedVariations", path, "object")
        for user, variation_key in (forced or {}).items():
            if not isinstance(variation_key, str):
                self.add(
                    _member(f"{path}.forcedVariations", user),
                    f"expected string, got {_type_name(variation_key)}",
                )
        self.get(exp, "type", path, "string", required=False, nullable=True)

    def holdout(self, holdout: Mapping[str, Any], path: str, seen: dict[str, str], *, local: bool) -> None:
        for name in ("id", "key", "status"):
            self.get(holdout, name, path, "string")
        self.unique(seen, holdout.get("id"), "holdout id", f"{path}.id")
        variation_ids = self.variations(holdout, path)
        self.allocation(holdout, path, variation_ids, "variation")
        self.rule_audiences(holdout, path)
        if local and holdout.get("includedRules") is not None:
            # A global holdout's includedRules is ignored (with a warning) by the SDK.
            self.strings(holdout, "includedRules", path)
        self.get(holdout, "excludeTargetedDeliveries", path, "boolean", required=False, nullable=True)


def validate_datafile(datafile: object) -> list[str]:
    """Every problem in a parsed datafile, each as ``"<json path>: <what is wrong>"``.

    An empty list means the datafile can be used. The version is not judged here
    (see :func:`check_version`) beyond being a string.

    >>> validate_datafile({"version": "4"})[0]
    'projectId: missing required field'
    """
    if not _is_object(datafile):
        return [f"datafile: expected object, got {_type_name(datafile)}"]
    assert isinstance(datafile, Mapping)
    w = _Walker()
    root: Mapping[str, Any] = datafile

    for name in ("projectId", "accountId", "version", "revision"):
        w.get(root, name, "", "string")
    for name in ("sdkKey", "environmentKey", "region"):
        w.get(root, name, "", "string", required=False, nullable=True)
    w.get(root, "anonymizeIP", "", "boolean", required=False)
    w.get(root, "sendFlagDecisions", "", "boolean", required=False)
    w.get(root, "botFiltering", "", "boolean", required=False, nullable=True)

    # Experiments, group members and rollout rules share one id space (the SDK's experiment_id_map).
    experiment_ids: dict[str, str] = {}
    experiment_bodies: dict[str, Mapping[str, Any]] = {}
    testable_ids: set[str] = set()  # what a flag's experimentIds may name: experiments and group members

    def register(exp: Mapping[str, Any], where: str, *, testable: bool) -> None:
        exp_id = exp.get("id")
        if not isinstance(exp_id, str):
            return
        first = experiment_ids.get(exp_id)
        if first is None:
            experiment_ids[exp_id] = where
            experiment_bodies[exp_id] = exp
        elif experiment_bodies[exp_id] != exp:
            # The same experiment listed twice is harmless; two different ones sharing an id are not.
            w.add(f"{where}.id", f'duplicate experiment id "{exp_id}" (first at {first})')
        if testable:
            testable_ids.add(exp_id)

    for where, exp in w.items(root, "experiments", ""):
        w.experiment(exp, where)
        register(exp, where, testable=True)

    group_ids: dict[str, str] = {}
    for where, group in w.items(root, "groups", ""):
        w.unique(group_ids, w.get(group, "id", where, "string"), "group id", f"{where}.id")
        w.get(group, "policy", where, "string")
        members: set[str] = set()
        for mwhere, exp in w.items(group, "experiments", where):
            w.experiment(exp, mwhere)
            register(exp, mwhere, testable=True)
            if isinstance(exp.get("id"), str):
                members.add(exp["id"])
        w.allocation(group, where, members, "experiment")

    rollout_ids: dict[str, str] = {}
    for where, rollout in w.items(root, "rollouts", "", required=False):
        w.unique(rollout_ids, w.get(rollout, "id", where, "string"), "rollout id", f"{where}.id")
        for rwhere, rule in w.items(rollout, "experiments", where):
            w.experiment(rule, rwhere)
            register(rule, rwhere, testable=False)

    audience_ids: dict[str, str] = {}
    for where, audience in w.items(root, "audiences", ""):
        w.unique(audience_ids, w.get(audience, "id", where, "string"), "audience id", f"{where}.id")
        w.get(audience, "name", where, "string")
        conditions = w.get(audience, "conditions", where, "string")
        if conditions is not None:
            try:
                tree = json.loads(conditions)
            except (ValueError, RecursionError) as exc:
                w.add(f"{where}.conditions", f"not valid JSON ({exc})")
            else:
                w.tree(tree, f"{where}.conditions", "object")
    typed_ids: dict[str, str] = {}
    for where, audience in w.items(root, "typedAudiences", "", required=False):
        w.unique(typed_ids, w.get(audience, "id", where, "string"), "audience id", f"{where}.id")
        w.get(audience, "name", where, "string")
        if "conditions" not in audience:
            w.add(f"{where}.conditions", "missing required field")
        else:
            w.tree(audience["conditions"], f"{where}.conditions", "object")

    attribute_ids: dict[str, str] = {}
    attribute_keys: dict[str, str] = {}
    for where, attribute in w.items(root, "attributes", ""):
        w.unique(attribute_ids, w.get(attribute, "id", where, "string"), "attribute id", f"{where}.id")
        w.unique(attribute_keys, w.get(attribute, "key", where, "string"), "attribute key", f"{where}.key")

    event_ids: dict[str, str] = {}
    event_keys: dict[str, str] = {}
    for where, event in w.items(root, "events", ""):
        w.unique(event_ids, w.get(event, "id", where, "string"), "event id", f"{where}.id")
        w.unique(event_keys, w.get(event, "key", where, "string"), "event key", f"{where}.key")
        w.strings(event, "experimentIds", where)  # unknown ids are ignored by the SDK: no check

    flag_ids: dict[str, str] = {}
    flag_keys: dict[str, str] = {}
    for where, flag in w.items(root, "featureFlags", "", required=False):
        w.unique(flag_ids, w.get(flag, "id", where, "string"), "feature flag id", f"{where}.id")
        w.unique(flag_keys, w.get(flag, "key", where, "string"), "feature flag key", f"{where}.key")
        array = w.get(flag, "experimentIds", where, "array")
        for i, exp_id in enumerate(array or ()):
            if not isinstance(exp_id, str):
                w.add(f"{where}.experimentIds[{i}]", f"expected string, got {_type_name(exp_id)}")
            elif exp_id not in testable_ids:
                w.add(f"{where}.experimentIds[{i}]", f'experiment "{exp_id}" not found')
        rollout_id = w.get(flag, "rolloutId", where, "string")
        if rollout_id and rollout_id not in rollout_ids:
            w.add(f"{where}.rolloutId", f'rollout "{rollout_id}" not found')
        variable_ids: dict[str, str] = {}
        variable_keys: dict[str, str] = {}
        for vwhere, variable in w.items(flag, "variables", where):
            w.unique(variable_ids, w.get(variable, "id", vwhere, "string"), "variable id", f"{vwhere}.id")
            w.unique(variable_keys, w.get(variable, "key", vwhere, "string"), "variable key", f"{vwhere}.key")
            w.get(variable, "type", vwhere, "string")
            w.get(variable, "defaultValue", vwhere, "string")
            w.get(variable, "subType", vwhere, "string", required=False, nullable=True)

    holdout_ids: dict[str, str] = {}
    for section in ("holdouts", "localHoldouts"):
        for where, holdout in w.items(root, section, "", required=False):
            w.holdout(holdout, where, holdout_ids, local=section == "localHoldouts")

    for where, integration in w.items(root, "integrations", "", required=False):
        w.get(integration, "key", where, "string")
        w.get(integration, "host", where, "string", required=False)
        w.get(integration, "publicKey", where, "string", required=False)

    return w.errors


def check_version(datafile: Mapping[str, Any]) -> str:
    """Return the datafile's version, or raise if flagstream does not read it.

    Raises :class:`~flagstream.errors.UnsupportedDatafileVersionError` (with
    optimizely-sdk's message) unless ``version`` is ``"2"``, ``"3"`` or ``"4"``.
    """
    version = datafile.get("version")
    if version not in SUPPORTED_VERSIONS:
        raise UnsupportedDatafileVersionError(
            f'This version of the Python SDK does not support the given datafile version: "{version}".'
        )
    return str(version)


def parse_datafile_text(data: str | bytes | bytearray | memoryview) -> Mapping[str, Any]:
    """Parse datafile JSON text into a mapping, or raise :class:`InvalidDatafileError`.

    The error's ``errors`` hold one message with the line and column of the
    problem. A UTF-8 byte order mark is accepted before bytes (optimizely-sdk
    decodes bytes with ``json.loads``, which skips it) but not before ``str``.
    """
    raw = bytes(data) if isinstance(data, (bytearray, memoryview)) else data
    if isinstance(raw, bytes) and raw.startswith(_UTF8_BOM):
        raw = raw[len(_UTF8_BOM) :]
    try:
        parsed = _json.loads(raw)
    except _json.JSONDecodeError:
        parsed = _slow_parse(raw)
    if not _is_object(parsed):
        message = f"datafile: expected a JSON object, got {_type_name(parsed)}"
        raise InvalidDatafileError(message, (message,))
    return parsed  # type: ignore[no-any-return]


def _slow_parse(raw: str | bytes) -> Any:
    """The standard library's parser: it reads what orjson refuses (NaN, huge integers)
    as optimizely-sdk does, and words syntax errors with a line and column."""
    if isinstance(raw, str) and raw.startswith("\ufeff"):
        message = (
            "datafile: line 1 column 1: unexpected byte order mark (BOM); "
            "read the file with encoding='utf-8-sig' or pass bytes"
        )
        raise InvalidDatafileError(message, (message,))
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        message = f"datafile: byte {exc.start}: not valid UTF-8"
        raise InvalidDatafileError(message, (message,)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        detail = exc.msg
        if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
            # The text ends inside a value: the usual cause is a cut-off download or write.
            detail = f"{detail} (truncated?)"
        message = f"datafile: line {exc.lineno} column {exc.colno}: {detail}"
        raise InvalidDatafileError(message, (message,)) from None
    except RecursionError:
        message = "datafile: nested too deeply to parse"
        raise InvalidDatafileError(message, (message,)) from None


def validate_datafile_text(data: str | bytes | bytearray | memoryview) -> list[str]:
    """Every problem in datafile JSON text: a syntax error (with line and column),
    a non-object top level, or the problems :func:`validate_datafile` finds.

    >>> validate_datafile_text('{"version": "4",')
    ['datafile: line 1 column 17: Expecting property name enclosed in double quotes (truncated?)']
    """
    try:
        parsed = parse_datafile_text(data)
    except InvalidDatafileError as exc:
        return list(exc.errors)
    return validate_datafile(parsed)
