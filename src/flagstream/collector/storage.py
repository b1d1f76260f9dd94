"""SQLite storage: an append-only log of request bodies, indexed into event rows on demand.

Ingest is the hot path and must stay far above 100 000 events/s: a request
that brings new events costs one ``INSERT`` of its body (not one per event),
and de-duplication on ``(uuid, entity_id, timestamp)``, as the Event API does,
is a set lookup. A body that repeats some earlier events is stored with a bit
mask of its new ones. The bodies are turned into ``events`` and ``decisions``
rows (the new events only, so no unique index is needed) the first time
anything reads them, which is where the per-row cost belongs. A 204 therefore
means the body is committed, indexed or not.

One connection serves every thread behind one lock: SQLite has one writer
anyway, and ``sqlite3`` releases the GIL while a statement runs.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

import msgspec

from flagstream import _json
from flagstream.collector.checkpoint import BACKSTOP_PAGES, Checkpointer
from flagstream.collector.schema import Batch, DecodedBatch, EventKey
from flagstream.errors import ConfigurationError

__all__ = ["EventQuery", "Store"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bodies (id INTEGER PRIMARY KEY, body BLOB NOT NULL, fresh BLOB);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('indexed_body', 0);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    key TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    visitor_id TEXT NOT NULL,
    revenue INTEGER,
    value REAL,
    tags TEXT,
    attributes TEXT NOT NULL,
    account_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    body_id INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_visitor ON events (visitor_id);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY,
    visitor_id TEXT NOT NULL,
    event_uuid TEXT NOT NULL,
    idx INTEGER NOT NULL,
    campaign_id TEXT NOT NULL,
    experiment_id TEXT NOT NULL,
    variation_id TEXT,
    flag_key TEXT NOT NULL,
    rule_key TEXT NOT NULL,
    rule_type TEXT NOT NULL,
    variation_key TEXT NOT NULL,
    enabled INTEGER,
    timestamp INTEGER NOT NULL
);
PRAGMA user_version = 2;
"""
SCHEMA_VERSION = 2

