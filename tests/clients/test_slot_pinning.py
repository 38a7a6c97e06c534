"""Follow-ups stay where their verdict was computed: llama.cpp slots pinned by the client
(``OpenAIClient(slots=)``), and the same replica of a base-URL list or an :class:`EndpointPool`."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any

import httpx
import pytest
import respx

from rftjudge import (
    ChatRequest,
    ConfigurationError,
    EndpointPool,
    MemoryCache,
    Message,
    OpenAIClient,
    RubricJudge,
)
from rftjudge._affinity import conversation, current_conversation
from rftjudge.clients._routing import EndpointRouter
from rftjudge.clients._slots import SlotPool, _shared, with_slot

from support.judges import RIGHT_AND_CLEAR as CRITERIA
from support.payloads import BASE, CHAT, completion
from support.server import LoopbackServer, Reply, chat_reply


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


# -- the slot pool ---------------------------------------------------------------------------------


async def test_a_conversation_holds_one_slot_until_it_ends() -> None:
    pool = SlotPool(2)
    with conversation():
        async with pool.lease() as first:
            pass
        assert pool.leased == 1  # the verdict's slot stays leased for its follow-ups
        async with pool.lease() as again:
            assert again == first
    assert pool.leased == 0


async def test_a_lone_request_leases_a_slot_only_while_it_runs() -> None:
    pool = SlotPool(2)
    async with pool.lease() as slot:
        assert pool.leased == 1
    assert pool.leased == 0
    assert slot in (0, 1)


async def test_slots_go_least_recently_used_first() -> None:
    pool = SlotPool(3)
    seen = []
    for _ in range(4):
        async with pool.lease() as slot:
            seen.append(slot)
    assert seen == [0, 1, 2, 0]


async def test_a_free_slot_whose_last_request_shares_the_most_goes_first() -> None:
    pool = SlotPool(3)
    for body in (b"alpha group, answer a", b"beta group, answer a"):
        async with pool.lease(body):
            pass
    async with pool.lease(b"beta group, answer b") as slot:
        assert slot == 1  # the slot that holds the beta group's prompt, not the least recently used
    async with pool.lease(b"other") as slot:
        assert slot == 2  # nothing shared anywhere: least recently used


@pytest.mark.parametrize(
    ("a", "b", "shared"), [(b"", b"x", 0), (b"abc", b"abd", 2), (b"ab", b"abc", 2)]
)
def test_shared_prefix_length(a: bytes, b: bytes, shared: int) -> None:
    assert _shared(a, b) == shared


async def test_a_conversation_waits_for_a_free_slot_and_never_shares_one() -> None:
    pool = SlotPool(1)
    order: list[str] = []
    release = asyncio.Event()

    async def verdict(name: str) -> None:
        with conversation():
            async with pool.lease():
                order.append(f"{name} verdict")
            await release.wait()
            async with pool.lease():
                order.append(f"{name} read")

    tasks = [asyncio.create_task(verdict("a")), asyncio.create_task(verdict("b"))]
    await _settle()
    assert order == ["a verdict"]  # b waits: the only slot belongs to a until a ends
    release.set()
    await asyncio.gather(*tasks)
    assert order == ["a verdict", "a read", "b verdict", "b read"]


async def test_concurrent_requests_of_one_conversation_take_one_slot() -> None:
    pool = SlotPool(2)
    slots: list[int] = []

    async def read() -> None:
        async with pool.lease() as slot:
            slots.append(slot)
            await _settle()

    with conversation():
        await asyncio.gather(read(), read(), read())
        assert pool.leased == 1
    assert len(set(slots)) == 1
    assert pool.leased == 0


async def test_a_cancelled_wait_for_a_slot_is_not_remembered() -> None:
    pool = SlotPool(1)
    async with pool.lease():  # the only slot is busy
        with conversation() as current:
            waiting = asyncio.create_task(_lease_once(pool))
            await _settle()
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
            assert current.chosen(pool) is None
    with conversation():
        assert await _lease_once(pool) == 0  # taken afresh, not stuck on the cancelled wait
    assert pool.leased == 0


async def _lease_once(pool: SlotPool) -> int:
    async with pool.lease() as slot:
        return slot


def test_the_slot_joins_the_body_without_decoding_it() -> None:
    body = json.dumps({"model": "m", "messages": []}, separators=(",", ":")).encode()
    assert json.loads(with_slot(body, 3)) == {"model": "m", "messages": [], "id_slot": 3}


@pytest.mark.parametrize("slots", [0, -1, True, 1.5])
def test_a_bad_slot_count_is_refused(slots: Any) -> None:
    with pytest.raises(ConfigurationError, match="slots must be an int >= 1"):
        OpenAIClient("m", base_url=BASE, server="llamacpp", slots=slots)


def test_slots_need_llama_cpp_and_one_server() -> None:
    with pytest.raises(ConfigurationError, match='server="llamacpp"'):
        OpenAIClient("m", base_url=BASE, server="vllm", slots=2)
    with pytest.raises(ConfigurationError, match="EndpointPool"):
        OpenAIClient("m", base_url=[BASE, "http://other.test/v1"], server="llamacpp", slots=2)


# -- a judge on a client that pins slots (real transport, loopback server) ---------------------------


def _choice(body: dict[str, Any]) -> bool:
    return bool(body["messages"][-1]["role"] == "assistant")


def _slot_server(delay: float = 0.0, props: dict[str, Any] | None = None) -> LoopbackServer:
    """Answers verdicts and exact reads like a llama.cpp server with top logprobs."""

    def handler(body: dict[str, Any]) -> Reply:
        if _choice(body):
            top = [{"token": t, "logprob": math.log(p)} for t, p in (("4", 0.75), ("3", 0.25))]
            logprobs = {"content": [{"token": "4", "logprob": math.log(0.75), "top_logprobs": top}]}
            return Reply(body=chat_reply("4", logprobs=logprobs), delay=delay)
        verdict = {"rationale": "fine", "scores": {"correct": 4, "clear": 3}}
        return Reply(body=chat_reply(json.dumps(verdict)), delay=delay)

    return LoopbackServer(handler, props=props)


def _user_text(body: dict[str, Any]) -> str:
    return next(str(m["content"]) for m in body["messages"] if m["role"] == "user")


def test_a_verdict_and_its_reads_share_one_slot_that_nobody_else_uses_meanwhile() -> None:
    with _slot_server(delay=0.01) as server:
        client = OpenAIClient(
            "m", base_url=server.base_url, server="llamacpp", slots=2, max_concurrency=4
        )
        judge = RubricJudge(client, CRITERIA)
        responses = [f"answer number {i}" for i in range(6)]
        rewards = judge.reward_batch(["q"] * 6, responses)
        client.close()
    assert all(r is not None for r in rewards)
    requests = server.requests
    assert len(requests) == 6 * 3  # a verdict and two reads each
    assert {r["id_slot"] for r in requests} <= {0, 1}
    by_judgment: dict[str, set[int]] = {}
    for body in requests:
        by_judgment.setdefault(_user_text(body), set()).add(body["id_slot"])
    assert all(len(slots) == 1 for slots in by_judgment.values())
    for slot in (0, 1):  # on one slot, a judgment's requests come together, verdict first
        runs: list[tuple[str, list[bool]]] = []
        for body in (r for r in requests if r["id_slot"] == slot):
            text = _user_text(body)
            if not runs or runs[-1][0] != text:
                runs.append((text, []))
            runs[-1][1].append(_choice(body))
        assert len({text for text, _ in runs}) == len(runs)  # nobody came back to a slot later
        assert all(kinds == [False, True, True] for _, kinds in runs)


def test_a_slot_set_by_the_caller_is_kept(api: respx.MockRouter) -> None:
    sent: list[bytes] = []

    def reply(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        return httpx.Response(200, json=completion({"rationale": "", "scores": {"correct": 4}}))

    api.post(CHAT).mock(side_effect=reply)
    client = OpenAIClient("m", base_url=BASE, server="llamacpp", slots=2, logprobs=False)
    pinned = RubricJudge(client, CRITERIA[:1], extra_body={"id_slot": 1}, exact=False)
    assert pinned.reward("q", "a") is not None
    assert sent[-1].count(b'"id_slot"') == 1
    assert json.loads(sent[-1])["id_slot"] == 1
    client.close()


# -- replicas: follow-ups go back to the endpoint of their conversation ------------------------------


async def _echo(target: str) -> str:
    return target


async def test_a_follow_up_returns_to_its_conversations_endpoint_however_loaded() -> None:
    router: EndpointRouter[str] = EndpointRouter([("a", "a"), ("b", "b")])
    send = _echo
    with conversation():
        first = await router.call([], send)
        loaded = next(e for e in router.endpoints if e.name == first)
        loaded.in_flight += 5  # least-loaded routing alone would now go elsewhere
        assert await router.call([], send, follow_up=True) == first
        assert await router.call([], send) != first  # a first request is routed by load
    assert await router.call([], send, follow_up=True) != first  # outside: by load too
    loaded.in_flight -= 5
    assert current_conversation() is None


async def test_a_follow_up_fails_over_when_its_endpoint_was_tried() -> None:
    router: EndpointRouter[str] = EndpointRouter([("a", "a"), ("b", "b")])
    with conversation():
        first = await router.call([], _echo)
        tried = [e for e in router.endpoints if e.name == first]
        follow = await router.call(tried, _echo, follow_up=True)
    assert follow != first


def test_an_endpoint_pool_sends_follow_ups_to_the_verdicts_member() -> None:
    with _slot_server() as one, _slot_server() as two:
        members = [
            OpenAIClient("m", base_url=s.base_url, server="llamacpp", slots=1, max_concurrency=1)
            for s in (one, two)
        ]
        pool = EndpointPool(members, max_concurrency=2)
        judge = RubricJudge(pool, CRITERIA)
        rewards = judge.reward_batch(["q"] * 6, [f"answer {i}" for i in range(6)])
        pool.close()
    assert all(r is not None for r in rewards)
    for server in (one, two):
        kinds: dict[str, list[bool]] = {}
        for body in server.requests:
            kinds.setdefault(_user_text(body), []).append(_choice(body))
        assert all(k == [False, True, True] for k in kinds.values())  # reads where the verdict was
    assert len(one.requests) + len(two.requests) == 18


def test_a_pool_of_slot_pinned_members_cannot_deadlock_on_its_own_limit() -> None:
    """Verdicts holding the pool's only place wait for a member's slot while the slot's owner
    needs a place for its reads: follow-ups of a conversation skip the pool's limit."""
    with _slot_server(delay=0.01) as server:
        member = OpenAIClient(
            "m", base_url=server.base_url, server="llamacpp", slots=1, max_concurrency=1
        )
        pool = EndpointPool([member], max_concurrency=1)
        judge = RubricJudge(pool, CRITERIA)
        rewards = judge.reward_batch(["q"] * 4, [f"answer {i}" for i in range(4)])
        pool.close()
    assert all(r is not None for r in rewards)
    assert len(server.requests) == 12


