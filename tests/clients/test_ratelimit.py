"""Rate limiting: budgets on a fake clock, server headers, AIMD, and their wiring into the client."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import respx

from rftjudge import (
    ChatRequest,
    ConfigurationError,
    Message,
    OpenAIClient,
    RateLimits,
    RateLimitSnapshot,
    RetryPolicy,
)
from rftjudge._limits import ConcurrencyLimiter
from rftjudge.clients._ratelimit import (
    LocalRateLimiter,
    Permit,
    RateLimiter,
    estimate_tokens,
    parse_anthropic_rate_limit_headers,
    parse_duration,
    parse_openai_rate_limit_headers,
)

from support.payloads import BASE, CHAT, completion


class FakeClock:
    """Monotonic time that moves only when someone sleeps (sleeps return at once)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def limiter(concurrency: int = 8, **kwargs: object) -> tuple[LocalRateLimiter, FakeClock]:
    clock = FakeClock()
    limits = RateLimits(clock=clock, **kwargs)  # type: ignore[arg-type]
    rate = limits.make_limiter(ConcurrencyLimiter(concurrency))
    assert isinstance(rate, LocalRateLimiter) and isinstance(rate, RateLimiter)
    return rate, clock


def request(text: str = "x" * 400, max_tokens: int = 100) -> ChatRequest:
    return ChatRequest(messages=(Message("user", text),), max_tokens=max_tokens)


# -- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("12ms", 0.012),
        ("6m0s", 360.0),
        ("1s", 1.0),
        ("1h2m3.5s", 3723.5),
        ("0.5", 0.5),
        ("250us", 0.00025),
        ("soon", None),
        ("5x", None),
        ("", None),
    ],
)
def test_go_style_durations(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_openai_headers() -> None:
    snap = parse_openai_rate_limit_headers(
        {
            "x-ratelimit-limit-requests": "5000",
            "x-ratelimit-remaining-requests": "4999",
            "x-ratelimit-reset-requests": "12ms",
            "x-ratelimit-limit-tokens": "160000",
            "x-ratelimit-remaining-tokens": "159976",
            "x-ratelimit-reset-tokens": "6m0s",
        }
    )
    assert snap == RateLimitSnapshot(5000, 4999, 0.012, 160000, 159976, 360.0)
    assert parse_openai_rate_limit_headers({"content-type": "application/json"}) is None


def test_anthropic_headers_reset_as_rfc3339() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    later = (now + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    snap = parse_anthropic_rate_limit_headers(
        {
            "anthropic-ratelimit-requests-limit": "1000",
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": later,
            "anthropic-ratelimit-tokens-limit": "96000",
            "anthropic-ratelimit-tokens-remaining": "95000",
            "anthropic-ratelimit-tokens-reset": "not a date",
        },
        now=now.timestamp,
    )
    assert snap == RateLimitSnapshot(1000, 0, 30.0, 96000, 95000, None)
    assert parse_anthropic_rate_limit_headers({}) is None


def test_token_estimate_is_chars_over_four_plus_max_tokens() -> None:
    assert estimate_tokens(request("x" * 400, max_tokens=100)) == 201
    assert estimate_tokens(request("", max_tokens=0)) == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"requests_per_minute": 0},
        {"tokens_per_minute": -5},
        {"requests_per_minute": True},
        {"decrease": 1.0},
        {"min_concurrency": 0},
        {"burst_s": 0},
    ],
)
def test_bad_rate_limits_are_configuration_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="RateLimits"):
        RateLimits(**kwargs)  # type: ignore[arg-type]


# -- budgets ---------------------------------------------------------------------------------


async def test_requests_per_minute_spaces_attempts() -> None:
    rate, clock = limiter(requests_per_minute=60)  # one a second, burst of one
    starts = []
    for _ in range(5):
        permit = await rate.acquire()
        starts.append(clock.now)
        rate.release(permit)
    assert starts == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0])


async def test_concurrent_waiters_are_spaced_not_bunched() -> None:
    rate, clock = limiter(requests_per_minute=120, burst_s=0.5)  # 2/s, burst of one
    starts: list[float] = []

    async def one() -> None:
        permit = await rate.acquire()
        starts.append(clock.now)
        rate.release(permit)

    await asyncio.gather(*(one() for _ in range(4)))
    assert sorted(starts) == pytest.approx([0.0, 0.5, 1.0, 1.5])


async def test_burst_after_idle_is_bounded() -> None:
    rate, clock = limiter(requests_per_minute=600, burst_s=0.5)  # 10/s, burst of 5
    clock.now = 100.0  # a long idle spell refills no more than the burst
    starts = []
    for _ in range(7):
        permit = await rate.acquire()
        starts.append(round(clock.now - 100.0, 6))
        rate.release(permit)
    assert starts == [0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.2]


