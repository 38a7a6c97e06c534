"""The fast transport's error mapping: connection failures are not timeouts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest

from rftjudge.clients._transport import _Remapped, make_http_client


class Failing(httpx.AsyncBaseTransport):
    """Raises what httpx-aiohttp raises: a mapped httpx error chained to the aiohttp one."""

    def __init__(self, error: BaseException, *, in_body: bool = False) -> None:
        self.error = error
        self.in_body = in_body

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.in_body:
            raise self.error
        error = self.error

        class Body(httpx.AsyncByteStream):
            async def __aiter__(self) -> AsyncIterator[bytes]:
                yield b'{"partial'
                raise error

        return httpx.Response(200, stream=Body())


def chained(mapped: type[httpx.TransportError], cause: BaseException) -> BaseException:
    try:
        raise mapped(str(cause)) from cause
    except httpx.TransportError as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            chained(httpx.ConnectTimeout, aiohttp.ServerDisconnectedError()),
            httpx.RemoteProtocolError,
        ),
        (
            chained(httpx.ConnectTimeout, aiohttp.ClientOSError(104, "reset by peer")),
            httpx.ReadError,
        ),
        (chained(httpx.ConnectTimeout, aiohttp.ServerTimeoutError("slow")), httpx.ConnectTimeout),
        (chained(httpx.ReadTimeout, aiohttp.SocketTimeoutError("slow")), httpx.ReadTimeout),
        (chained(httpx.ReadError, aiohttp.ClientPayloadError("cut")), httpx.ReadError),
        (aiohttp.ClientError("malformed response"), httpx.RemoteProtocolError),
    ],
)
@pytest.mark.parametrize("in_body", [False, True])
async def test_errors_are_mapped_onto_the_right_httpx_error(
    error: BaseException, expected: type[Exception], in_body: bool
) -> None:
    async with httpx.AsyncClient(transport=_Remapped(Failing(error, in_body=in_body))) as http:
        with pytest.raises(httpx.TransportError) as caught:
            await http.post("http://judge.test/v1/chat/completions", content=b"{}")
    assert type(caught.value) is expected


async def test_default_client_uses_the_remapping_transport() -> None:
    http = make_http_client(4, 5.0)
    assert isinstance(http._transport, _Remapped)
    await http.aclose()