async def test_the_cache_key_ignores_the_slot(api: respx.MockRouter) -> None:
    route = api.post(CHAT).mock(return_value=httpx.Response(200, json=completion("4")))
    client = OpenAIClient("m", base_url=BASE, server="llamacpp", slots=2, cache=MemoryCache())
    request = ChatRequest(messages=(Message("user", "q"),), temperature=0.0, max_tokens=4)
    with conversation():
        async with client.slots.lease() as held:  # type: ignore[union-attr]
            assert held == 0
            first = await client.complete(request)  # sent from slot 0
    with conversation():
        again = await client.complete(request)  # slot 1 is next: still a cache hit
    assert first.text == again.text == "4"
    assert route.call_count == 1
    assert json.loads(route.calls[0].request.content)["id_slot"] == 0
    await client.aclose()


def test_reads_go_back_to_the_replica_of_a_base_url_list_that_wrote_their_verdict() -> None:
    with _slot_server(delay=0.005) as one, _slot_server(delay=0.005) as two:
        client = OpenAIClient(
            "m", base_url=[one.base_url, two.base_url], server="llamacpp", max_concurrency=4
        )
        judge = RubricJudge(client, CRITERIA)
        rewards = judge.reward_batch(["q"] * 8, [f"answer {i}" for i in range(8)])
        client.close()
    assert all(r is not None for r in rewards)
    assert one.requests and two.requests  # both replicas wrote verdicts
    for server in (one, two):
        kinds: dict[str, list[bool]] = {}
        for body in server.requests:
            kinds.setdefault(_user_text(body), []).append(_choice(body))
        assert all(k == [False, True, True] for k in kinds.values())


