"""The send shell (HTTPClient.complete): single-flight, concurrency bound, usage totals, cost, logging."""

from __future__ import annotations

import asyncio
import json
import sys
import types
from typing import Any

import httpx
import pytest
import respx

from rftjudge import (
    BadRequestError,
    ChatRequest,
    ConfigurationError,
    Criterion,
    Message,
    OpenAIClient,
    Price,
    RateLimits,
    RetryPolicy,
    RubricJudge,
)

from support.payloads import BASE, CHAT, completion, verdict
from support.server import LoopbackServer, Reply, chat_reply

REQ = ChatRequest(messages=(Message("user", "judge this"),))
CRITERIA = [Criterion(name="quality", description="Is it good?")]


def gated(route: respx.Route, gate: asyncio.Event, reply: httpx.Response) -> list[httpx.Request]:
    """Make ``route`` hold every request until ``gate`` is set, so requests overlap in flight.

    Returns the list of requests that arrived (respx counts a call only once it is answered).
    """
    arrived: list[httpx.Request] = []

    async def effect(request: httpx.Request) -> httpx.Response:
        arrived.append(request)
        await gate.wait()
        return reply

    route.side_effect = effect
    return arrived


async def until(condition: Any, what: str) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"timed out waiting for {what}")


# -- single-flight ---------------------------------------------------------------------------


async def test_identical_in_flight_requests_are_sent_once(
    api: respx.MockRouter, client: OpenAIClient
) -> None:
    gate = asyncio.Event()
    route = api.post(CHAT)
    arrived = gated(route, gate, httpx.Response(200, json=completion("same")))
    tasks = [asyncio.ensure_future(client.complete(REQ)) for _ in range(3)]
    await until(lambda: len(arrived) == 1, "the first request")
    gate.set()
    results = await asyncio.gather(*tasks)
    assert route.call_count == 1
    assert [r.text for r in results] == ["same"] * 3
    # The tokens were spent once: only the request that went out carries them.
    assert sorted(r.usage.input_tokens for r in results) == [0, 0, 50]
    assert client.stats.requests == 1 and client.stats.coalesced == 2
    assert client.stats.input_tokens == 50
    assert client._flights == {}


async def test_different_requests_are_not_coalesced(
    api: respx.MockRouter, client: OpenAIClient
) -> None:
    route = api.post(CHAT).respond(200, json=completion("x"))
    other = ChatRequest(messages=(Message("user", "judge that"),))
    await asyncio.gather(client.complete(REQ), client.complete(other))
    assert route.call_count == 2 and client.stats.coalesced == 0


async def test_a_coalesced_failure_reaches_every_waiter(
    api: respx.MockRouter, client: OpenAIClient
) -> None:
    gate = asyncio.Event()
    route = api.post(CHAT)
    arrived = gated(route, gate, httpx.Response(400, json={"error": {"message": "bad schema"}}))
    tasks = [asyncio.ensure_future(client.complete(REQ)) for _ in range(2)]
    await until(lambda: len(arrived) == 1, "the first request")
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, BadRequestError) for r in results)
    assert route.call_count == 1
    assert client.stats.failures["bad_request"] == 1  # one request failed, once


async def test_a_cancelled_leader_hands_the_request_to_a_waiter(
    api: respx.MockRouter, client: OpenAIClient
) -> None:
    gate = asyncio.Event()
    route = api.post(CHAT)
    arrived = gated(route, gate, httpx.Response(200, json=completion("late")))
    leader = asyncio.ensure_future(client.complete(REQ))
    await until(lambda: len(arrived) == 1, "the leader's request")
    waiter = asyncio.ensure_future(client.complete(REQ))
    await asyncio.sleep(0)
    leader.cancel()
    await until(lambda: len(arrived) == 2, "the waiter's own request")
    gate.set()
    assert (await waiter).text == "late"
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert client._flights == {} and client._limiter.in_flight == 0


async def test_sampled_requests_are_not_coalesced_unless_asked(api: respx.MockRouter) -> None:
    """Two samples of one request are two draws (self-consistency), not duplicates."""
    sampled = ChatRequest(messages=REQ.messages, temperature=0.8)
    for cache_sampled, expected in ((False, 2), (True, 1)):
        gate = asyncio.Event()
        arrived = gated(api.post(CHAT), gate, httpx.Response(200, json=completion("s")))
        client = OpenAIClient("m", base_url=BASE, cache_sampled=cache_sampled)
        tasks = [asyncio.ensure_future(client.complete(sampled)) for _ in range(2)]
        await until(lambda arrived=arrived: len(arrived) >= 1, "a request")
        for _ in range(50):  # give a second request every chance to go out
            await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(*tasks)
        assert len(arrived) == expected, cache_sampled
        assert client.stats.coalesced == 2 - expected


