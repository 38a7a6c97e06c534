"""Issue 17, item 5: bounded responses and pauses from the judge side.

A judge server (or anything answering at its address) may send a 300 MB answer, an endless stream,
a gzip bomb, or rate-limit headers asking for a 10,000-hour pause. The client reads at most
``max_response_bytes`` (decoded) and fails with kind ``response_too_large`` — the attacks here go
through the default transport (aiohttp under httpx) against a loopback server — and a header-driven
pause over ``RateLimits.max_retry_after`` fails fast instead of stalling the run.
"""

from __future__ import annotations

import asyncio
import gzip
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import respx

from rftjudge import (
    ChatRequest,
    ConfigurationError,
    Message,
    OpenAIClient,
    RateLimitError,
    RateLimits,
    RateLimitSnapshot,
    ResponseTooLargeError,
    RetryPolicy,
)
from rftjudge._limits import ConcurrencyLimiter
from rftjudge.clients.base import DEFAULT_MAX_RESPONSE_BYTES

from support.payloads import BASE, CHAT, completion

MiB = 1024 * 1024
REQUEST = ChatRequest(messages=(Message("user", "Grade this."),), max_tokens=16)

Writer = Callable[[asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """A loopback HTTP/1.1 server on the test's own loop that answers with ``write``, and counts
    the body bytes it managed to send before the client went away."""

    def __init__(self, write: Writer) -> None:
        self.write = write
        self.sent = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"content-length:\s*(\d+)", head, re.IGNORECASE)
            await reader.readexactly(int(length.group(1)) if length else 0)
            await self.write(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client hung up: what the cap is for
        finally:
            writer.close()

    async def chunks(self, writer: asyncio.StreamWriter, body: AsyncIterator[bytes]) -> None:
        async for chunk in body:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            self.sent += len(chunk)
        writer.write(b"0\r\n\r\n")
        await writer.drain()


def client_for(url: str, **options: object) -> OpenAIClient:
    client = OpenAIClient("judge", base_url=url, max_retries=2, timeout=30)
    for name, value in options.items():
        setattr(client, name, value)
    return client


def test_the_default_cap_is_eight_mebibytes() -> None:
    assert OpenAIClient("judge", base_url=BASE).max_response_bytes == DEFAULT_MAX_RESPONSE_BYTES
    assert 8 * MiB == DEFAULT_MAX_RESPONSE_BYTES


async def test_an_endless_stream_is_cut_at_the_cap() -> None:
    async def endless(writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )

        async def body() -> AsyncIterator[bytes]:
            while True:
                yield b'{"choices": [' + b" " * 65_000

        await server.chunks(writer, body())

    async with RawServer(endless) as server:
        client = client_for(server.base_url, max_response_bytes=1 * MiB)
        with pytest.raises(ResponseTooLargeError) as caught:
            await client.complete(REQUEST)
        await client.aclose()
    assert caught.value.kind == "response_too_large"
    assert "max_response_bytes=1048576" in str(caught.value)
    assert client.stats.requests == 1 and client.stats.retries == 0  # never retried
    # what the server got out before the client hung up: the cap plus socket buffers, not 899 MB
    assert server.sent < 32 * MiB


async def test_an_announced_huge_body_is_refused_before_it_is_read() -> None:
    async def huge(writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: 314572800\r\n\r\n" + b"{" * 65_536
        )
        await writer.drain()
        server.sent += 65_536
        await asyncio.sleep(30)  # would never finish: the client must not wait for it

    async with RawServer(huge) as server:
        client = client_for(server.base_url)
        with pytest.raises(ResponseTooLargeError, match="314572800 bytes announced"):
            await asyncio.wait_for(client.complete(REQUEST), 10)
        await client.aclose()


async def test_a_gzip_bomb_counts_at_its_decoded_size() -> None:
    bomb = gzip.compress(b" " * (64 * MiB))  # about 64 KB on the wire

    async def compressed(writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(bomb), bomb)
        )
        await writer.drain()

    async with RawServer(compressed) as server:
        client = client_for(server.base_url, max_response_bytes=1 * MiB)
        with pytest.raises(ResponseTooLargeError):
            await client.complete(REQUEST)
        await client.aclose()


async def test_an_answer_under_the_cap_reads_as_before(api: respx.MockRouter) -> None:
    api.post(CHAT).respond(200, json=completion("x" * 10_000))
    client = client_for(BASE, max_response_bytes=20_000)
    assert (await client.complete(REQUEST)).text == "x" * 10_000
    client.max_response_bytes = 5_000
    with pytest.raises(ResponseTooLargeError):
        await client.complete(ChatRequest(messages=(Message("user", "again"),)))
    await client.aclose()


# -- header-driven pauses --------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


TEN_THOUSAND_HOURS = RateLimitSnapshot(
    limit_requests=100, remaining_requests=0, reset_requests_s=36_000_000.0
)


async def test_a_header_pause_over_max_retry_after_fails_fast_then_lifts() -> None:
    clock = FakeClock()
    rate = RateLimits(clock=clock).make_limiter(ConcurrencyLimiter(4))
    assert RateLimits().max_retry_after == 60.0  # OpenAI's SDK caps retry-after the same way
    permit = await rate.acquire()
    rate.release(permit)
    rate.observe(permit, TEN_THOUSAND_HOURS)
    with pytest.raises(RateLimitError, match="over max_retry_after=60s") as caught:
        await rate.acquire()
    assert caught.value.retry_after == 360_000.0  # one request of 100 back: 1/100 of the reset
    assert caught.value.kind == "rate_limit"
    assert clock.sleeps == []  # no 10,000-hour sleep
    clock.now += 60.0  # after max_retry_after, requests may probe the server again
    rate.release(await rate.acquire())
    assert clock.sleeps == []


async def test_a_pause_within_max_retry_after_is_still_taken() -> None:
    clock = FakeClock()
    rate = RateLimits(clock=clock, max_retry_after=600).make_limiter(ConcurrencyLimiter(4))
    permit = await rate.acquire()
    rate.release(permit)
    rate.observe(permit, RateLimitSnapshot(remaining_tokens=0, reset_tokens_s=300.0))
    rate.release(await rate.acquire())
    assert clock.sleeps == [300.0]


async def test_the_client_fails_fast_on_a_ten_thousand_hour_reset(
    api: respx.MockRouter, fake_sleep: object
) -> None:
    route = api.post(CHAT).respond(
        200,
        json=completion("ok"),
        headers={
            "x-ratelimit-limit-requests": "100",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "10000h",
        },
    )
    clock = FakeClock()
    client = OpenAIClient(
        "judge",
        base_url=BASE,
        limits=RateLimits(clock=clock),
        retry_policy=RetryPolicy(max_retries=3, sleep=fake_sleep),  # type: ignore[arg-type]
    )
    await client.complete(REQUEST)
    with pytest.raises(RateLimitError):
        await client.complete(ChatRequest(messages=(Message("user", "next"),)))
    assert clock.sleeps == [] and fake_sleep.delays == []  # type: ignore[attr-defined]
    assert route.call_count == 1 and client.stats.failures == {"rate_limit": 1}
    await client.aclose()


@pytest.mark.parametrize("value", [-1, float("inf"), True, "60"])
def test_bad_max_retry_after_is_a_configuration_error(value: object) -> None:
    with pytest.raises(ConfigurationError, match="max_retry_after"):
        RateLimits(max_retry_after=value)  # type: ignore[arg-type]