async def test_tokens_per_minute_uses_estimate_then_corrects_with_usage() -> None:
    rate, clock = limiter(tokens_per_minute=6000)  # 100 tokens/s, burst 100
    assert rate.estimates_tokens
    first = await rate.acquire(100)
    rate.correct(first, 10)  # the server said 10: 90 come back
    rate.release(first)
    second = await rate.acquire(100)
    assert clock.now == pytest.approx(0.1)
    rate.release(second)
    rate.correct(second, 300)  # more than estimated: the debt grows
    third = await rate.acquire(1)
    assert clock.now == pytest.approx(0.1 + 2.01)
    rate.release(third)


async def test_cancelled_wait_gives_the_reservation_back() -> None:
    rate, clock = limiter(requests_per_minute=60)
    rate.release(await rate.acquire())

    async def cancelled_sleep(seconds: float) -> None:
        raise asyncio.CancelledError

    real_sleep = clock.sleep
    clock.sleep = cancelled_sleep  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await rate.acquire()
    clock.sleep = real_sleep  # type: ignore[method-assign]
    rate.release(await rate.acquire())
    assert clock.now == pytest.approx(1.0)  # only the first request's spacing, not two


# -- the server's headers --------------------------------------------------------------------


async def test_exhausted_header_budget_pauses_until_refilled() -> None:
    rate, clock = limiter()
    permit = await rate.acquire()
    rate.release(permit)
    rate.observe(
        permit, RateLimitSnapshot(limit_requests=60, remaining_requests=0, reset_requests_s=6.0)
    )
    rate.release(await rate.acquire())
    assert clock.sleeps == [pytest.approx(0.1)]  # 60 back in 6 s: one in 0.1 s
    rate.release(await rate.acquire())
    assert len(clock.sleeps) == 1  # the pause is over: back on the fast path


async def test_header_pause_without_limit_waits_for_the_reset() -> None:
    rate, clock = limiter()
    permit = await rate.acquire()
    rate.release(permit)
    rate.observe(permit, RateLimitSnapshot(remaining_tokens=0, reset_tokens_s=2.0))
    rate.release(await rate.acquire())
    assert clock.sleeps == [2.0]


async def test_headers_can_be_ignored() -> None:
    rate, clock = limiter(respect_headers=False)
    permit = await rate.acquire()
    rate.observe(
        permit, RateLimitSnapshot(limit_requests=1, remaining_requests=0, reset_requests_s=60)
    )
    rate.release(permit)
    rate.release(await rate.acquire())
    assert clock.sleeps == []


# -- AIMD ------------------------------------------------------------------------------------


async def test_aimd_halves_once_per_window_and_grows_back_to_the_cap() -> None:
    rate, _ = limiter(concurrency=16)
    window = [await rate.acquire() for _ in range(16)]
    for permit in window:
        rate.release(permit)
    for permit in window[:15]:
        rate.on_rate_limited(permit, None)
    assert rate.concurrency == 16  # not a window's worth of evidence yet
    rate.on_rate_limited(window[15], None)
    assert rate.concurrency == 8  # a whole window of 429s: halve, once
    rate.on_rate_limited(window[0], None)  # a late answer from the old window: ignored
    assert rate.concurrency == 8
    seen = set()
    for _ in range(500):
        permit = await rate.acquire()
        rate.release(permit)
        rate.on_success(permit)
        seen.add(rate.concurrency)
    assert rate.concurrency == 16 and max(seen) == 16
    assert seen == set(range(8, 17))  # additive: one step at a time


async def simulate(
    rate: LocalRateLimiter, rounds: int, rejected: Callable[[int, int], bool]
) -> tuple[list[int], float]:
    """Round trips of a full window; ``rejected(i, window)`` decides each request's fate."""
    rng = random.Random(7)
    limits, outcomes, rejections = [], 0, 0
    for _ in range(rounds):
        window = rate.concurrency
        permits = [await rate.acquire() for _ in range(window)]
        fates = [rejected(i, window) for i in range(window)]
        order = list(range(window))
        rng.shuffle(order)  # answers arrive in any order
        for i in order:
            rate.release(permits[i])
            if fates[i]:
                rate.on_rate_limited(permits[i], 0.1)
            else:
                rate.on_success(permits[i])
        limits.append(window)
        outcomes += window
        rejections += sum(fates)
    return limits, rejections / outcomes


@pytest.mark.parametrize(("capacity", "low", "high"), [(24, 12, 28), (8, 4, 10)])
async def test_aimd_finds_the_servers_capacity(capacity: int, low: int, high: int) -> None:
    """A server that rejects what exceeds its capacity in flight: the limit settles near it."""
    rate, _ = limiter(concurrency=64)
    limits, share = await simulate(rate, 300, lambda i, window: i >= capacity)
    settled = limits[100:]
    assert low <= sum(settled) / len(settled) <= high
    assert max(settled) <= 1.7 * capacity
    assert share < 0.15  # without AIMD it would be (64 - capacity) / 64


async def test_aimd_holds_when_429s_do_not_depend_on_load() -> None:
    """A server shedding 30 % at random: shrinking cannot help, so the limit does not collapse."""
    rng = random.Random(3)
    rate, _ = limiter(concurrency=64)
    limits, share = await simulate(rate, 300, lambda i, window: rng.random() < 0.3)
    assert 0.25 < share < 0.35
    assert sum(limits) / len(limits) >= 40 and min(limits) >= 16


