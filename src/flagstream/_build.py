"""Which build of flagstream is running: the mypyc-compiled hot modules, or pure Python.

The same source is both builds. A wheel built where mypyc and a C compiler
work (``setup.py``) carries each hot module twice, as the compiled extension
and as its ``.py`` file; Python's import system prefers the extension. This
module, imported first by ``flagstream/__init__.py``, decides which the process
gets:

- ``FLAGSTREAM_PURE_PYTHON=1`` in the environment: the ``.py`` files, always
  (the reference build, to compare or debug with, from the same install);
- otherwise the compiled modules when they load, and the ``.py`` files, with
  one warning, when they are present but fail to load (a wheel copied to a
  machine it was not built for, a truncated file).

:data:`BUILD` says which, and ``flagstream version`` prints it.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import logging
import os
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

__all__ = ["BUILD", "COMPILED", "PROBE_MODULE", "select"]

# A module that every compiled build compiles (setup.py's list starts with it).
PROBE_MODULE = "flagstream.decision.service"
PURE_ENV = "FLAGSTREAM_PURE_PYTHON"

BUILD = "pure-python"
COMPILED = False


class _SourceOnly(MetaPathFinder):
    """Finds ``flagstream.*`` modules as ``.py`` files only, ignoring extensions beside them."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not fullname.startswith("flagstream.") or path is None:
            return None
        details = (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)
        for entry in path:
            spec = importlib.machinery.FileFinder(entry, details).find_spec(fullname, target)
            if spec is not None:
                return spec
        return None


def _compiled_file(module: ModuleType) -> bool:
    name = getattr(module, "__file__", None) or ""
    return name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def _use_source(reason: str) -> None:
    global BUILD, COMPILED
    if not any(isinstance(finder, _SourceOnly) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SourceOnly())
    # Whatever loaded before (a half-imported compiled build) is loaded again from source.
    for name in [n for n in sys.modules if n.startswith("flagstream.") and n != __name__]:
        del sys.modules[name]
    BUILD, COMPILED = f"pure-python ({reason})", False


def select() -> None:
    """Choose the build for this process (run once, when ``flagstream/__init__.py`` imports this first)."""
    global BUILD, COMPILED
    if os.environ.get(PURE_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        _use_source(f"{PURE_ENV} is set")
        return
    try:
        probe = importlib.import_module(PROBE_MODULE)
    except ImportError as exc:
        _use_source("the compiled modules failed to load")
        logging.getLogger("flagstream").warning(
            "flagstream: the compiled modules failed to load (%s); running the pure-Python build.", exc
        )
        return
    if _compiled_file(probe):
        BUILD, COMPILED = "compiled (mypyc)", True


select()
