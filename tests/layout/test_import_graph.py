"""The package's modules import each other without a circle, and each imports on its own.

The graph is read from the source: every ``import`` / ``from ... import`` of a
flagstream module, at module level or inside a function, except those under
``if TYPE_CHECKING:`` (annotations only, never executed). A circle means a
module can only be imported after another has half-finished, which is how the
client, the user context and the decide values used to depend on each other.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "flagstream"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join([*base, node.module] if node.module else base)


def _targets(name: str) -> set[str]:
    """The flagstream modules ``name`` names: itself or, for ``pkg.attr``, the package."""
    found = set()
    while name:
        if name in MODULES:
            found.add(name)
            break
        name = name.rpartition(".")[0]
    return found


def imports_of(module: str, *, annotations: bool = False) -> set[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test) and not annotations:
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__" and node in tree.body:
            return  # a PEP 562 lazy re-export: runs only when the name is looked up, after both loaded
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.update(_targets(alias.name))
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node, is_package)
            for alias in node.names:
                # ``from pkg import mod`` imports the submodule; ``from mod import name`` the module.
                found.update(_targets(f"{base}.{alias.name}") or _targets(base))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    # A package's own __init__ always runs first; importing a module does not depend on it cyclically.
    found.discard(module)
    return {m for m in found if m.startswith("flagstream")}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                walk(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node)
    return cycles


def _is_parent_package(importer: str, imported: str) -> bool:
    return importer.startswith(imported + ".")


def test_no_module_imports_itself_through_others():
    # Importing a package's own __init__ from its submodules is not a circle here: Python
    # runs the package first, and flagstream's __init__ files only re-export.
    graph = {m: {t for t in imports_of(m) if not _is_parent_package(m, t)} for m in MODULES}
    assert _cycles(graph) == []


#: The caller's hot path, where not even annotations may import in a circle (the client
#: modules, the user context and the decide values once did).
HOT_PATH = {
    m for m in MODULES if m.startswith(("flagstream.client", "flagstream.user_context", "flagstream.calls"))
} | {
    "flagstream.decide",
    "flagstream._decisions",
}


def test_the_hot_path_has_no_circle_even_in_annotations():
    graph = {m: imports_of(m, annotations=True) & HOT_PATH for m in HOT_PATH}
    assert _cycles(graph) == []


def test_the_graph_sees_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


@pytest.mark.parametrize(
    "module",
    [
        "flagstream.client",
        "flagstream.client_base",
        "flagstream.client_decide",
        "flagstream.client_experiments",
        "flagstream.client_features",
        "flagstream.client_shared",
        "flagstream.calls.decide",
        "flagstream.calls.experiments",
        "flagstream.calls.result",
        "flagstream.calls.shared",
        "flagstream.calls.user",
        "flagstream.user_context",
        "flagstream.decide",
        "flagstream._decisions",
    ],
)
def test_a_client_module_imports_first_in_a_fresh_interpreter(module):
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
