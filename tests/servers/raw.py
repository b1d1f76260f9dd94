"""Raw-socket servers that misbehave in one precise way (in the spirit of urllib3's dummyserver).

Each listens on 127.0.0.1 on a free port, serves every connection on its own
thread, and closes every socket it opened on ``close()``.

Modes:
    hung       read the request, never answer (until close)
    truncated  answer half a status line and headers, then close
    reset      read the request, then reset the connection (RST)
    slow       answer 204 one byte at a time, ``delay`` seconds apart
    slow_read  read the request 1 KB at a time, ``delay`` seconds apart (a slow reader)
    ok         answer 204 with keep-alive; ``connections`` counts TCP connections
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

__all__ = ["RawServer"]

_OK = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"


def _read_request(conn: socket.socket) -> bytes | None:
    """Read one HTTP request (headers + Content-Length body); None on EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head + b"\r\n\r\n" + body


class RawServer:
    def __init__(self, mode: str, *, delay: float = 0.2) -> None:
        self.mode = mode
        self.delay = delay
        self.connections = 0
        self.requests: list[bytes] = []
        self.got_request = threading.Event()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1/events"
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._closing.is_set():
                    conn.close()
                    return
                self.connections += 1
                self._conns.append(conn)
                thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        if self.mode == "slow_read":
            self._read_slowly(conn)
            return
        try:
            while not self._closing.is_set():
                request = _read_request(conn)
                if request is None:
                    return
                with self._lock:
                    self.requests.append(request)
                self.got_request.set()
                if self.mode == "hung":
                    self._closing.wait()
                    return
                if self.mode == "truncated":
                    conn.sendall(b"HTTP/1.1 20")
                    conn.shutdown(socket.SHUT_RDWR)
                    return
                if self.mode == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    conn.close()  # with linger 0: an RST, not a FIN
                    return
                if self.mode == "slow":
                    for byte in _OK:
                        if self._closing.wait(self.delay):
                            return
                        conn.sendall(bytes([byte]))
                    continue
                conn.sendall(_OK)
        except OSError:
            return

    def _read_slowly(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            while not self._closing.wait(self.delay):
                if not conn.recv(1024):
                    return
                self.got_request.set()
        except OSError:
            return

    def close(self) -> None:
        self._closing.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        self._listener.close()
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._acceptor.join(5)
        for thread in threads:
            thread.join(5)

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
