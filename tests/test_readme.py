"""The README's code blocks run as written (with a real datafile for ``datafile_json``)."""

from __future__ import annotations

import re
from pathlib import Path

from flagstream.collector import Collector

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DATAFILE = (ROOT / "tests" / "fixtures" / "basic_datafile.json").read_text()


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def test_the_readme_starts_with_the_two_commands():
    first_block = re.search(r"```sh\n(.*?)```", README, flags=re.DOTALL)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]


def test_every_python_block_runs(monkeypatch):
    blocks = _python_blocks()
    assert len(blocks) >= 2
    with Collector() as collector:
        # The quick start uses the default endpoint: keep its events on this machine.
        monkeypatch.setenv("FLAGSTREAM_EVENT_ENDPOINT", collector.events_url)
        for block in blocks:
            namespace = {"datafile_json": DATAFILE, "render": lambda value: None}
            exec(compile(block, "README.md", "exec"), namespace)
        assert collector.wait_for_events(1, timeout=10)
