"""The public surface: every exported name exists, is documented, and __all__ is sorted; no framework is imported."""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import flagstream

DATAFILE = Path(__file__).parent / "contrib" / "apps" / "datafile.json"


def _docstring(member: object) -> str | None:
    """The member's docstring; for a class of the compiled build (mypyc drops them), its source's."""
    module = sys.modules.get(getattr(member, "__module__", ""), None)
    source = getattr(module, "__file__", "") or ""
    if member.__doc__ or not (
        isinstance(member, type) and source.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    ):
        return member.__doc__  # a compiled class may set its own (calls/result.py does)
    compiled = Path(source)
    tree = ast.parse(compiled.with_name(compiled.name.split(".")[0] + ".py").read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == member.__name__:
            return ast.get_docstring(node)
    return None


def test_every_exported_name_exists_and_is_documented():
    assert flagstream.__all__ == sorted(flagstream.__all__)
    for name in flagstream.__all__:
        member = getattr(flagstream, name)
        if name != "__version__" and callable(member):
            assert _docstring(member), f"{name} has no docstring"


def test_the_optional_integrations_export_documented_names():
    import flagstream.contrib.otel
    import flagstream.contrib.prometheus
    import flagstream.openfeature

    for module in (flagstream.openfeature, flagstream.contrib.otel, flagstream.contrib.prometheus):
        assert module.__doc__  # (ruff's RUF022 keeps these __all__ sorted, constants first)
        for name in module.__all__:
            member = getattr(module, name)
            if callable(member):
                assert member.__doc__, f"{module.__name__}.{name} has no docstring"


def test_import_flagstream_imports_no_optional_framework_and_works_without_them():
    # Without a library, its integration module says which extra to install.
    import subprocess
    import sys

    # The frameworks are installed in the test environment; the first run checks that
    # importing flagstream loads none of them, the second hides them (as if not installed).
    hide = (
        "import sys, importlib.abc\n"
        "class Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in OPTIONAL: raise ImportError(f'{name} is hidden')\n"
        "sys.meta_path.insert(0, Hide())\n"
    )
    use = (
        "import sys, flagstream, flagstream.delivery, flagstream.testing\n"
        "c = flagstream.Optimizely(open(sys.argv[1]).read())\n"
        "assert c.create_user_context('u').decide('banner').flag_key == 'banner'\n"
        "c.close()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in OPTIONAL))\n"
    )
    missing = (
        "import importlib\n"
        "for name, extra in [('flagstream.openfeature', 'openfeature'), ('flagstream.contrib.otel', 'otel'),"
        " ('flagstream.contrib.prometheus', 'prometheus')]:\n"
        "    try: importlib.import_module(name)\n"
        '    except ImportError as exc: assert f"flagstream[{extra}]" in str(exc), exc\n'
        "    else: raise AssertionError(name + ' imported without its library')\n"
    )
    optional = "OPTIONAL = ('openfeature', 'opentelemetry', 'prometheus_client')\n"
    datafile = str(Path(__file__).parent / "fixtures" / "basic_datafile.json")
    for code in (optional + use, optional + hide + use, optional + hide + missing + use):
        out = subprocess.run(
            [sys.executable, "-c", code, datafile], capture_output=True, text=True, timeout=60, check=True
        )
        assert out.stdout.strip() == "[]", out.stderr


CONTRIB_MODULES = [
    "flagstream.contrib.asgi",
    "flagstream.contrib.celery",
    "flagstream.contrib.django",
    "flagstream.contrib.flask",
    "flagstream.contrib.gunicorn",
    "flagstream.contrib.uwsgi",
]

FRAMEWORKS = ["django", "flask", "starlette", "fastapi", "celery", "kombu", "billiard", "gunicorn", "uwsgi"]


@pytest.mark.parametrize("name", CONTRIB_MODULES)
def test_every_contrib_module_exports_documented_names(name: str) -> None:
    framework = {"asgi": "starlette", "gunicorn": None, "uwsgi": None}.get(
        name.rsplit(".", 1)[1], name.rsplit(".", 1)[1]
    )
    if framework is not None:
        pytest.importorskip(framework)
    module = importlib.import_module(name)
    assert module.__doc__
    assert module.__all__ == sorted(module.__all__)
    for member_name in module.__all__:
        member = getattr(module, member_name)
        if callable(member):
            assert member.__doc__, f"{name}.{member_name} has no docstring"


def test_flagstream_imports_and_decides_with_no_framework_installed() -> None:
    # A meta path finder makes every framework uninstallable for the child, as on a machine without them.
    code = textwrap.dedent(
        f"""
        import sys
        BLOCKED = {FRAMEWORKS!r}

        class NotInstalled:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {{name!r}}")
                return None

        sys.meta_path.insert(0, NotInstalled())
        import flagstream
        import flagstream.contrib
        from flagstream.contrib import gunicorn, uwsgi
        assert uwsgi.install() is False
        client = flagstream.Optimizely(open({str(DATAFILE)!r}).read(), event_endpoint="http://127.0.0.1:9/")
        assert client.create_user_context("u-1").decide("checkout").variation_key in ("control", "treatment")
        client.close(0.0)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not loaded, loaded
        try:
            import flagstream.contrib.flask
        except ImportError as exc:
            print("flask:", exc)
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "ok"
    assert "pip install 'flagstream[flask]'" in done.stdout


def test_import_flagstream_loads_no_framework_even_when_installed() -> None:
    code = (
        f"import sys, flagstream; print(sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
