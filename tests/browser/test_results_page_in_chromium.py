"""Headless Chromium loads the results page after a small demo run and finds the results table.

Chromium is Debian's ``chromium`` package. When it is missing, the set-up
installs it with apt-get if it can (root, apt-get present); in CI (``CI`` set)
a missing browser is a failure, never a skip. Set ``FLAGSTREAM_UPDATE_SCREENSHOT=1``
to refresh ``docs/results-page.png`` from this run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from flagstream.demo.run import Demo, DemoOptions

# Installing chromium on a fresh machine (apt-get update + install) can outlast the default timeout.
pytestmark = pytest.mark.timeout(1200)

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "results-page.png"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def _find_chromium() -> str | None:
    return next((p for name in ("chromium", "chromium-browser") if (p := shutil.which(name))), None)


def _install_chromium() -> str | None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
    ):
        if subprocess.run(command, env=env, capture_output=True, timeout=900, check=False).returncode != 0:
            return None
    return _find_chromium()


@pytest.fixture(scope="module")
def chromium() -> str:
    path = _find_chromium() or _install_chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing and could not be installed; the browser test must run in CI")
        pytest.skip("chromium is missing and cannot be installed here (needs root and apt-get)")
    return path


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    with Demo(DemoOptions(users=600)) as running:
        summary = running.run()
        assert summary.ok, summary
        yield running


def _chromium(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="flagstream-chromium-") as profile:
        return subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def test_chromium_finds_the_results_table(chromium: str, demo: Demo) -> None:
    done = _chromium(chromium, "--dump-dom", demo.collector.url + "/")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert '<table id="results">' in dom
    assert "checkout_redesign" in dom
    assert "one_page" in dom
    assert '<div class="cards" id="counts">' in dom


def test_chromium_screenshot_of_the_results_page(chromium: str, demo: Demo, tmp_path: Path) -> None:
    shot = tmp_path / "results-page.png"
    done = _chromium(chromium, f"--screenshot={shot}", "--window-size=1280,1400", demo.collector.url + "/")
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 20_000  # a rendered page, not a blank one
    if os.environ.get("FLAGSTREAM_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.write_bytes(data)
