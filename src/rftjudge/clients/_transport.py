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
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx

__all__ = ["make_http_client"]

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
    return httpx.AsyncClient(transport=_Remapped(AiohttpTransport(limits=limits)), timeout=timeouts)


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

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _connection_errors_remapped():
            response = await self._inner.handle_async_request(request)
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
