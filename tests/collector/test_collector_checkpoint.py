"""A file database's WAL is checkpointed in the background, and nothing is lost by it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from tests.collector.helpers import body_of, conversion, impression

from flagstream.collector import checkpoint
from flagstream.collector.schema import decode_batch
from flagstream.collector.storage import Store


def _bodies(n: int) -> list[bytes]:
    return [body_of([impression(f"u{i}"), conversion(f"u{i}")]) for i in range(n)]


def test_memory_database_has_no_checkpointer() -> None:
    store = Store(":memory:")
    assert store.checkpointer is None
    store.close()


def test_bodies_written_trigger_background_checkpoints_and_survive_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint, "CHECKPOINT_BYTES", 1)  # every body is due
    path = str(tmp_path / "events.db")
    store = Store(path)
    assert store.checkpointer is not None
    bodies = _bodies(5)
    for body in bodies:
        assert store.ingest(body, decode_batch(body)) == 2
    assert store.checkpointer.wait_checkpoints(1, timeout=10)
    assert Path(path).stat().st_size > 0  # copied back into the database file
    store.close()
    reopened = Store(path)
    assert reopened.event_count == 10
    assert reopened.visitor_count() == 5
    reopened.close()


def test_store_uses_a_large_automatic_checkpoint_as_its_backstop(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "events.db"))
    assert store.query("PRAGMA wal_autocheckpoint") == [(checkpoint.BACKSTOP_PAGES,)]
    store.close()


def test_closing_the_store_ends_the_checkpoint_thread(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "events.db"))
    store.close()
    assert not [t for t in threading.enumerate() if t.name == "flagstream-collector-checkpoint"]