async def test_coalescing_can_be_switched_off(api: respx.MockRouter) -> None:
    gate = asyncio.Event()
    route = api.post(CHAT)
    arrived = gated(route, gate, httpx.Response(200, json=completion("x")))
    client = OpenAIClient("m", base_url=BASE, coalesce=False)
    tasks = [asyncio.ensure_future(client.complete(REQ)) for _ in range(2)]
    await until(lambda: len(arrived) == 2, "both requests")
    gate.set()
    await asyncio.gather(*tasks)
    assert client.stats.coalesced == 0


async def test_judge_dedupes_batch_items_and_client_collapses_concurrent_duplicates(
    api: respx.MockRouter, client: OpenAIClient
) -> None:
    route = api.post(CHAT).respond(200, json=completion(verdict({"quality": 4})))
    judge = RubricJudge(client, criteria=CRITERIA)
    # Within one batch: identical items are judged once and fanned out.
    rewards = await judge.areward_batch(["q", "q", "q"], ["a", "a", "b"])
    assert rewards == [0.75, 0.75, 0.75]
    assert route.call_count == 2
    # Across calls (e.g. two reward functions sharing a judge, an ensemble's twins): the client.
    gate = asyncio.Event()
    arrived = gated(route, gate, httpx.Response(200, json=completion(verdict({"quality": 4}))))
    twins_task = asyncio.gather(judge.ajudge("q", "c"), judge.ajudge("q", "c"))
    await until(lambda: len(arrived) == 1, "the first twin's request")
    gate.set()
    twins = await twins_task
    assert len(arrived) == 1
    assert twins[0].score == twins[1].score == 0.75
    assert sorted(t.usage.requests for t in twins) == [0, 1]


# -- retries and the concurrency slot --------------------------------------------------------


async def test_retry_sleep_holds_no_concurrency_slot(api: respx.MockRouter) -> None:
    """With one slot, another request goes out while the first one waits to retry."""
    released = asyncio.Event()
    order: list[str] = []

    async def sleep(seconds: float) -> None:
        order.append("sleeping")
        await released.wait()

    first = ChatRequest(messages=(Message("user", "first"),))
    second = ChatRequest(messages=(Message("user", "second"),))
    calls = {"first": 0}

    def effect(request: httpx.Request) -> httpx.Response:
        text = json.loads(request.content)["messages"][0]["content"]
        order.append(text)
        if text == "first":
            calls["first"] += 1
            if calls["first"] == 1:
                return httpx.Response(503, json={"error": {"message": "busy"}})
        return httpx.Response(200, json=completion(text))

    api.post(CHAT).side_effect = effect
    client = OpenAIClient(
        "m",
        base_url=BASE,
        max_concurrency=1,
        retry_policy=RetryPolicy(max_retries=1, sleep=sleep),
    )
    one = asyncio.ensure_future(client.complete(first))
    await until(lambda: "sleeping" in order, "the retry sleep")
    assert (await client.complete(second)).text == "second"
    released.set()
    assert (await one).text == "first"
    assert order == ["first", "sleeping", "second", "first"]


# -- usage, cost, logging --------------------------------------------------------------------


async def test_usage_totals_and_cost(api: respx.MockRouter) -> None:
    api.post(CHAT).respond(200, json=completion("x"))  # 50 prompt + 10 completion tokens
    client = OpenAIClient("m", base_url=BASE, prices={"input": 2.0, "output": 8.0})
    for i in range(3):
        await client.complete(ChatRequest(messages=(Message("user", f"r{i}"),)))
    stats = client.stats
    assert (stats.requests, stats.input_tokens, stats.output_tokens) == (3, 150, 30)
    assert stats.cost_usd == pytest.approx((150 * 2.0 + 30 * 8.0) / 1e6)
    assert stats.snapshot()["cost_usd"] == stats.cost_usd
    assert Price(2.0, 8.0).cost(150, 30) == stats.cost_usd
    assert OpenAIClient("m", base_url=BASE).stats.cost_usd is None


@pytest.mark.parametrize(
    "prices",
    [{"input": 1.0}, {"input": 1, "output": 2, "cached": 0}, {"input": -1, "output": 1}, 3],
)
def test_bad_prices_are_configuration_errors(prices: Any) -> None:
    with pytest.raises(ConfigurationError, match="rice"):
        OpenAIClient("m", base_url=BASE, prices=prices)


def test_bad_limits_and_cache_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="limits"):
        OpenAIClient("m", base_url=BASE, limits={"requests_per_minute": 10})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="cache"):
        OpenAIClient("m", base_url=BASE, cache=object())  # type: ignore[arg-type]


