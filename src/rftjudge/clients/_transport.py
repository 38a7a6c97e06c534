"""The HTTP transport under rftjudge's httpx clients.

httpx 0.28's default transport (httpcore's pool) costs about 9 ms of CPU per request at 64 concurrent
connections on a small machine — the client, not the judge server, becomes the bottleneck (see
``benchmarks/``). rftjudge keeps httpx as the API (requests, responses, respx-friendly tests) and puts
aiohttp's connection pool under it through ``httpx-aiohttp``, which measured about 0.5 ms per request.
The pool is sized to the client's ``max_concurrency`` and keeps connections alive.

Users who need something else pass ``http_client=`` or ``transport=`` to any client.

httpx-aiohttp maps every ``aiohttp.ClientConnectionError`` onto ``httpx.ConnectTimeout`` — a refused
connection, a server that closed or reset it, all reported (and counted) as *timeouts* after a few
milliseconds. :class:`_Remapped` wraps its transport and its response streams and maps those back onto
httpx's connection errors, so a reset reads "connection reset" and counts as ``transport``.

**Send what you sign.** aiohttp parses the URL string httpx-aiohttp hands it with yarl, which
*normalises* the path: a Bedrock model id sent as ``/model/us.amazon.nova-lite-v1%3A0/converse``
(botocore's bytes, and the path SigV4 signed) went out as ``...v1:0/converse``, and AWS, recomputing
the signature from the path it received, rejected every model id with a colon. A client middleware
(:func:`_exact_url`) puts the URL back exactly as httpx holds it (``yarl.URL(..., encoded=True)``),
so the request line on the wire is byte for byte the one the client built.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    import aiohttp

__all__ = ["make_http_client", "release_pool"]

_KEEPALIVE_S = 30.0


def make_http_client(
    max_concurrency: int, timeout: float, *, http2: bool = False
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on the fast transport, pooled for ``max_concurrency`` requests.

    ``http2=True`` uses httpx's own transport with ``h2`` instead (aiohttp speaks no HTTP/2): one
    multiplexed connection per host where the server negotiates HTTP/2 over TLS. Opt-in: see
    ``benchmarks/README.md`` for what it costs per request.
    """
    limits = httpx.Limits(
        max_connections=max_concurrency,
        max_keepalive_connections=max_concurrency,
        keepalive_expiry=_KEEPALIVE_S,
    )
    timeouts = httpx.Timeout(timeout, connect=min(timeout, 10.0))
    if http2:
        try:
            import h2  # noqa: F401
        except ImportError:
            from .._errors import ConfigurationError

            raise ConfigurationError(
                'http2=True needs the h2 package: pip install "rftjudge[http2]"'
            ) from None
        return httpx.AsyncClient(http2=True, limits=limits, timeout=timeouts)
    try:
        from httpx_aiohttp import AiohttpTransport
    except ImportError:  # pragma: no cover - httpx-aiohttp is a core dependency
        return httpx.AsyncClient(limits=limits, timeout=timeouts)
    sessions: list[aiohttp.ClientSession] = []
    transport = AiohttpTransport(limits=limits, client=_session_factory(limits, sessions))
    return httpx.AsyncClient(transport=_Remapped(transport, sessions), timeout=timeouts)


def release_pool(http: httpx.AsyncClient) -> None:
    """Release a pool whose owner was dropped without ``aclose()``, when its loop is not running.

    Nothing can be awaited then (the loop is idle or closed), so the connections are dropped
    synchronously: each socket's close is queued on its loop, or was already made impossible by
    the loop's own close. The sessions count as closed afterwards, so aiohttp does not warn about
    an "Unclosed client session" / "Unclosed connector" when they are collected.
    """
    transport = getattr(http, "_transport", None)
    if not isinstance(transport, _Remapped):
        return  # httpx's own pool (http2=True): no warnings to prevent
    for session in transport.sessions:
        connector = session.connector
        session.detach()
        close = getattr(connector, "_close", None)  # aiohttp's synchronous part of close()
        if close is not None:
            with suppress(RuntimeError):  # a loop closed meanwhile: nothing left to schedule
                close(abort_ssl=True)


# The URL of the request being sent, exactly as httpx holds it: set by _Remapped around the inner
# transport's call (same task), read by _exact_url inside aiohttp's request pipeline.
_WIRE_URL: ContextVar[str | None] = ContextVar("rftjudge_wire_url", default=None)


def _session_factory(
    limits: httpx.Limits, made: list[aiohttp.ClientSession]
) -> Callable[[], aiohttp.ClientSession]:
    """What httpx-aiohttp builds by default (a pooled ``ClientSession``), plus :func:`_exact_url`.

    Each session made is recorded in ``made`` (see :func:`release_pool`)."""

    def make() -> aiohttp.ClientSession:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=limits.max_connections or 0,
            keepalive_timeout=limits.keepalive_expiry,
            ssl=httpx.create_ssl_context(),
        )
        session = aiohttp.ClientSession(connector=connector, middlewares=(_exact_url,))
        made.append(session)
        return session

    return make


async def _exact_url(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """Send the path and query as httpx encoded them, not as yarl re-normalised them."""
    raw = _WIRE_URL.get()
    if raw is not None and "%" in raw:  # without an escape there is nothing yarl could rewrite
        import yarl

        exact = yarl.URL(raw, encoded=True)
        if exact.raw_path_qs != request.url.raw_path_qs and exact.host == request.url.host:
            request.url = exact
    return await handler(request)


@contextmanager
def _connection_errors_remapped() -> Iterator[None]:
    """Undo httpx-aiohttp's "every connection error is a ConnectTimeout" (see the module docstring)."""
    import aiohttp

    try:
        yield
    except httpx.TimeoutException as exc:
        cause = exc.__cause__
        if not isinstance(cause, aiohttp.ClientError) or isinstance(
            cause, TimeoutError | asyncio.TimeoutError
        ):
            raise  # a real timeout
        raise _httpx_error(cause)(f"{type(cause).__name__}: {cause}") from cause
    except aiohttp.ClientError as exc:  # not mapped at all (a malformed response, ...)
        raise _httpx_error(exc)(f"{type(exc).__name__}: {exc}") from exc


def _httpx_error(exc: BaseException) -> type[httpx.TransportError]:
    import aiohttp

    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError
    if isinstance(exc, aiohttp.ClientOSError):
        return httpx.ReadError  # connection reset while waiting for the answer
    return httpx.RemoteProtocolError  # closed without answering, malformed response


class _Remapped(httpx.AsyncBaseTransport):
    """A transport (and its response streams) with connection errors mapped correctly."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, sessions: list[aiohttp.ClientSession] | None = None
    ) -> None:
        self._inner = inner
        self.sessions = [] if sessions is None else sessions

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        token = _WIRE_URL.set(str(request.url))
        try:
            with _connection_errors_remapped():
                response = await self._inner.handle_async_request(request)
        finally:
            _WIRE_URL.reset(token)
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        response.stream = _RemappedStream(stream)
        return response

    async def aclose(self) -> None:
        with _connection_errors_remapped():
            await self._inner.aclose()


class _RemappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _connection_errors_remapped():
            async for chunk in self._inner:
                yield chunk

    async def aclose(self) -> None:
        with _connection_errors_remapped():
            await self._inner.aclose()