async def test_a_conversation_inside_another_is_the_outer_one() -> None:
    from rftjudge._affinity import in_conversation

    seen: list[object] = []

    @in_conversation
    async def inner() -> None:
        seen.append(current_conversation())

    with conversation() as outer:
        await inner()
        with conversation() as nested:
            assert nested is outer
    await inner()  # alone: a conversation of its own, ended when it returns
    assert seen[0] is outer and seen[1] is not outer and seen[1] is not None
    assert current_conversation() is None


def test_slots_auto_asks_the_servers_props_once() -> None:
    with _slot_server(props={"total_slots": 3}) as server:
        client = OpenAIClient("m", base_url=server.base_url, server="llamacpp", slots="auto")
        judge = RubricJudge(client, CRITERIA)
        assert all(r is not None for r in judge.reward_batch(["q"] * 4, ["a", "b", "c", "d"]))
        client.close()
    assert server.paths.count("/props") == 1
    assert client.slots is not None and client.slots.count == 3
    assert {body["id_slot"] for body in server.requests} <= {0, 1, 2}


def test_slots_auto_pins_nothing_when_the_server_does_not_say(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with _slot_server(props=None) as server, caplog.at_level(logging.INFO, "rftjudge"):
        client = OpenAIClient("m", base_url=server.base_url, server="llamacpp", slots="auto")
        judge = RubricJudge(client, CRITERIA)
        assert all(r is not None for r in judge.reward_batch(["q"] * 3, ["a", "b", "c"]))
        client.close()
    assert server.paths.count("/props") == 1
    assert client.slots is None
    assert not any("id_slot" in body for body in server.requests)
    assert any("slots not pinned" in r.getMessage() for r in caplog.records)


def test_local_client_pins_slots_only_when_asked() -> None:
    from rftjudge.app.local import local_client

    client = local_client("http://127.0.0.1:9/v1")
    assert client.slots is None and not client._ask_slots  # several clients may share a server
    assert local_client("http://127.0.0.1:9/v1", slots="auto")._ask_slots  # asked on first use
    assert local_client("http://127.0.0.1:9/v1", slots=2).slots is not None


async def test_a_pool_lets_a_conversations_later_requests_past_its_limit() -> None:
    """A conversation holding the member's only slot sends another request (a re-ask) while a
    first request of another conversation holds the pool's only place, waiting for that slot."""
    with LoopbackServer(lambda body: Reply(body=chat_reply("{}"))) as server:
        member = OpenAIClient("m", base_url=server.base_url, server="llamacpp", slots=1)
        pool = EndpointPool([member], max_concurrency=1)
        started = asyncio.Event()

        async def holder() -> None:
            with conversation():
                await pool.complete(ChatRequest(messages=(Message("user", "a"),)))
                started.set()
                await _settle()  # the other conversation now waits inside the pool's limit
                again = (Message("user", "a"), Message("assistant", "{}"), Message("user", "again"))
                await pool.complete(ChatRequest(messages=again))

        async def other() -> None:
            await started.wait()
            with conversation():
                await pool.complete(ChatRequest(messages=(Message("user", "b"),)))

        await asyncio.gather(holder(), other())
        await member.aclose()
    assert len(server.requests) == 3


def test_slots_auto_asks_again_when_props_went_unanswered() -> None:
    answers = iter([503, 200])

    class Loading(LoopbackServer):
        async def _props(self, request: Any) -> Any:
            from aiohttp import web

            self.paths.append(request.path)
            if next(answers) == 503:
                return web.json_response({"error": "loading"}, status=503)
            return web.json_response({"total_slots": 2})

    with Loading(lambda body: Reply(body=chat_reply("{}"))) as server:
        client = OpenAIClient("m", base_url=server.base_url, server="llamacpp", slots="auto")
        request = ChatRequest(messages=(Message("user", "a"),), temperature=None)
        asyncio.run(client.complete(request))
        assert client.slots is None and client._ask_slots  # not settled by a 503
        client._ask_after = 0.0  # the wait before asking again has passed
        asyncio.run(client.complete(request))
        client.close()
    assert server.paths.count("/props") == 2
    assert client.slots is not None and client.slots.count == 2
    assert "id_slot" not in server.requests[0] and server.requests[1]["id_slot"] in (0, 1)


async def test_a_lease_taken_after_its_conversation_ended_is_given_back_at_once() -> None:
    """A task outliving its conversation (a sibling of a failed read) may still lease a slot:
    nobody would give it back at the conversation's end, so it is given back when taken."""
    pool = SlotPool(1)
    with conversation() as ended:
        pass
    assert await ended.hold(pool, lambda: pool._take(b""), pool._give) == 0
    assert pool.leased == 0