async def test_reward_func_logs_client_stats_deltas_per_call(api: respx.MockRouter) -> None:
    api.post(CHAT).respond(200, json=completion(verdict({"quality": 5})))
    client = OpenAIClient("m", base_url=BASE, prices=Price(input=1.0, output=4.0))
    judge = RubricJudge(client, criteria=CRITERIA, name="judge")
    reward_func = judge.as_reward_func()

    async def call(completions: list[str]) -> dict[str, float]:
        logged: dict[str, float] = {}
        await reward_func(
            prompts=["q"] * len(completions),
            completions=completions,
            log_metric=logged.__setitem__,
        )
        return logged

    first = await call(["a", "b"])
    assert first["judge/requests"] == 2
    assert first["judge/input_tokens"] == 100 and first["judge/output_tokens"] == 20
    assert first["judge/cost_usd"] == pytest.approx((100 * 1.0 + 20 * 4.0) / 1e6)
    assert first["judge/latency_p95_s"] > 0
    second = await call(["c"])
    assert second["judge/requests"] == 1  # a delta, not the running total
    assert second["judge/cost_usd"] == pytest.approx((50 * 1.0 + 10 * 4.0) / 1e6)
    assert second["judge/failure_rate"] == 0.0


def test_stats_delta_latency_covers_only_new_attempts() -> None:
    from rftjudge.clients._stats import ClientStats

    stats = ClientStats()
    for seconds in (5.0, 5.0, 5.0):
        stats.observe_latency(seconds)
    assert stats.delta("m")["latency_p95_s"] == 5.0
    stats.observe_latency(0.1)
    assert stats.delta("m")["latency_p95_s"] == 0.1
    assert "latency_p95_s" not in stats.delta("m")
    assert stats.delta("other")["latency_p95_s"] == 5.0  # each mark has its own baseline


# -- over real sockets -----------------------------------------------------------------------


@pytest.mark.integration
def test_concurrency_bound_is_never_exceeded_with_faults() -> None:
    """Unique and duplicate requests, 429s and retries: never more than max_concurrency in flight."""
    count = {"n": 0}

    def handler(payload: dict[str, Any]) -> Reply:
        count["n"] += 1
        if count["n"] % 5 == 0:
            return Reply(
                status=429, body={"error": {"message": "slow"}}, headers={"retry-after-ms": "1"}
            )
        return Reply(
            body=chat_reply(json.dumps({"rationale": "r", "scores": {"quality": 5}})), delay=0.01
        )

    with LoopbackServer(handler) as server:
        client = OpenAIClient(
            "m",
            base_url=server.base_url,
            max_concurrency=6,
            limits=RateLimits(adaptive=False),
            retry_policy=RetryPolicy(max_retries=5),
        )
        judge = RubricJudge(client, criteria=CRITERIA)
        responses = [f"a{i % 40}" for i in range(60)]

        async def main() -> list[float | None]:
            halves = await asyncio.gather(
                judge.areward_batch(["q"] * 30, responses[:30]),
                judge.areward_batch(["q"] * 30, responses[30:]),
            )
            await client.aclose()
            return halves[0] + halves[1]

        rewards = asyncio.run(main())
        assert rewards == [1.0] * 60
        # the bound, not how close a loaded machine's scheduling lets it come (no race asserted)
        assert 1 <= server.max_in_flight <= 6
        assert client._limiter.in_flight == 0
        assert client.stats.rate_limited > 0


@pytest.mark.integration
def test_aimd_keeps_in_flight_under_the_shrunk_limit() -> None:
    """A server that rejects what exceeds 3 in flight: the limit shrinks and never passes the cap."""
    servers: list[LoopbackServer] = []

    def handler(payload: dict[str, Any]) -> Reply:
        if servers[0].in_flight > 3:
            return Reply(status=429, body={"error": {"message": "slow"}}, delay=0.005)
        return Reply(
            body=chat_reply(json.dumps({"rationale": "r", "scores": {"quality": 1}})), delay=0.01
        )

    with LoopbackServer(handler) as server:
        servers.append(server)
        client = OpenAIClient(
            "m",
            base_url=server.base_url,
            max_concurrency=8,
            retry_policy=RetryPolicy(max_retries=20, backoff_base=0.001, backoff_max=0.002),
        )
        limits: list[int] = []
        set_limit = client._limiter.set_limit

        def record(limit: int) -> None:
            limits.append(limit)
            set_limit(limit)

        client._limiter.set_limit = record  # type: ignore[method-assign]
        judge = RubricJudge(client, criteria=CRITERIA)
        rewards = judge.reward_batch(["q"] * 80, [f"a{i}" for i in range(80)])
        assert rewards == [0.0] * 80
        assert server.max_in_flight <= 8
        assert limits and min(limits) < 8 and max(limits) <= 8  # shrunk, bounded by the cap
        client.close()


# -- HTTP/2 option ---------------------------------------------------------------------------


def test_http2_needs_h2_and_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from rftjudge.clients._transport import make_http_client

    monkeypatch.setitem(sys.modules, "h2", None)  # as if not installed
    with pytest.raises(ConfigurationError, match=r"rftjudge\[http2\]"):
        make_http_client(4, 5.0, http2=True)


async def test_http2_uses_httpx_own_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "h2", types.ModuleType("h2"))  # h2 is imported only to connect
    client = OpenAIClient("m", base_url=BASE, http2=True, max_concurrency=3)
    http = client._http_client()
    transport = http._transport
    assert isinstance(transport, httpx.AsyncHTTPTransport)
    assert transport._pool._http2 is True and transport._pool._max_connections == 3
    await client.aclose()
