"""Endpoint pools: least-in-flight routing, ejection and half-open probes, failover within one retry
budget, per-endpoint stats — for ``OpenAIClient(base_url=[...])`` and ``EndpointPool([...])``.

The router's rules run on a fake clock, and so does the in-flight balance across replicas of
different speeds (replicas answering on a virtual clock: no wall-clock ratios); the behaviour that
needs real sockets (no item lost while a replica is killed and restarted, traffic moving away and
back) runs against real loopback servers.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import httpx
import pytest
import respx
from aiohttp import web

from rftjudge import (
    BadRequestError,
    ChatRequest,
    ConfigurationError,
    Criterion,
    FunctionClient,
    MemoryCache,
    OpenAIClient,
    RateLimitError,
    RateLimits,
    RetryPolicy,
    RubricJudge,
    ServerError,
    TransportError,
)
from rftjudge._types import Message
from rftjudge.clients import EndpointPool
from rftjudge.clients.pool import EndpointRouter, endpoint_limits

from support.payloads import completion, verdict
from support.server import LoopbackServer, Reply, chat_reply

URLS = ["http://a.test/v1", "http://b.test/v1", "http://c.test/v1"]
CRITERIA = [Criterion(name="quality", description="good?")]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def request(text: str = "q") -> ChatRequest:
    return ChatRequest(messages=(Message(role="user", content=text),), temperature=0.0)


def connect_error() -> TransportError:
    error = TransportError("ConnectError: refused")
    error.__cause__ = httpx.ConnectError("refused")
    return error


def server_error() -> ServerError:
    return ServerError("boom", status_code=503)


# -- the router's rules ----------------------------------------------------------------------------


def test_least_in_flight_with_round_robin_ties() -> None:
    router = EndpointRouter([(u, u) for u in URLS])
    first = [router.pick() for _ in range(3)]
    assert sorted(e.name for e in first) == sorted(URLS)  # one each before any gets a second
    router.finish(first[1], None, 0.01)  # that one is now the least loaded
    assert router.pick() is first[1]
    assert [s.in_flight for s in router.stats().values()] == [1, 1, 1]


def test_connect_error_ejects_at_once_and_a_probe_brings_it_back() -> None:
    clock = FakeClock()
    router = EndpointRouter([(u, u) for u in URLS], cooldown=5.0, clock=clock)
    a = router.endpoints[0]
    router.finish(router.pick(), connect_error(), None)  # the first pick is a
    assert a.state == "ejected"
    assert all(router.pick() is not a for _ in range(20))
    clock.now = 5.0  # cool-down over: half-open, exactly one probe at a time
    probe = router.pick()
    assert probe is a and a.probing
    assert all(router.pick() is not a for _ in range(10))
    router.finish(a, None, 0.02)
    assert a.state == "healthy"  # type: ignore[comparison-overlap]  # mypy keeps the narrowing across finish()
    assert router.stats()[a.name].ejections == 1


def test_failed_probe_doubles_the_cooldown_up_to_the_cap() -> None:
    clock = FakeClock()
    router = EndpointRouter([("a", 1), ("b", 2)], cooldown=1.0, max_cooldown=3.0, clock=clock)
    a = router.endpoints[0]
    router.finish(router.pick(), connect_error(), None)
    for expected in (2.0, 3.0, 3.0):  # each failed probe: twice as long, capped
        clock.now = a.until
        assert router.pick() is a
        router.finish(a, connect_error(), None)
        assert a.until - clock.now == expected
    clock.now = a.until
    router.finish(router.pick(), None, 0.01)
    router.finish(router.pick(), server_error(), None)  # a single 5xx is not enough
    assert a.state == "healthy" and a.strikes == 0


def test_repeated_5xx_eject_but_429s_and_4xx_do_not() -> None:
    router = EndpointRouter([("a", 1), ("b", 2)], eject_after=3)
    a, b = router.endpoints

    def on_a(error: BaseException | None) -> None:
        assert router.pick([b]) is a
        router.finish(a, error, None if error else 0.01)

    on_a(server_error())
    on_a(server_error())
    assert a.state == "healthy" and a.consecutive == 2
    on_a(RateLimitError("busy", status_code=429))
    on_a(BadRequestError("no", status_code=400))
    assert a.consecutive == 0  # it answered: alive, however unhelpfully
    for _ in range(3):
        on_a(server_error())
    # mypy keeps the narrowing from the asserts above across the calls that change the states
    assert a.state == "ejected" and b.state == "healthy"  # type: ignore[comparison-overlap]
    assert router.stats()["a"].failures == {"server": 5, "rate_limit": 1, "bad_request": 1}


def test_all_ejected_tries_the_one_that_recovers_first() -> None:
    clock = FakeClock()
    router = EndpointRouter([("a", 1), ("b", 2)], cooldown=5.0, clock=clock)
    router.finish(router.pick(), connect_error(), None)
    clock.now = 1.0
    router.finish(router.pick(), connect_error(), None)
    assert {e.state for e in router.endpoints} == {"ejected"}
    assert router.pick().name == "a"  # ejected first, so back first: tried rather than failing


def test_cancelled_probe_lets_another_through() -> None:
    clock = FakeClock()
    router = EndpointRouter([("a", 1), ("b", 2)], cooldown=1.0, clock=clock)
    a = router.endpoints[0]
    router.finish(router.pick(), connect_error(), None)
    clock.now = 1.0
    assert router.pick() is a
    router.finish(a, asyncio.CancelledError(), None)
    assert a.state == "half_open" and not a.probing and router.pick() is a


def test_router_validates_its_settings() -> None:
    with pytest.raises(ConfigurationError):
        EndpointRouter([])
    with pytest.raises(ConfigurationError, match="unique"):
        EndpointRouter([("a", 1), ("a", 2)])
    with pytest.raises(ConfigurationError, match="cooldown"):
        EndpointRouter([("a", 1)], cooldown=10, max_cooldown=5)


def test_endpoint_limits_are_equal_shares_under_their_own_keys() -> None:
    limits = RateLimits(
        requests_per_minute=600,
        tokens_per_minute=90_000,
        backend="redis://:pw@localhost:6379/0",
        key="judge",
        max_in_flight=64,
    )
    share = endpoint_limits(limits, URLS[1], 3)
    assert share.requests_per_minute == 200 and share.tokens_per_minute == 30_000
    assert share.max_in_flight == 22 and share.key == f"judge@{URLS[1]}"
    assert endpoint_limits(RateLimits(), URLS[0], 3) == RateLimits()


# -- OpenAIClient(base_url=[...]): the send shell routes each attempt -----------------------------


def _ok(content: Any = None) -> httpx.Response:
    return httpx.Response(200, json=completion(content or verdict({"quality": 5})))


async def test_url_list_spreads_requests_and_fails_over_within_the_budget(
    api: respx.MockRouter, fake_sleep: Any
) -> None:
    routes = {u: api.post(f"{u}/chat/completions") for u in URLS}
    routes[URLS[0]].mock(return_value=httpx.Response(503, json={"error": {"message": "down"}}))
    routes[URLS[1]].mock(return_value=_ok())
    routes[URLS[2]].mock(return_value=_ok())
    client = OpenAIClient(
        "m", base_url=URLS, retry_policy=RetryPolicy(max_retries=2, sleep=fake_sleep)
    )
    responses = await asyncio.gather(*(client.complete(request(f"q{i}")) for i in range(30)))
    assert all(r.text for r in responses)
    stats = client.endpoints.stats() if client.endpoints else {}
    assert stats[URLS[0]].failures == {"server": 3} and stats[URLS[0]].state == "ejected"
    assert stats[URLS[1]].successes + stats[URLS[2]].successes == 30
    assert min(stats[URLS[1]].successes, stats[URLS[2]].successes) >= 5
    assert client.stats.requests == 30 and client.stats.retries == 3 and not client.stats.failed
    assert max(r.retries for r in responses) == 1  # each failed once, then went elsewhere


async def test_url_list_retries_are_one_budget_not_one_per_endpoint(
    api: respx.MockRouter, fake_sleep: Any
) -> None:
    for url in URLS:
        api.post(f"{url}/chat/completions").mock(
            return_value=httpx.Response(500, json={"error": {"message": "x"}})
        )
    client = OpenAIClient(
        "m", base_url=URLS, retry_policy=RetryPolicy(max_retries=2, sleep=fake_sleep)
    )
    with pytest.raises(ServerError):
        await client.complete(request())
    assert api.calls.call_count == 3  # 1 + 2 retries in all, each on an endpoint not yet tried
    assert sorted(str(c.request.url) for c in api.calls) == sorted(
        f"{u}/chat/completions" for u in URLS
    )


async def test_url_list_shares_one_cache_and_splits_the_limits(api: respx.MockRouter) -> None:
    for url in URLS[:2]:
        api.post(f"{url}/chat/completions").mock(return_value=_ok())
    client = OpenAIClient(
        "m",
        base_url=URLS[:2],
        max_concurrency=10,
        cache=MemoryCache(),
        limits=RateLimits(requests_per_minute=120),
    )
    await client.complete(request("same"))
    again = await client.complete(request("same"))  # the other endpoint's turn: still a hit
    assert client.stats.cache_hits == 1 and api.calls.call_count == 1 and again.usage.requests == 0
    assert client.endpoints is not None
    shares = [e.target for e in client.endpoints.endpoints]
    assert [s.concurrency.limit for s in shares] == [5, 5]
    assert all(getattr(s.rate, "limits").requests_per_minute == 60 for s in shares)  # noqa: B009
    assert client.base_url == URLS[0] and "a.test" in repr(client)


def test_single_url_client_has_no_router_and_bad_lists_are_refused() -> None:
    assert OpenAIClient("m", base_url=URLS[0]).endpoints is None
    assert OpenAIClient("m", base_url=[URLS[0] + "/"]).endpoints is None
    with pytest.raises(ConfigurationError, match="base_url"):
        OpenAIClient("m", base_url=[])
    with pytest.raises(ConfigurationError, match="twice"):
        OpenAIClient("m", base_url=[URLS[0], URLS[0] + "/"])


# -- EndpointPool([...]): any clients, the pool owns the retries -----------------------------------


async def test_pool_of_function_clients_fails_over_and_takes_over_retries(
    fake_sleep: Any,
) -> None:
    def broken(request: ChatRequest) -> str:
        raise connect_error()

    good = FunctionClient(lambda r: "fine", model="judge")
    bad = FunctionClient(broken, model="judge")
    http = OpenAIClient("judge", base_url="http://unused.test/v1", max_retries=3)
    pool = EndpointPool([bad, good, http], retry_policy=RetryPolicy(sleep=fake_sleep))
    assert http.retry_policy.max_retries == 0 and pool.retry_policy.max_retries == 3
    pool.router.endpoints[2].state = "ejected"  # keep the HTTP member out of this test
    pool.router.endpoints[2].until = float("inf")
    responses = [await pool.complete(request()) for _ in range(6)]
    assert [r.text for r in responses] == ["fine"] * 6
    stats = pool.stats()
    assert stats["0:FunctionClient"].failures == {"transport": 1}
    assert stats["0:FunctionClient"].state == "ejected"
    assert stats["1:FunctionClient"].successes == 6
    assert stats["1:FunctionClient"].latency_p50_s is not None
    assert pool.model == "judge" and pool.max_concurrency == 8 + 8 + 32
    assert responses[0].retries == 1


async def test_pool_does_not_retry_what_must_not_be_retried(fake_sleep: Any) -> None:
    calls = {"n": 0}

    def refuse(request: ChatRequest) -> str:
        calls["n"] += 1
        raise BadRequestError("bad", status_code=400)

    pool = EndpointPool(
        [FunctionClient(refuse), FunctionClient(refuse)],
        retry_policy=RetryPolicy(max_retries=3, sleep=fake_sleep),
    )
    with pytest.raises(BadRequestError):
        await pool.complete(request())
    assert calls["n"] == 1 and not fake_sleep.delays


def test_pool_refuses_empty_or_duplicated_members() -> None:
    member = FunctionClient(lambda r: "x")
    with pytest.raises(ConfigurationError):
        EndpointPool([])
    with pytest.raises(ConfigurationError, match="twice"):
        EndpointPool([member, member])


# -- real servers: kill one mid-run, restart it; in-flight balance ---------------------------------


class RestartableServer(LoopbackServer):
    """A LoopbackServer that can be killed (its connections aborted, its port closed) and brought
    back on the same port."""

    def __init__(self, handler: Any) -> None:
        super().__init__(handler)
        self._transports: set[asyncio.Transport] = set()
        self.up = False

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            self._transports.add(request.transport)
        return await super()._handle(request)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        if not self.port:
            server = site._server
            assert isinstance(server, asyncio.Server)
            self.port = server.sockets[0].getsockname()[1]
        self.up = True

    def kill(self) -> None:
        async def down() -> None:
            for transport in self._transports:
                transport.abort()  # requests in flight die with their connections
            self._transports.clear()
            assert self._runner is not None
            await self._runner.cleanup()

        self.up = False
        asyncio.run_coroutine_threadsafe(down(), self._loop).result(10)

    def restart(self) -> None:
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def __exit__(self, *exc: object) -> None:
        if self.up:
            super().__exit__(*exc)
        else:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)


def _answer_after(seconds: float) -> Any:
    """Answer after ``seconds``; the score of "answer N" is 1 + N mod 5, so each item's is known."""

    def handler(payload: dict[str, Any]) -> Reply:
        found = re.search(r"answer (\d+)", payload["messages"][-1]["content"])
        score = 1 + int(found.group(1)) % 5 if found else 3
        reply = Reply(body=chat_reply(json.dumps({"rationale": "r", "scores": {"quality": score}})))
        reply.delay = seconds
        return reply

    return handler


