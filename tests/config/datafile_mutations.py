"""Random single mutations of a datafile, for fuzzing the validator and the config builder."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (tuple of keys and indexes) in a JSON document, the root excluded."""
    out = []
    if isinstance(node, dict):
        for key, child in node.items():
            out.append((*prefix, key))
            out.extend(paths(child, (*prefix, key)))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            out.append((*prefix, i))
            out.extend(paths(child, (*prefix, i)))
    return out


def strings_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings_in(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings_in(v)]
    return [node] if isinstance(node, str) else []


@st.composite
def mutated(draw: st.DrawFn, datafile: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """One random mutation of ``datafile``: delete, replace, duplicate or re-point a value."""
    doc = copy.deepcopy(datafile)
    all_paths = paths(doc)
    if not all_paths:
        return doc, "nothing to mutate"
    path = draw(st.sampled_from(all_paths))
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    op = draw(st.sampled_from(["delete", "replace", "duplicate", "repoint", "retype"]))
    if op == "delete":
        del parent[last]
    elif op == "replace":
        parent[last] = draw(JSON_VALUES)
    elif op == "duplicate" and isinstance(parent, list):
        parent.insert(last, copy.deepcopy(parent[last]))
    elif op == "repoint":
        pool = strings_in(datafile) or ["x"]
        parent[last] = draw(st.sampled_from(pool))
    else:
        value = parent[last]
        parent[last] = (
            str(value)
            if isinstance(value, (int, float, bool)) and not isinstance(value, str)
            else [value]
            if not isinstance(value, list)
            else {}
        )
    return doc, f"{op} {'.'.join(map(str, path))}"
