"""A loopback OpenAI-compatible HTTP server for tests and benchmarks (aiohttp, in its own thread).

The handler decides every answer, so tests can script verdicts and inject faults: any status,
headers, a non-JSON body, a delay, a dropped or reset connection, a body cut short after its headers
promised more, or a body trickled out slowly. ``disconnects`` counts requests whose client went away
while the server was still delaying its answer (how tests see that cancelled work closed its
connection).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON; str/bytes -> raw
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False  # close the connection without answering
    reset: bool = False  # abort the connection with a TCP RST (connection reset by peer)
    truncate: int | None = None  # send headers for the whole body, then only this many bytes
    trickle: float = 0.0  # seconds between body chunks of ``chunk`` bytes (a slow response)
    chunk: int = 16


Handler = Callable[[dict[str, Any]], Reply | Awaitable[Reply]]


def chat_reply(
    content: str, *, finish_reason: str = "stop", logprobs: Any = None
) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": content},
        "finish_reason": finish_reason,
    }
    if logprobs is not None:
        choice["logprobs"] = logprobs
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "test-judge",
        "choices": [choice],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


class LoopbackServer:
    """``with LoopbackServer(handler) as server: server.base_url`` → ``http://127.0.0.1:PORT/v1``."""

    def __init__(
        self,
        handler: Handler,
        routes: dict[str, Handler] | None = None,
        props: dict[str, Any] | None = None,
    ) -> None:
        self.handler = handler
        self.props = props  # GET /props answers this (llama.cpp's server); None: 404
        self.routes = dict(routes or {})  # more POST paths (e.g. "/apply-template"), each its own
        self.paths: list[str] = []  # the path of every request, in order
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.disconnects = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            payload = await request.json()
            self.requests.append(payload)
            self.paths.append(request.path)
            self.request_headers.append(dict(request.headers))
            reply = self.routes.get(request.path, self.handler)(payload)
            if asyncio.iscoroutine(reply):
                reply = await reply
            assert isinstance(reply, Reply)
            if reply.delay and not await self._wait_connected(request, reply.delay):
                self.disconnects += 1
                return web.Response()
            if reply.drop or reply.reset:
                transport = request.transport
                assert transport is not None
                if reply.reset:
                    sock = transport.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    transport.abort()
                else:
                    transport.close()
                return web.Response()
            body = reply.body
            if isinstance(body, dict | list):
                data = json.dumps(body).encode()
                ctype = "application/json"
            else:
                data = body.encode() if isinstance(body, str) else (body or b"")
                ctype = "text/plain"
            if reply.truncate is None and not reply.trickle:
                return web.Response(
                    status=reply.status, body=data, content_type=ctype, headers=reply.headers
                )
            return await self._stream(request, reply, data, ctype)
        finally:
            self.in_flight -= 1

    async def _wait_connected(self, request: web.Request, seconds: float) -> bool:
        """Sleep ``seconds``; False as soon as the client closes the connection."""
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            transport = request.transport
            if transport is None or transport.is_closing():
                return False
            await asyncio.sleep(0.005)
        return True

    async def _stream(
        self, request: web.Request, reply: Reply, data: bytes, ctype: str
    ) -> web.StreamResponse:
        """Answer with Content-Length of the whole body, then cut it short or trickle it."""
        response = web.StreamResponse(status=reply.status, headers=reply.headers)
        response.content_type = ctype
        response.content_length = len(data)
        await response.prepare(request)
        sent = data if reply.truncate is None else data[: reply.truncate]
        step = max(1, reply.chunk)
        for start in range(0, len(sent), step):
            try:
                await response.write(sent[start : start + step])
            except ConnectionResetError:  # the client gave up on the slow body
                self.disconnects += 1
                return response
            if reply.trickle:
                await asyncio.sleep(reply.trickle)
        if reply.truncate is not None:
            assert request.transport is not None
            request.transport.close()  # the promised rest of the body never comes
            return response
        await response.write_eof()
        return response

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "test-judge"}]})

    async def _props(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        if self.props is None:
            return web.json_response({"error": {"message": "not found"}}, status=404)
        return web.json_response(self.props)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        for path in self.routes:
            app.router.add_post(path, self._handle)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/props", self._props)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
