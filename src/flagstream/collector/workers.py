"""Decode large bodies in worker processes, so ingest uses more than the one core the GIL allows.

Decoding and validating a batch (msgspec, in C) holds the GIL for about 2 ms
per 1000 events; it is most of the collector's CPU per event. With
``decode_workers=N`` the collector starts N processes that decode bodies of at
least :data:`MIN_OFFLOAD_BYTES` and send back only the events' keys, in
order, as msgpack. The request thread waits for the answer with the GIL
released; storing, de-duplicating and answering stay in the collector.

A worker only says "valid, and these are the keys". Whenever it does not (an
invalid body, an error, a worker that died or took longer than its deadline,
or no idle worker) the request thread decodes the body itself with the same
decoder, which stays the only judge of validity and names the first bad field.
So the answers are the same with or without workers; only the CPU moves.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import msgspec

from flagstream.collector.schema import Batch, DecodedBatch, EventKey, decode_batch, event_keys

__all__ = ["MIN_OFFLOAD_BYTES", "DecodeWorkers"]

_LOG = logging.getLogger("flagstream.collector")

MIN_OFFLOAD_BYTES = 64 * 1024  # below this, the round trip costs more than it saves
_READY = b"ready"
_REPLY_DEADLINE = 30.0  # a worker slower than this is killed and the body decoded in-thread
_KEYS_ENCODER = msgspec.msgpack.Encoder()
_KEYS_DECODER = msgspec.msgpack.Decoder(list[tuple[str, str, int]])
_BATCH_DECODER = msgspec.json.Decoder(Batch)


def _serve(conn: Connection) -> None:
    """A worker process: decode each body received, answer its keys or ``b""`` when not valid."""
    conn.send_bytes(_READY)
    while True:
        try:
            body = conn.recv_bytes()
        except (EOFError, OSError):  # the collector stopped or went away
            return
        try:
            reply = _KEYS_ENCODER.encode(event_keys(_BATCH_DECODER.decode(body)))
        except Exception:  # any failure: the collector decodes the body itself and says why
            reply = b""
        try:
            conn.send_bytes(reply)
        except OSError:
            return


class DecodeWorkers:
    """A fixed set of decode processes shared by the request threads of one collector."""

    def __init__(self, n: int) -> None:
        self._n = n
        self._lock = threading.Lock()
        self._idle: list[Connection] = []
        self._procs: dict[Connection, BaseProcess] = {}
        self._closed = False

    def start(self, timeout: float = 10.0) -> int:
        """Start the processes and wait until they are ready; returns how many are."""
        ctx = multiprocessing.get_context("spawn")  # never fork a process that runs threads
        deadline = time.monotonic() + timeout
        pending: list[tuple[Connection, BaseProcess]] = []
        for i in range(self._n):
            ours, theirs = ctx.Pipe(duplex=True)
            proc: BaseProcess = ctx.Process(
                target=_serve, args=(theirs,), name=f"flagstream-decode-{i}", daemon=True
            )
            proc.start()
            theirs.close()
            pending.append((ours, proc))
        for conn, proc in pending:
            ready = False
            with contextlib.suppress(EOFError, OSError):
                ready = conn.poll(max(0.0, deadline - time.monotonic())) and conn.recv_bytes() == _READY
            if ready:
                with self._lock:
                    self._idle.append(conn)
                    self._procs[conn] = proc
            else:
                _LOG.warning("collector decode worker did not start; decoding in the request thread")
                _end(conn, proc, 0.0)
        return len(self._procs)

    def decode(self, body: bytes) -> DecodedBatch:
        """Decode and validate ``body`` (raises ``PayloadError`` like :func:`decode_batch`)."""
        if len(body) < MIN_OFFLOAD_BYTES:
            return decode_batch(body)
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            return decode_batch(body)
        keys: list[EventKey] | None = None
        try:
            conn.send_bytes(body)
            if not conn.poll(_REPLY_DEADLINE):
                raise TimeoutError("decode worker did not answer in time")
            reply = conn.recv_bytes()
            if reply:
                keys = _KEYS_DECODER.decode(reply)
        except (OSError, EOFError, msgspec.DecodeError) as exc:
            self._drop(conn, exc)
            return decode_batch(body)
        with self._lock:
            if self._closed:
                _end(conn, self._procs.pop(conn), 0.0)
            else:
                self._idle.append(conn)
        return decode_batch(body) if keys is None else DecodedBatch.of(keys)

    def _drop(self, conn: Connection, exc: BaseException) -> None:
        _LOG.warning("collector decode worker failed (%s); decoding in the request thread", exc)
        with self._lock:
            proc = self._procs.pop(conn, None)
        if proc is not None:
            _end(conn, proc, 0.0)

    def pids(self) -> list[int]:
        """The process ids of the running workers (for measuring their CPU)."""
        with self._lock:
            return [p.pid for p in self._procs.values() if p.pid is not None]

    def close(self, timeout: float = 2.0) -> bool:
        """Stop the idle workers now (busy ones as they finish); True when all ended in time."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            procs = [(conn, self._procs.pop(conn)) for conn in idle]
        clean = True
        for conn, proc in procs:
            clean = _end(conn, proc, max(0.0, deadline - time.monotonic())) and clean
        return clean


def _end(conn: Connection, proc: BaseProcess, timeout: float) -> bool:
    """Close the pipe (the worker then exits), wait up to ``timeout``, then kill."""
    conn.close()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join(1.0)
    clean = not proc.is_alive()
    if clean:
        proc.close()
    return clean
