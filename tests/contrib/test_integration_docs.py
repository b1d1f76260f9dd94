"""docs/integrations.md: every Python example parses, and names only what the modules export."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import textwrap
from pathlib import Path

import pytest

DOC = (Path(__file__).resolve().parents[2] / "docs" / "integrations.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", DOC, flags=re.DOTALL)


def test_the_page_has_an_example_for_every_framework() -> None:
    for name in ("django", "flask", "asgi", "celery", "gunicorn", "uwsgi"):
        assert f"flagstream.contrib.{name}" in DOC


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block-{i}" for i in range(len(BLOCKS))])
def test_every_example_parses_and_imports_names_that_exist(block: str) -> None:
    tree = ast.parse(textwrap.dedent(block))  # blocks inside list items are indented
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("flagstream"):
            framework = {"asgi": "starlette"}.get(
                node.module.rsplit(".", 1)[-1], node.module.rsplit(".", 1)[-1]
            )
            if framework in ("django", "flask", "starlette", "celery"):
                pytest.importorskip(framework)
            module = importlib.import_module(node.module)
            for alias in node.names:
                found = hasattr(module, alias.name) or (
                    hasattr(module, "__path__")
                    and importlib.util.find_spec(f"{node.module}.{alias.name}") is not None
                )
                assert found, f"{node.module} has no {alias.name}"
