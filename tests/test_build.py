"""Which build runs: the compiled hot modules or their source, chosen at import (flagstream._build).

``make test`` runs the suite on the pure-Python reference and again, with
``FLAGSTREAM_EXPECT_BUILD=compiled`` and the mypyc build first on
``PYTHONPATH``, on the compiled one; these tests check that each run really
runs the build it says, and that the compiled install falls back cleanly.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import flagstream
from flagstream import _build
from flagstream.cli import main

EXPECTED = os.environ.get("FLAGSTREAM_EXPECT_BUILD", "pure")
EXTENSIONS = tuple(importlib.machinery.EXTENSION_SUFFIXES)
compiled_only = pytest.mark.skipif(
    EXPECTED != "compiled", reason="needs the compiled build (make pytest-compiled runs it)"
)

PROBE = (
    "import flagstream, flagstream._build as b, flagstream.decision.service as s, json; "
    "c = flagstream.Optimizely(open(%r).read()); "
    "d = c.create_user_context('u1', {'country': 'de', 'age': 30}).decide('banner'); "
    "print(json.dumps([b.BUILD, s.__file__, d.variation_key])); c.close()"
)
DATAFILE = str(Path(__file__).parent / "fixtures" / "basic_datafile.json")


def _probe(env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE % DATAFILE],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [*json.loads(done.stdout.strip().splitlines()[-1]), done.stderr]


def test_the_build_running_is_the_one_this_run_expects() -> None:
    import flagstream.decision.service as service

    if EXPECTED == "compiled":
        assert _build.COMPILED
        assert _build.BUILD == "compiled (mypyc)"
        assert service.__file__.endswith(EXTENSIONS)
    else:
        assert not _build.COMPILED
        assert _build.BUILD.startswith("pure-python")
        assert service.__file__.endswith(".py")


def test_version_names_the_build(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert f"{_build.BUILD} build" in capsys.readouterr().out


def test_pure_python_can_be_forced_from_the_same_install() -> None:
    build, module_file, variation, _ = _probe({"FLAGSTREAM_PURE_PYTHON": "1"})
    assert build == "pure-python (FLAGSTREAM_PURE_PYTHON is set)"
    assert module_file.endswith(".py")
    default_build, _, default_variation, _ = _probe({})
    assert default_build == _build.BUILD
    assert variation == default_variation


@compiled_only
def test_a_compiled_install_that_cannot_load_falls_back_to_its_source(tmp_path: Path) -> None:
    installed = Path(flagstream.__file__).parent.parent
    copy = tmp_path / "site"
    shutil.copytree(installed, copy, ignore=shutil.ignore_patterns("__pycache__", "bin"))
    shared = [p for p in copy.iterdir() if "__mypyc" in p.name and p.name.endswith(EXTENSIONS)]
    assert shared, "the compiled build has no shared mypyc library"
    for library in shared:
        library.write_bytes(b"not an ELF file")  # a truncated or foreign binary
    build, module_file, variation, stderr = _probe({"PYTHONPATH": str(copy)})
    assert build == "pure-python (the compiled modules failed to load)"
    assert module_file.startswith(str(copy))
    assert module_file.endswith(".py")
    assert variation == _probe({})[2]  # the same decision as the compiled build's
    assert stderr.count("the compiled modules failed to load") == 1
