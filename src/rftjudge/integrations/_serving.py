"""What both reward servers (OpenRLHF's, the cohort server) need to face a shared network.

Anyone who can reach a reward server can spend its judge budget, stall it or bias it, so:

- **a bearer token** (``token=`` or the ``RFTJUDGE_SERVER_TOKEN`` variable): every request must
  carry ``Authorization: Bearer <token>`` or, for clients that cannot set headers (OpenRLHF posts
  to the URL it is given, nothing more), ``?token=<token>`` in the URL. It is compared with
  :func:`hmac.compare_digest` and redacted from uvicorn's access log. ``GET /health`` answers
  without it, but then says only ``{"status": "ok"}``. Bound to a non-loopback address without a
  token, the server logs a loud warning.
- **bounded requests** (:class:`ServerLimits`): the body is read as a stream, refused with HTTP 413
  past ``max_body_bytes`` and with 408 when it has not arrived within ``read_timeout_s`` (a client
  sending a byte a minute holds nothing for long); lists longer than ``max_items`` and strings
  longer than ``max_chars`` are refused with 413; uvicorn runs with ``limit_concurrency``.
- **a fair share of the judge** (:class:`FairShare`): the judge's concurrency slots go round-robin
  across clients and, within a client, across its requests, so a client sending 10,000 queries —
  in one request or in 10,000 — cannot push another client's single query past its deadline into
  the neutral fallback.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
import ipaddress
import json
import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from .._errors import ConfigurationError

__all__ = [
    "TOKEN_ENV",
    "FairShare",
    "RequestRejected",
    "ServerLimits",
    "TokenGate",
    "authorized",
    "read_json",
    "resolve_token",
    "run_server",
]

logger = logging.getLogger("rftjudge")

TOKEN_ENV = "RFTJUDGE_SERVER_TOKEN"
"""The environment variable a server (and :func:`~rftjudge.integrations.cohort.cohort_reward_func`)
reads its token from when none is passed."""

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Any]


@dataclass(frozen=True)
class ServerLimits:
    """Caps on what one client can make a reward server read, hold and run."""

    max_body_bytes: int = 32 << 20
    """The largest request body (HTTP 413 past it)."""
    read_timeout_s: float = 30.0
    """Time for the whole body to arrive (HTTP 408 after it)."""
    max_items: int = 8192
    """The most queries (OpenRLHF) or items (cohort) in one request."""
    max_chars: int = 1_000_000
    """The longest string in a request (a query, a prompt, a label, a completion)."""
    max_open_groups: int = 10_000
    """Cohort server: the most groups waiting for their completions at once."""
    limit_concurrency: int = 1024
    """uvicorn's ``limit_concurrency``: connections and requests at once (HTTP 503 past it)."""

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_items", "max_chars", "max_open_groups"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"ServerLimits: {name} must be an int >= 1; got {value!r}")
        if not (isinstance(self.read_timeout_s, int | float) and self.read_timeout_s > 0):
            raise ConfigurationError(
                f"ServerLimits: read_timeout_s must be > 0 seconds; got {self.read_timeout_s!r}"
            )

    def check_list(self, values: Any, what: str) -> None:
        """Refuse (413) a list over ``max_items`` or holding a string over ``max_chars``."""
        if isinstance(values, list):
            if len(values) > self.max_items:
                raise RequestRejected(
                    413, f"{what}: {len(values)} items; at most {self.max_items} per request"
                )
            for value in values:
                self.check_text(value, what)

    def check_text(self, value: Any, what: str) -> None:
        if isinstance(value, str) and len(value) > self.max_chars:
            raise RequestRejected(
                413, f"{what}: a string of {len(value):,} characters; at most {self.max_chars:,}"
            )


class RequestRejected(Exception):
    """A request refused before any judging: its HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_json(receive: Callable[[], AsyncIterator[bytes]], limits: ServerLimits) -> Any:
    """The request body (``request.stream``) as JSON, read within the byte cap and read timeout."""
    chunks: list[bytes] = []
    size = 0

    async def read() -> None:
        nonlocal size
        async for chunk in receive():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise RequestRejected(413, f"the body is over {limits.max_body_bytes:,} bytes")
            chunks.append(chunk)

    try:
        await asyncio.wait_for(read(), limits.read_timeout_s)
    except asyncio.TimeoutError:
        raise RequestRejected(
            408, f"the body did not arrive within {limits.read_timeout_s:g} s"
        ) from None
    except RequestRejected:
        raise
    except Exception as exc:  # the client went away mid-body (starlette's ClientDisconnect)
        raise RequestRejected(400, f"the body could not be read ({type(exc).__name__})") from None
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError):
        raise RequestRejected(400, "the body is not JSON") from None


def declared_too_large(scope: Scope, limits: ServerLimits) -> bool:
    """Whether the request's Content-Length alone is over the byte cap (refused unread)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return value.isdigit() and int(value) > limits.max_body_bytes
    return False


# -- the token ------------------------------------------------------------------------------------


