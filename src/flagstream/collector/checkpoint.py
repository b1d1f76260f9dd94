"""WAL checkpoints of a file database in a background thread, off the ingest path.

In WAL mode SQLite copies the log back into the database file (a checkpoint)
on the commit that crosses ``wal_autocheckpoint`` pages. With request bodies
of half a megabyte that commit takes over 100 ms, under the store's lock, so
every request waits behind it. Instead the store's connection only keeps a
large automatic checkpoint as a backstop, and this thread runs a ``PASSIVE``
checkpoint on its own connection whenever :data:`CHECKPOINT_BYTES` more have
been written: a passive checkpoint never blocks the writer, and ``sqlite3``
releases the GIL while it runs. A 204 still means the body is committed (in
the WAL, as before); only where the copy-back happens moves.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

__all__ = ["BACKSTOP_PAGES", "CHECKPOINT_BYTES", "Checkpointer"]

_LOG = logging.getLogger("flagstream.collector")

CHECKPOINT_BYTES = 64 * 1024 * 1024  # as often as SQLite would (1000 pages of 64 KiB), just elsewhere
BACKSTOP_PAGES = 4096  # the store connection's own wal_autocheckpoint (256 MiB of 64 KiB pages)


class Checkpointer:
    """Checkpoints one database file's WAL in a daemon thread while bodies are written."""

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._wake = threading.Event()
        self._stopping = False
        self._written = 0
        self._lock = threading.Lock()
        self._done = threading.Condition()
        self._completed = 0
        self._thread = threading.Thread(target=self._run, name="flagstream-collector-checkpoint", daemon=True)
        self._thread.start()

    def wrote(self, n_bytes: int) -> None:
        """Count bytes committed to the WAL; wakes the thread past :data:`CHECKPOINT_BYTES`."""
        with self._lock:
            self._written += n_bytes
            due = self._written >= CHECKPOINT_BYTES
            if due:
                self._written = 0
        if due:
            self._wake.set()

    def _run(self) -> None:
        while True:
            if not self._wake.wait(1.0):
                continue
            self._wake.clear()
            if self._stopping:
                return
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:  # e.g. the disk is full: the backstop checkpoint still runs
                _LOG.debug("collector background checkpoint failed", exc_info=True)
            with self._done:
                self._completed += 1
                self._done.notify_all()

    def wait_checkpoints(self, n: int, timeout: float) -> bool:
        """True once ``n`` background checkpoints have run; False when ``timeout`` passes first."""
        with self._done:
            return self._done.wait_for(lambda: self._completed >= n, timeout)

    def close(self, timeout: float = 2.0) -> bool:
        """Stop the thread (after the checkpoint it is running, if any) and close its connection."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            return False
        self._conn.close()
        return True
