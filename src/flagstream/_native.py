"""mypyc's class marks, importable where ``mypy_extensions`` is not installed.

A compiled module imports what its decorators come from at run time, and
``mypy_extensions`` is a build dependency, not a runtime one; without it the
mark does nothing (as it does for the pure-Python build anyway).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["mypyc_attr"]

if TYPE_CHECKING:
    from mypy_extensions import mypyc_attr
else:
    try:
        from mypy_extensions import mypyc_attr
    except ImportError:

        def mypyc_attr(*attrs: str, **kwattrs: object) -> Any:
            return lambda cls: cls
