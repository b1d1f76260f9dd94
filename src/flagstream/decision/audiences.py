"""Audience evaluation: condition trees, audience-id trees and the experiment-level verdict.

Two kinds of tree, both with optimizely's three-valued logic (True, False,
None = UNKNOWN): ``and`` is False if any child is False, else UNKNOWN if any
child is UNKNOWN, else True; ``or`` mirrors it; ``not`` negates its first
child and is UNKNOWN without one; a list that does not start with an
operator is an implicit ``or``.

* An audience's ``conditions`` tree has condition leaves (dicts). It is
  compiled once per config by :func:`compile_conditions` into one closure.
* An experiment's ``audienceConditions`` tree (or its legacy ``audienceIds``
  list, an implicit ``or``) has audience-id leaves. :func:`compile_audience_tree`
  turns it into a closure over the compiled audiences.

:func:`user_meets_audiences` gives the verdict for an experiment, rule or
holdout: no audiences means everyone; UNKNOWN counts as not meeting them.
Its two reasons (evaluating, result) carry optimizely's exact texts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from flagstream.decision import messages as msg
from flagstream.decision._trace import Trace
from flagstream.decision.conditions import LeafEvaluator, compile_leaf

__all__ = [
    "OPERATORS",
    "AudienceTree",
    "compile_audience_tree",
    "compile_conditions",
    "conditions_json",
    "user_meets_audiences",
]

OPERATORS: Final = ("and", "or", "not")

Node = Callable[[Mapping[str, object], Trace], "bool | None"]


def _always(value: bool | None) -> Node:
    return lambda attrs, t: value


def _combine(op: str, children: list[Node]) -> Node:
    if op == "not":
        if not children:
            return _always(None)
        child = children[0]

        def not_(attrs: Mapping[str, object], t: Trace) -> bool | None:
            result = child(attrs, t)
            return None if result is None else not result

        return not_
    # One child passes its verdict through unchanged under both and/or.
    if len(children) == 1:
        return children[0]
    if op == "and":
        if not children:
            return _always(True)
        nodes = tuple(children)

        def and_(attrs: Mapping[str, object], t: Trace) -> bool | None:
            unknown = False
            for node in nodes:
                result = node(attrs, t)
                if result is False:
                    return False
                if result is None:
                    unknown = True
            return None if unknown else True

        return and_
    if not children:
        return _always(False)
    nodes = tuple(children)

    def or_(attrs: Mapping[str, object], t: Trace) -> bool | None:
        unknown = False
        for node in nodes:
            result = node(attrs, t)
            if result is True:
                return True
            if result is None:
                unknown = True
        return None if unknown else False

    return or_


def _is_operator(head: object) -> bool:
    return isinstance(head, str) and head in OPERATORS


def _compile_tree(tree: object, leaf: Callable[[object], Node]) -> Node:
    if isinstance(tree, list):
        if not tree:
            # The reference fails with an IndexError on a nested empty list; UNKNOWN here.
            return _always(None)
        head = tree[0]
        if _is_operator(head):
            return _combine(head, [_compile_tree(child, leaf) for child in tree[1:]])
        return _combine("or", [_compile_tree(child, leaf) for child in tree])
    return leaf(tree)


# --- one audience's conditions ------------------------------------------------------------------


def _index_objects(node: object, conditions: list[tuple[object, object, object, object]]) -> object:
    """Replace every JSON object by its index, numbering them as optimizely's decoder does.

    The reference decodes legacy condition strings with a JSON ``object_hook``
    that turns each object, innermost first, into its position in a condition
    list. So a condition leaf becomes an int, and an object nested inside a
    leaf (say as its ``value``) also becomes an int and consumes an index. We
    reproduce that numbering so odd datafiles evaluate exactly alike.
    """
    if isinstance(node, dict):
        decoded = {k: _index_objects(v, conditions) for k, v in node.items()}
        conditions.append(
            (decoded.get("name"), decoded.get("value"), decoded.get("type"), decoded.get("match"))
        )
        return len(conditions) - 1
    if isinstance(node, (list, tuple)):
        return [_index_objects(child, conditions) for child in node]
    return node


def compile_conditions(conditions: object) -> Node:
    """Compile an audience's parsed ``conditions`` (nested lists, condition dicts) into one closure."""
    table: list[tuple[object, object, object, object]] = []
    structure = _index_objects(conditions, table)
    compiled: list[LeafEvaluator] = [compile_leaf(cond) for cond in table]

    def leaf(index: object) -> Node:
        # A leaf is an index into the condition table; bools index too (True is 1),
        # as do negative ints, exactly like the reference's list indexing.
        if isinstance(index, int) and -len(compiled) <= index < len(compiled):
            return compiled[index]
        return _always(None)

    return _compile_tree(structure, leaf)


def conditions_json(conditions: object) -> str:
    """The conditions as JSON text, as optimizely's debug line shows typed audiences."""
    try:
        return json.dumps(conditions)
    except (TypeError, ValueError):
        return repr(conditions)