async def test_aimd_still_shrinks_when_random_429s_turn_into_overload() -> None:
    rng = random.Random(5)
    rate, _ = limiter(concurrency=64)
    await simulate(rate, 100, lambda i, window: rng.random() < 0.3)
    limits, _ = await simulate(rate, 200, lambda i, window: i >= 8)
    assert sum(limits[100:]) / 100 <= 12


async def test_aimd_respects_min_concurrency_and_can_be_off() -> None:
    rate, _ = limiter(concurrency=64, min_concurrency=20)
    await simulate(rate, 50, lambda i, window: i >= 4)
    assert rate.concurrency >= 20
    fixed, _ = limiter(concurrency=8, adaptive=False)
    await simulate(fixed, 10, lambda i, window: True)
    assert fixed.concurrency == 8


def test_permit_is_released_once() -> None:
    concurrency = ConcurrencyLimiter(2)
    rate = LocalRateLimiter(RateLimits(), concurrency)
    permit = asyncio.run(rate.acquire())
    assert isinstance(permit, Permit) and concurrency.in_flight == 1
    rate.release(permit)
    rate.release(permit)
    assert concurrency.in_flight == 0


# -- wired into the client -------------------------------------------------------------------


def _client(clock: FakeClock, fake_sleep: object, **limits: object) -> OpenAIClient:
    return OpenAIClient(
        "m",
        base_url=BASE,
        max_concurrency=8,
        limits=RateLimits(clock=clock, **limits),  # type: ignore[arg-type]
        retry_policy=RetryPolicy(max_retries=3, sleep=fake_sleep),  # type: ignore[arg-type]
    )


async def test_client_paces_requests_per_minute(api: respx.MockRouter, fake_sleep: object) -> None:
    api.post(CHAT).respond(200, json=completion("ok"))
    clock = FakeClock()
    client = _client(clock, fake_sleep, requests_per_minute=30)
    for i in range(3):
        await client.complete(request(f"r{i}"))
    assert clock.sleeps == [pytest.approx(2.0), pytest.approx(2.0)]


async def test_client_corrects_token_estimates_with_usage(
    api: respx.MockRouter, fake_sleep: object
) -> None:
    api.post(CHAT).respond(200, json=completion("ok"))  # usage: 60 tokens
    clock = FakeClock()
    client = _client(clock, fake_sleep, tokens_per_minute=120_000)  # 2000/s, burst 2000
    for i in range(3):
        await client.complete(request("x" * 400 + str(i), max_tokens=800))  # estimate 901
    # Each estimate is corrected to the 60 tokens used, so the third request needs no wait
    # (uncorrected, 3 x 901 would overdraw the 2000-token burst).
    assert clock.sleeps == []


async def test_client_429s_shrink_concurrency_and_successes_grow_it(
    api: respx.MockRouter, fake_sleep: object
) -> None:
    calls = {"n": 0}

    def every_other(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] % 2:
            return httpx.Response(
                429, json={"error": {"message": "slow down"}}, headers={"retry-after": "1"}
            )
        return httpx.Response(200, json=completion("ok"))

    api.post(CHAT).side_effect = every_other
    client = _client(FakeClock(), fake_sleep)
    for i in range(9):  # a 429, then a success, each time: the 17th answer decides
        await client.complete(request(f"r{i}"))
    assert client._limiter.limit == 4
    assert client.stats.rate_limited == 9 and client.stats.retries == 9
    api.post(CHAT).respond(200, json=completion("ok"))
    for i in range(30):  # 4 -> 8 takes 4 + 5 + 6 + 7 successes
        await client.complete(request(f"g{i}"))
    assert client._limiter.limit == 8


async def test_client_reads_rate_limit_headers(api: respx.MockRouter, fake_sleep: object) -> None:
    api.post(CHAT).respond(
        200,
        json=completion("ok"),
        headers={
            "x-ratelimit-limit-requests": "100",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "10s",
        },
    )
    clock = FakeClock()
    client = _client(clock, fake_sleep)
    await client.complete(request("a"))
    assert client.last_rate_limits is not None
    assert client.last_rate_limits.remaining_requests == 0
    await client.complete(request("b"))
    assert clock.sleeps == [pytest.approx(0.1)]


async def test_provider_hook_decides_which_headers_count(
    api: respx.MockRouter, fake_sleep: object
) -> None:
    class Quiet(OpenAIClient):
        def rate_limit_state(self, headers: object) -> None:
            return None

    api.post(CHAT).respond(
        200,
        json=completion("ok"),
        headers={"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "10s"},
    )
    clock = FakeClock()
    client = Quiet("m", base_url=BASE, limits=RateLimits(clock=clock))
    await client.complete(request("a"))
    await client.complete(request("b"))
    assert client.last_rate_limits is None and clock.sleeps == []
