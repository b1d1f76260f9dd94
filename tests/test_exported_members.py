"""The public surface: every exported name exists, is documented, and __all__ is sorted."""

from __future__ import annotations

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


def test_import_flagstream_imports_no_optional_framework():
    import subprocess
    import sys

    code = (
        "import sys, flagstream, flagstream.client, flagstream.delivery;"
        "c = flagstream.Optimizely('{}'); c.close();"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('openfeature', 'opentelemetry', 'prometheus_client')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
