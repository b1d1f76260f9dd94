"""The public surface: every exported name exists, is documented, and __all__ is sorted."""

from __future__ import annotations

import flagstream


def test_every_exported_name_exists_and_is_documented():
    assert flagstream.__all__ == sorted(flagstream.__all__)
    for name in flagstream.__all__:
        member = getattr(flagstream, name)
        if name != "__version__" and callable(member):
            assert member.__doc__, f"{name} has no docstring"
