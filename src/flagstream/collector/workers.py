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
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection

import msgspec

from flagstream.collector.schema import Batch, DecodedBatch, EventKey, decode_batch, event_keys

__all__ = ["MIN_OFFLOAD_BYTES", "DecodeWorkers"]

_LOG = logging.getLogger("flagstream.collector")

MIN_OFFLOAD_BYTES = 64 * 1024  # below this, the round trip costs more than it saves
_READY = b"ready"
_SOCKET_BUFFER = 4 * 1024 * 1024  # the kernel caps it at net.core.wmem_max / rmem_max
_REPLY_DEADLINE = 30.0  # a worker slower than this is killed and the body decoded in-thread
_KEYS_ENCODER = msgspec.msgpack.Encoder()
_KEYS_DECODER = msgspec.msgpack.Decoder(list[tuple[str, str, int]])
_BATCH_DECODER = msgspec.json.Decoder(Batch)


def reply_for(body: bytes) -> bytes:
    """A worker's answer: the body's event keys in order as msgpack when it is valid, else ``b""``."""
    try:
        return _KEYS_ENCODER.encode(event_keys(_BATCH_DECODER.decode(body)))
    except Exception:  # any failure: the collector decodes the body itself and says why
        return b""


def keys_from(reply: bytes) -> list[EventKey] | None:
    """The keys a worker's answer carries, or None when it did not find the body valid."""
    return _KEYS_DECODER.decode(reply) if reply else None


def serve(fd: int) -> None:
    """A worker process's loop on its end of the socket pair: :func:`reply_for` each body received."""
    conn = Connection(fd)
    conn.send_bytes(_READY)
    while True:
        try:
            body = conn.recv_bytes()
        except (EOFError, OSError):  # the collector stopped or went away
            return
        try:
            conn.send_bytes(reply_for(body))
        except OSError:
            return


def _spawn() -> tuple[Connection, subprocess.Popen[bytes]]:
    """One worker: a fresh interpreter (never a fork of this threaded process, never a re-import of
    ``__main__``) that imports the same flagstream and serves on a socket pair."""
    ours, theirs = socket.socketpair()
    for sock in (ours, theirs):  # room for a whole body: one write, no ping-pong on a full buffer
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
    # This process's sys.path, so the worker imports the very same flagstream (as multiprocessing's
    # spawn does), without running this program's __main__ again.
    code = (
        f"import sys; sys.path[:] = {sys.path!r}; "
        f"from flagstream.collector.workers import serve; serve({theirs.fileno()})"
    )
    try:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-c", code],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C stops the collector, which then ends its workers
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return Connection(ours.detach()), proc


class DecodeWorkers:
    """A fixed set of decode processes shared by the request threads of one collector."""

    def __init__(self, n: int) -> None:
        self._n = n
        self._lock = threading.Lock()
        self._idle: list[Connection] = []
        self._procs: dict[Connection, subprocess.Popen[bytes]] = {}
        self._closed = False

    def start(self, timeout: float = 10.0) -> int:
        """Start the processes and wait until they are ready; returns how many are."""
        deadline = time.monotonic() + timeout
        pending: list[tuple[Connection, subprocess.Popen[bytes]]] = []
        try:
            for _ in range(self._n):
                pending.append(_spawn())
        except (OSError, ValueError) as exc:  # no interpreter to start, no fd passing on this platform
            _LOG.warning("collector decode workers cannot start (%s); decoding in the request threads", exc)
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
            keys = keys_from(conn.recv_bytes())
        except (OSError, EOFError, msgspec.DecodeError) as exc:
            self._drop(conn, exc)
            return decode_batch(body)
        with self._lock:
            closed = self._closed
            if not closed:
                self._idle.append(conn)
        if closed:  # close() ran while this body was being decoded and ended the worker
            conn.close()
        return decode_batch(body) if keys is None else DecodedBatch.of(keys)

    def _drop(self, conn: Connection, exc: BaseException) -> None:
        with self._lock:
            closed = self._closed
            proc = self._procs.pop(conn, None)
        if not closed:
            _LOG.warning("collector decode worker failed (%s); decoding in the request thread", exc)
        conn.close()
        if proc is not None:
            _end(conn, proc, 0.0)

    def pids(self) -> list[int]:
        """The process ids of the running workers (for measuring their CPU)."""
        with self._lock:
            return [p.pid for p in self._procs.values()]

    def close(self, timeout: float = 2.0) -> bool:
        """Stop every worker; True when all ended in time.

        An idle worker exits when its socket closes; a busy one is killed (its
        request thread then decodes the body itself, if it still runs).
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            procs, self._procs = self._procs, {}
        clean = True
        for conn, proc in procs.items():
            if conn in idle:
                clean = _end(conn, proc, max(0.0, deadline - time.monotonic())) and clean
            else:
                proc.kill()  # the request thread owns and closes the socket
                proc.wait()
        return clean


def _end(conn: Connection, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Close the socket (the worker then exits), wait up to ``timeout``, then kill; True if it ended in time."""
    conn.close()
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()  # SIGKILL cannot be ignored; reaping it is immediate
        return False
