"""The public surface: every exported name exists, is documented, and __all__ is sorted."""

from __future__ import annotations

from pathlib import Path

import flagstream


def test_every_exported_name_exists_and_is_documented():
    assert flagstream.__all__ == sorted(flagstream.__all__)
    for name in flagstream.__all__:
        member = getattr(flagstream, name)
        if name != "__version__" and callable(member):
            assert member.__doc__, f"{name} has no docstring"


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
