from __future__ import annotations

import flagstream.delivery as delivery


def test_every_exported_name_exists_and_is_documented():
    for name in delivery.__all__:
        value = getattr(delivery, name)
        if callable(value):
            assert (value.__doc__ or "").strip(), f"{name} has no docstring"


def test_exports_are_sorted_and_unique():
    assert len(set(delivery.__all__)) == len(delivery.__all__)
    constants = [n for n in delivery.__all__ if n.isupper()]
    others = [n for n in delivery.__all__ if not n.isupper()]
    assert constants == sorted(constants)
    assert others == sorted(others, key=lambda n: (n[0].islower(), n))