_INSERT_EVENT = (
    "INSERT OR IGNORE INTO events (uuid, entity_id, key, timestamp, visitor_id, revenue, value, tags,"
    " attributes, account_id, project_id, body_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_DECISION = (
    "INSERT OR IGNORE INTO decisions (visitor_id, event_uuid, idx, campaign_id, experiment_id,"
    " variation_id, flag_key, rule_key, rule_type, variation_key, enabled, timestamp)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)
_EVENT_COLUMNS = "id, uuid, entity_id, key, timestamp, visitor_id, revenue, value, tags, attributes"
_INDEX_CHUNK = 4  # bodies per indexing transaction and lock hold: bounds memory and ingest stalls
_DECODER = msgspec.json.Decoder(Batch)
_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class EventQuery:
    """A page of ``GET /api/events``: filters, a keyset cursor (``after`` an id) and a size."""

    visitor: str | None = None
    experiment: str | None = None
    key: str | None = None
    after: int = 0
    limit: int = 100


def _fresh_mask(keys: list[EventKey], fresh: set[EventKey]) -> bytes:
    """One bit per event of the body: set for the new ones (the first occurrence of each key)."""
    mask = bytearray((len(keys) + 7) // 8)
    pending = set(fresh)
    for i, key in enumerate(keys):
        if key in pending:
            pending.discard(key)
            mask[i >> 3] |= 1 << (i & 7)
    return bytes(mask)


def _rows(
    body_id: int, batch: Batch, mask: bytes | None
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    events: list[tuple[Any, ...]] = []
    decisions: list[tuple[Any, ...]] = []
    account, project = batch.account_id, batch.project_id
    position = -1
    for visitor in batch.visitors:
        vid = visitor.visitor_id
        attributes = _ENCODER.encode(visitor.attributes or []).decode()
        for snapshot in visitor.snapshots:
            first_position = position + 1
            for e in snapshot.events:
                position += 1
                if mask is not None and not mask[position >> 3] & (1 << (position & 7)):
                    continue  # a repeat of an event stored earlier
                tags = None if e.tags is None else _ENCODER.encode(e.tags).decode()
                events.append(
                    (e.uuid, e.entity_id, e.key, e.timestamp, vid, e.revenue, e.value, tags, attributes,
                     account, project, body_id)
                )  # fmt: skip
            if not snapshot.decisions:
                continue
            if (
                mask is not None
                and snapshot.events
                and not mask[first_position >> 3] & (1 << (first_position & 7))
            ):
                continue  # the decisions came with a repeated event: stored already
            # A decision belongs to its snapshot's first event: stored when that event is new,
            # and it takes that event's time as its own.
            first = snapshot.events[0] if snapshot.events else None
            anchor, ts = (first.uuid, first.timestamp) if first else ("", 0)
            for idx, d in enumerate(snapshot.decisions):
                m = d.metadata
                decisions.append(
                    (vid, anchor, idx, d.campaign_id, d.experiment_id, d.variation_id,
                     m.flag_key if m else "", m.rule_key if m else "", m.rule_type if m else "",
                     m.variation_key if m else "", None if m is None or m.enabled is None else int(m.enabled), ts)
                )  # fmt: skip
    return events, decisions


class Store:
    """The collector's database: a file path, or ``":memory:"``."""

    def __init__(self, path: str) -> None:
        self._lock = threading.Lock()
        self._closed = False
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if path != ":memory:":
            # 64 KiB pages (applies to a new file only): a request body is one blob of a few
            # hundred KB, and large pages halve the CPU of writing it; indexing is no slower.
            self._conn.execute("PRAGMA page_size=65536")
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        has_tables = self._conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
        if has_tables and version != SCHEMA_VERSION:
            self._conn.close()
            raise ConfigurationError(f"{path} holds another collector schema ({version}); use a new file")
        self._conn.executescript(_SCHEMA)
        self._indexed: int = self._conn.execute(
            "SELECT value FROM meta WHERE name='indexed_body'"
        ).fetchone()[0]
        self._index_pending()
        self._keys: set[EventKey] = {
            (u, e, t) for u, e, t in self._conn.execute("SELECT uuid, entity_id, timestamp FROM events")
        }
        self._duplicates = 0
        self.checkpointer: Checkpointer | None = None  # file databases in WAL mode only
        if self._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            self._conn.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
            self.checkpointer = Checkpointer(path)

    @property
    def event_count(self) -> int:
        """Unique events stored."""
        return len(self._keys)

    @property
    def duplicate_count(self) -> int:
        """Events received again and ignored since this store was opened."""
        return self._duplicates

    def ingest(self, body: bytes, decoded: DecodedBatch) -> int:
        """Store a validated body; returns how many of its events were new."""
        with self._lock:
            fresh = decoded.keys - self._keys
            if fresh:
                mask = None if len(fresh) == decoded.n_events else _fresh_mask(decoded.ordered, fresh)
                self._conn.execute("INSERT INTO bodies (body, fresh) VALUES (?, ?)", (body, mask))
                self._keys |= fresh
                if self.checkpointer is not None:
                    self.checkpointer.wrote(len(body))
            self._duplicates += decoded.n_events - len(fresh)
            return len(fresh)

    def _index_pending(self) -> None:
        """Turn every body not yet indexed into rows (lock held, or during construction)."""
        while self._index_chunk():
            pass

    def _index_chunk(self) -> bool:
        """Index up to one chunk of bodies (lock held); False when nothing was left."""
        conn = self._conn
        chunk = conn.execute(
            "SELECT id, body, fresh FROM bodies WHERE id > ? ORDER BY id LIMIT ?",
            (self._indexed, _INDEX_CHUNK),
        ).fetchall()
        if not chunk:
            return False
        conn.execute("BEGIN")
        try:
            for body_id, body, mask in chunk:
                events, decisions = _rows(body_id, _DECODER.decode(body), mask)
                conn.executemany(_INSERT_EVENT, events)
                conn.executemany(_INSERT_DECISION, decisions)
            last = chunk[-1][0]
            conn.execute("UPDATE meta SET value = ? WHERE name = 'indexed_body'", (last,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self._indexed = last
        return True

    def index(self) -> int:
        """Index every stored body now (reads do this themselves); returns the data version.

        The lock is taken per chunk, so a reader catching up on many bodies delays
        ingest by one chunk at a time, never by the whole backlog. The version
        changes exactly when indexed data changes, so results computed at one
        version can be reused until it moves.
        """
        while True:
            with self._lock:
                if not self._index_chunk():
                    return self._indexed

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only query on indexed rows, under the store's lock."""
        self.index()
        with self._lock:
            self._index_pending()  # what arrived since: a few bodies at most
            return self._conn.execute(sql, params).fetchall()

    def events(self, q: EventQuery) -> list[dict[str, Any]]:
        """One page of stored events, oldest first, each with its snapshot's decisions."""
        where = ["id > ?"]
        params: list[object] = [q.after]
        if q.visitor is not None:
            where.append("visitor_id = ?")
            params.append(q.visitor)
        if q.key is not None:
            where.append("key = ?")
            params.append(q.key)
        if q.experiment is not None:
            where.append(
                "visitor_id IN (SELECT visitor_id FROM decisions WHERE experiment_id = ? OR rule_key = ?)"
            )
            params += [q.experiment, q.experiment]
        sql = f"SELECT {_EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY id LIMIT ?"  # noqa: S608 - fixed clauses; values are bound
        params.append(q.limit)
        self.index()
        with self._lock:
            self._index_pending()
            rows = self._conn.execute(sql, params).fetchall()
            out = []
            for row in rows:
                decisions = self._conn.execute(
                    "SELECT campaign_id, experiment_id, variation_id, flag_key, rule_key, rule_type,"
                    " variation_key, enabled FROM decisions WHERE visitor_id = ? AND event_uuid = ?"
                    " ORDER BY idx",
                    (row[5], row[1]),
                ).fetchall()
                out.append(_event_dict(row, decisions))
        return out

    def recent_events(self, n: int) -> list[dict[str, Any]]:
        """The ``n`` most recently stored events, newest first, without their decisions."""
        rows = self.query(f"SELECT {_EVENT_COLUMNS} FROM events ORDER BY id DESC LIMIT ?", (n,))  # noqa: S608
        return [_event_dict(row, []) for row in rows]

    def counts_by_key(self) -> list[tuple[str, int]]:
        """How many events of each key are stored, most frequent first."""
        return [
            (str(k), int(n))
            for k, n in self.query("SELECT key, COUNT(*) FROM events GROUP BY key ORDER BY 2 DESC, 1")
        ]

    def visitor_count(self) -> int:
        """Distinct visitors with at least one stored event."""
        return int(self.query("SELECT COUNT(DISTINCT visitor_id) FROM events")[0][0])

    def close(self) -> None:
        """Stop the background checkpoints and close the database connection (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                if self.checkpointer is not None:
                    self.checkpointer.close()
                self._conn.close()


def _event_dict(row: tuple[Any, ...], decisions: list[tuple[Any, ...]]) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": row[0],
        "uuid": row[1],
        "entity_id": row[2],
        "key": row[3],
        "timestamp": row[4],
        "visitor_id": row[5],
        "attributes": _json.loads(row[9]),
    }
    if row[6] is not None:
        event["revenue"] = row[6]
    if row[7] is not None:
        event["value"] = row[7]
    if row[8] is not None:
        event["tags"] = _json.loads(row[8])
    event["decisions"] = [
        {
            "campaign_id": d[0],
            "experiment_id": d[1],
            "variation_id": d[2],
            "metadata": {
                "flag_key": d[3],
                "rule_key": d[4],
                "rule_type": d[5],
                "variation_key": d[6],
                "enabled": None if d[7] is None else bool(d[7]),
            },
        }
        for d in decisions
    ]
    return event