def resolve_token(token: str | None) -> str | None:
    """``token``, else ``$RFTJUDGE_SERVER_TOKEN``, else None (no authentication)."""
    if token is None:
        token = os.environ.get(TOKEN_ENV) or None
    if token is not None and (not isinstance(token, str) or len(token) < 16):
        raise ConfigurationError(
            "the server token must be a string of at least 16 characters (e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return token


def authorized(scope: Scope, token: str | None) -> bool:
    """Whether the request carries ``token`` (any request does when there is none)."""
    if token is None:
        return True
    presented = ""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                presented = credentials.strip()
    if not presented:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        presented = (query.get("token") or [""])[0]
    return hmac.compare_digest(presented.encode(), token.encode())


class TokenGate:
    """ASGI middleware: the token check and the declared-size check, before anything is read."""

    def __init__(self, app: ASGIApp, token: str | None, limits: ServerLimits) -> None:
        self.app = app
        self.token = token
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            refusal: tuple[int, str] | None = None
            health = scope["method"] == "GET" and scope["path"] == "/health"
            if not health and not authorized(scope, self.token):
                refusal = (401, "a valid token is required (Authorization: Bearer or ?token=)")
            elif declared_too_large(scope, self.limits):
                refusal = (413, f"the body is over {self.limits.max_body_bytes:,} bytes")
            if refusal is not None:
                await _refuse(send, *refusal)
                return
        await self.app(scope, receive, send)


async def _refuse(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# -- a fair share of the judge --------------------------------------------------------------------


class FairShare:
    """Concurrency slots handed out in turn (round-robin), not first come: across clients, then
    across each client's requests.

    ``slots`` is the judge's concurrency (its client's ``max_concurrency``). Waiting items queue per
    client (the peer's host) and, within it, per request; each slot that frees goes to the next
    client in turn and, within that client, to its next request in turn. A client's single query
    waits for about one slot turnover per other active client — whether the flood arrives as one
    request of 10,000 queries or as 10,000 requests of one (OpenRLHF 0.11.2 sends one per sample).
    """

    def __init__(self, slots: int) -> None:
        self.free = max(1, int(slots))
        self._waiting: collections.OrderedDict[
            str, collections.OrderedDict[int, collections.deque[asyncio.Future[None]]]
        ] = collections.OrderedDict()

    @contextlib.asynccontextmanager
    async def slot(self, client: str, request: int) -> AsyncIterator[None]:
        """Hold one slot for an item of ``request`` from ``client`` for the block's duration."""
        if self.free > 0 and not self._waiting:
            self.free -= 1
        else:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            requests = self._waiting.setdefault(client, collections.OrderedDict())
            requests.setdefault(request, collections.deque()).append(future)
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._release()  # granted just as it was cancelled: pass the slot on
                else:
                    self._forget(client, request, future)
                raise
        try:
            yield
        finally:
            self._release()

    def _forget(self, client: str, request: int, future: asyncio.Future[None]) -> None:
        requests = self._waiting.get(client)
        queue = requests.get(request) if requests is not None else None
        if requests is None or queue is None:
            return
        with contextlib.suppress(ValueError):
            queue.remove(future)
        if not queue:
            del requests[request]
        if not requests:
            del self._waiting[client]

    def _release(self) -> None:
        while self._waiting:
            client, requests = next(iter(self._waiting.items()))
            request, queue = next(iter(requests.items()))
            future = queue.popleft()
            if queue:
                requests.move_to_end(request)  # its next item waits for the client's other requests
            else:
                del requests[request]
            if requests:
                self._waiting.move_to_end(client)  # and for every other client's turn
            else:
                del self._waiting[client]
            if not future.done():
                future.set_result(None)
                return
        self.free += 1


def judge_slots(judge: Any) -> int:
    """The judge's concurrency: its client's ``max_concurrency`` (32 when it has none)."""
    value = getattr(getattr(judge, "client", None), "max_concurrency", None)
    return value if isinstance(value, int) and value >= 1 else 32


# -- running ---------------------------------------------------------------------------------------

_LOOPBACK_NAMES = {"localhost", "ip6-localhost"}
_TOKEN_IN_QUERY = re.compile(r"(token=)[^&\s\"]*", re.IGNORECASE)


def is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _RedactToken(logging.Filter):
    """Removes ``?token=`` values from uvicorn's access-log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_QUERY.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        return True


def run_server(
    app: Any,
    *,
    host: str,
    port: int,
    log_level: str,
    token: str | None,
    limits: ServerLimits,
    what: str,
    uvicorn: Any,
) -> None:
    """Serve ``app`` with uvicorn, warning loudly when it is exposed without a token."""
    if token is None and not is_loopback(host):
        message = (
            f"rftjudge: the {what} listens on {host}:{port} WITHOUT A TOKEN: anyone who can reach "
            f"it can spend your judge budget and bias rewards. Set --token or ${TOKEN_ENV}, or "
            "bind to 127.0.0.1."
        )
        logger.warning(message)
        print(f"WARNING: {message}", file=sys.stderr, flush=True)
    logging.getLogger("uvicorn.access").addFilter(_RedactToken())
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        limit_concurrency=limits.limit_concurrency,
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=64 * 1024,  # request line and headers
    )
