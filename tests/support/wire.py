"""A loopback HTTP/1.1 server on raw sockets that records each request exactly as it arrived.

Unlike :mod:`support.server` (aiohttp's server, which parses and normalises), this keeps the request
line, the header lines and the body bytes untouched — what a provider's own server would recompute a
signature from. The handler sees the :class:`Recorded` request and returns ``(status, headers,
body)``. Connections are kept alive, as the clients' pools expect.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Recorded:
    request_line: bytes
    headers: tuple[tuple[str, str], ...]  # as sent: names in their case, in order
    body: bytes

    @property
    def method(self) -> str:
        return self.request_line.split(b" ")[0].decode()

    @property
    def target(self) -> str:
        """The request target (path and query) exactly as on the wire."""
        return self.request_line.split(b" ")[1].decode()

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)


Reply = tuple[int, dict[str, str], bytes]
WireHandler = Callable[[Recorded], Reply]


def json_reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return (
        status,
        {"content-type": "application/json", **(headers or {})},
        json.dumps(body).encode(),
    )


class WireServer:
    """``with WireServer(handler) as server: server.url`` → ``http://127.0.0.1:PORT``."""

    def __init__(self, handler: WireHandler) -> None:
        self.handler = handler
        self.recorded: list[Recorded] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                request_line, *lines = head.split(b"\r\n")
                headers = tuple(
                    (name.decode(), value.decode().strip())
                    for name, _, value in (line.partition(b":") for line in lines)
                )
                length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
                while len(buffer) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                body, buffer = buffer[:length], buffer[length:]
                recorded = Recorded(request_line, headers, body)
                self.recorded.append(recorded)
                status, reply_headers, data = self.handler(recorded)
                lines_out = [f"HTTP/1.1 {status} X".encode()]
                lines_out += [f"{k}: {v}".encode() for k, v in reply_headers.items()]
                lines_out.append(f"content-length: {len(data)}".encode())
                conn.sendall(b"\r\n".join(lines_out) + b"\r\n\r\n" + data)

    def __enter__(self) -> WireServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() above
        self._sock.close()
        self._thread.join(5)