# --- audience-id trees --------------------------------------------------------------------------

AudienceLookup = Callable[[object], "Node | None"]


def compile_audience_tree(audience_conditions: object, lookup: AudienceLookup) -> Node:
    """Compile an ``audienceConditions`` tree (or an ``audienceIds`` list) into one closure.

    ``lookup(audience_id)`` returns the compiled audience (see
    ``_compile_audience`` in the plan), or None for an unknown id; an unknown
    audience is UNKNOWN.
    """

    def leaf(audience_id: object) -> Node:
        node = lookup(audience_id)
        return node if node is not None else _always(None)

    if isinstance(audience_conditions, tuple):
        audience_conditions = list(audience_conditions)
    return _compile_tree(audience_conditions, leaf)


class AudienceTree:
    """An experiment's, rule's or holdout's audiences, compiled, with the JSON its reason shows.

    Two compilations share the tree: the plain one evaluates audiences
    directly; the debug one (built on first use, when the debug level is on)
    wraps each audience with optimizely's two debug lines.
    """

    __slots__ = ("_debug_lookup", "_debug_node", "_json", "_messages", "_source", "everyone", "node")

    def __init__(
        self, audience_conditions: object, lookup: AudienceLookup, debug_lookup: AudienceLookup | None = None
    ) -> None:
        self._source = audience_conditions
        self._json: str | None = None
        self.everyone = audience_conditions is None or (
            isinstance(audience_conditions, (list, tuple)) and len(audience_conditions) == 0
        )
        self.node: Node = (
            _always(True) if self.everyone else compile_audience_tree(audience_conditions, lookup)
        )
        self._debug_lookup = debug_lookup
        self._debug_node: Node | None = None
        self._messages: dict[tuple[str, bool], tuple[str, str, str]] = {}

    def messages(self, logging_key: str, rule: bool) -> tuple[str, str, str]:
        """The (evaluating, TRUE, FALSE) reasons for ``logging_key``, formatted once."""
        found = self._messages.get((logging_key, rule))
        if found is None:
            evaluating = msg.RULE_AUDIENCES_EVALUATING if rule else msg.EXPERIMENT_AUDIENCES_EVALUATING
            result = msg.RULE_AUDIENCES_RESULT if rule else msg.EXPERIMENT_AUDIENCES_RESULT
            found = (
                evaluating.format(logging_key, self.json),
                result.format(logging_key, "TRUE"),
                result.format(logging_key, "FALSE"),
            )
            if len(self._messages) < 16:
                self._messages[(logging_key, rule)] = found
        return found

    def debug_node(self) -> Node:
        """The compilation that logs each audience's evaluation."""
        node = self._debug_node
        if node is None:
            if self.everyone or self._debug_lookup is None:
                node = self.node
            else:
                node = compile_audience_tree(self._source, self._debug_lookup)
            self._debug_node = node
        return node

    @property
    def json(self) -> str:
        """``json.dumps`` of the conditions or ids as the datafile gave them."""
        if self._json is None:
            source = self._source
            if isinstance(source, tuple):
                source = list(source)
            try:
                self._json = json.dumps(source)
            except (TypeError, ValueError):
                self._json = repr(source)
        return self._json


def user_meets_audiences(
    tree: AudienceTree,
    attrs: Mapping[str, object],
    t: Trace,
    logging_key: str,
    *,
    rule: bool,
) -> bool:
    """Evaluate ``tree`` for the user; reasons and logs as optimizely's ``does_user_meet_audience_conditions``.

    ``rule`` selects the rollout-rule wording (``rule 1``) over the experiment
    wording (``experiment "key"``), which holdouts use too.
    """
    if not (t.note_debug or t.note_info):
        return tree.everyone or tree.node(attrs, t) is True
    evaluating, true_text, false_text = tree.messages(logging_key, rule)
    if t.note_debug:
        t.reason_debug(evaluating)
    if tree.everyone:
        result = True
    else:
        node = tree.debug_node() if t.debug else tree.node
        result = node(attrs, t) is True
    if t.note_info:
        t.reason_info(true_text if result else false_text)
    return result


def audience_node(audience_id: object, conditions: object, compiled: Node) -> Node:
    """Wrap an audience's compiled conditions with optimizely's two debug lines."""
    text: list[str] = []

    def audience(attrs: Mapping[str, object], t: Trace) -> bool | None:
        if not text:
            text.append(conditions_json(conditions))
        t.logger.debug(msg.EVALUATING_AUDIENCE.format(audience_id, text[0]))
        result = compiled(attrs, t)
        shown = "UNKNOWN" if result is None else str(result).upper()
        t.logger.debug(msg.AUDIENCE_RESULT.format(audience_id, shown))
        return result

    return audience


def as_sequence(value: object) -> Sequence[object]:
    """``value`` as a sequence when it is a list or tuple, else an empty one."""
    return value if isinstance(value, (list, tuple)) else ()
