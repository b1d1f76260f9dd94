"""Where a flag decision came from: optimizely-sdk's ``DecisionSources`` values.

A module of its own, left out of the compiled build (``setup.py``): a compiled
class loses its docstring, and this one is public. Compiled callers still read
the values as constants, since they are ``Final``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DecisionSource"]


class DecisionSource:
    """Where a flag decision came from (optimizely-sdk's ``DecisionSources`` values)."""

    FEATURE_TEST: Final = "feature-test"
    ROLLOUT: Final = "rollout"
    HOLDOUT: Final = "holdout"
    EXPERIMENT: Final = "experiment"