async def _until(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


@pytest.mark.integration
@pytest.mark.timeout(90)
async def test_replica_killed_and_restarted_mid_run_loses_nothing() -> None:
    servers = [RestartableServer(_answer_after(s)) for s in (0.02, 0.03, 0.05)]
    for server in servers:
        server.__enter__()
    try:
        urls = [s.base_url for s in servers]
        client = OpenAIClient(
            "m",
            base_url=urls,
            max_concurrency=24,
            retry_policy=RetryPolicy(max_retries=3, backoff_base=0.02, backoff_max=0.1),
        )
        assert client.endpoints is not None
        client.endpoints.base_cooldown = 0.1
        client.endpoints.max_cooldown = 0.4
        judge = RubricJudge(client, criteria=CRITERIA)
        n = 2400
        responses = [f"answer {i}" for i in range(n)]
        batch = asyncio.create_task(judge.ajudge_batch(["q"] * n, responses))
        victim = servers[0]  # the fastest replica

        def served() -> int:
            return sum(len(s.requests) for s in servers)

        await _until(lambda: served() >= n // 4)
        victim.kill()
        at_kill = len(victim.requests)
        await _until(lambda: served() >= n // 2)
        assert len(victim.requests) == at_kill  # nothing reached it while it was down
        assert client.endpoints.stats()[victim.base_url].state != "healthy"
        victim.restart()
        at_restart = len(victim.requests)
        await _until(lambda: len(victim.requests) - at_restart >= 50 or batch.done())
        assert not batch.done()  # traffic came back while the batch was still running
        outcomes = await batch
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        assert not failures, failures[:3]
        expected = [(i % 5) / 4 for i in range(n)]
        got = [getattr(o, "score", None) for o in outcomes]
        assert got == pytest.approx(expected)  # every item, its own verdict
        stats = client.endpoints.stats()
        assert stats[victim.base_url].ejections >= 1
        # Only what was in flight at the kill, and the probes while it was down, failed there.
        assert stats[victim.base_url].failures["transport"] <= 8 + stats[victim.base_url].ejections
        assert stats[victim.base_url].state == "healthy"
        assert client.stats.failed == 0
        await client.aclose()
    finally:
        for server in servers:
            server.__exit__(None, None, None)


class VirtualReplicas:
    """Replicas as FunctionClients on a virtual clock: replica ``i`` answers each request
    ``periods[i]`` ticks after it arrived, whatever else it serves (as a server with a fixed
    latency). The test advances the clock; nothing depends on the machine's speed or load."""

    def __init__(self, periods: tuple[int, ...]) -> None:
        self.periods = periods
        self.clock = FakeClock()
        self.due: list[list[tuple[float, asyncio.Future[None]]]] = [[] for _ in periods]
        self.served = [0] * len(periods)
        self.peaks = [0] * len(periods)
        self.members = [FunctionClient(self._handler(i), model="m") for i in range(len(periods))]
        for member in self.members:
            member.max_concurrency = 32  # type: ignore[attr-defined]

    def _handler(self, i: int) -> Any:
        async def answer(request: ChatRequest) -> str:
            done = asyncio.get_running_loop().create_future()
            self.due[i].append((self.clock.now + self.periods[i], done))
            self.peaks[i] = max(self.peaks[i], len(self.due[i]))
            await done
            self.served[i] += 1
            return "ok"

        return answer

    @property
    def in_flight(self) -> int:
        return sum(len(d) for d in self.due)

    def tick(self) -> None:
        """One tick later: answer every request that is due."""
        self.clock.now += 1
        for queue in self.due:
            for when, done in [entry for entry in queue if entry[0] <= self.clock.now]:
                queue.remove((when, done))
                done.set_result(None)


async def _settle(condition: Any) -> None:
    """Let the event loop run until ``condition()`` (bounded: a wrong count fails, never hangs)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the event loop did not settle")


async def test_least_in_flight_balances_load_across_replicas_of_different_speed() -> None:
    replicas = VirtualReplicas((1, 3, 6))
    pool = EndpointPool(replicas.members)
    pool.router._clock = replicas.clock  # latencies in ticks
    workers, per_worker = 24, 40
    left = [per_worker] * workers

    async def worker(w: int) -> None:
        while left[w]:
            await pool.complete(request(f"{w}-{left[w]}"))
            left[w] -= 1

    tasks = [asyncio.create_task(worker(w)) for w in range(workers)]
    def busy() -> int:  # each busy worker has one request out
        return sum(1 for n in left if n)

    await _settle(lambda: replicas.in_flight == busy())
    while busy():
        replicas.tick()
        await _settle(lambda: replicas.in_flight == busy())
    await asyncio.gather(*tasks)
    counts, peaks = replicas.served, replicas.peaks
    assert sum(counts) == workers * per_worker
    # In flight is balanced (8 each; round robin would pile ~14 onto the slowest), so the fast
    # replica serves several times the slow one's requests.
    assert max(peaks) <= 10, peaks
    assert counts[0] > 2.5 * counts[2], counts
    stats = pool.stats()
    names = list(stats)
    assert [stats[n].requests for n in names] == counts
    assert [stats[n].latency_p50_s for n in names] == [1.0, 3.0, 6.0]
    await pool.aclose()


def test_judge_config_takes_a_base_url_list_and_limits() -> None:
    from rftjudge.app.config import build_client, fingerprint, parse_config

    data = {
        "provider": "openai",
        "model": "m",
        "base_url": URLS,
        "criteria": [{"name": "q", "description": "quality"}],
        "limits": {"requests_per_minute": 300, "adaptive": False},
    }
    config = parse_config(data)
    client = build_client(config)
    assert isinstance(client, OpenAIClient) and client.endpoints is not None
    assert [e.name for e in client.endpoints.endpoints] == URLS
    assert client.limits.requests_per_minute == 300 and not client.limits.adaptive
    # Limits are operational: changing them does not re-judge a data set.
    other = parse_config({**data, "limits": {"requests_per_minute": 60}})
    assert fingerprint(other) == fingerprint(config)
    with pytest.raises(ConfigurationError, match="limits"):
        parse_config({**data, "limits": {"requests_per_minute": -1}})
    with pytest.raises(ConfigurationError, match="limits"):
        parse_config({**data, "limits": {"no_such_setting": 1}})
