"""Builds flagstream, compiling its hot modules with mypyc where it can (pyproject.toml has the rest).

``FLAGSTREAM_BUILD`` chooses:

- ``auto`` (the default): compile when mypyc imports and the C compiler works;
  otherwise print one line and build the pure-Python package;
- ``compiled``: compile, or fail (CI and wheel builds, so a broken compile is never shipped silently);
- ``pure``: never compile (the editable development install is the pure reference).

A compiled wheel carries each hot module both as an extension and as its
``.py`` file; ``flagstream._build`` picks one at import time.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

# The decision path, the user events and the payload writer: where a decide, a track and the
# worker's body writing spend their time (docs/architecture.md). The first is _build's probe.
# Left out on purpose: decision/options.py, decision/sources.py and decide.py (public constant classes: a
# compiled class loses its docstring), the client classes (mypyc compiles multiple inheritance
# only as non-native classes, whose methods then refuse a user's subclass of Optimizely; their
# per-call steps live in calls/ instead), the user context (nested classes), and everything off the
# per-call path.
HOT_MODULES = [
    "decision/service.py",
    "calls/decide.py",
    "calls/experiments.py",
    "calls/result.py",
    "calls/shared.py",
    "calls/user.py",
    "decision/_call.py",
    "decision/_plan.py",
    "decision/_trace.py",
    "decision/audiences.py",
    "decision/bucketing.py",
    "decision/conditions.py",
    "decision/experiments.py",
    "decision/flags.py",
    "decision/forced.py",
    "decision/messages.py",
    "decision/results.py",
    "decision/semver.py",
    "decision/user_profile.py",
    "delivery/core.py",
    "delivery/intake.py",
    "events/factory.py",
    "events/ids.py",
    "events/payload.py",
    "events/user_event.py",
    "_decisions.py",
    "_json.py",
    "config/entities.py",
    "config/project_config.py",
]

MODE = os.environ.get("FLAGSTREAM_BUILD", "auto").strip().lower()
if MODE not in ("auto", "compiled", "pure"):
    sys.exit(f"FLAGSTREAM_BUILD must be auto, compiled or pure, not {MODE!r}")


def _say(line: str) -> None:
    print(f"flagstream build: {line}", file=sys.stderr)


def _extensions() -> list[object]:
    if MODE == "pure":
        return []
    try:
        from mypyc.build import mypycify  # noqa: PLC0415 (optional: absent means pure Python)
    except ImportError as exc:
        if MODE == "compiled":
            raise
        _say(f"mypyc is not available ({exc}); building the pure-Python package")
        return []
    paths = [str(Path("src/flagstream") / module) for module in HOT_MODULES]
    try:
        return list(mypycify(paths, opt_level="3", debug_level="0"))
    except (Exception, SystemExit) as exc:  # mypyc exits on a type error
        if MODE == "compiled":
            raise
        _say(f"mypyc could not translate the hot modules ({exc!r}); building the pure-Python package")
        return []


class OptionalBuildExt(build_ext):
    """build_ext that, in ``auto`` mode, leaves no half-compiled package behind when the compiler fails."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            if MODE == "compiled":
                raise
            for output in self.get_outputs():
                Path(output).unlink(missing_ok=True)
            _say(f"compiling failed ({exc}); building the pure-Python package")


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
