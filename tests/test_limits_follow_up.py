"""Follow-up requests (exact reads, re-asks) get a concurrency slot ahead of queued first requests."""

from __future__ import annotations

import asyncio
import json

from rftjudge import ChatRequest, ChatResponse, Criterion, FunctionClient, Message, RubricJudge
from rftjudge._limits import ConcurrencyLimiter, ahead_of_queue


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_follow_up_waiter_is_served_before_earlier_ordinary_waiters() -> None:
    limiter = ConcurrencyLimiter(1)
    order: list[str] = []
    await limiter.acquire()  # the one slot is taken

    async def wait(name: str, urgent: bool) -> None:
        with ahead_of_queue(urgent):
            await limiter.acquire()
        order.append(name)
        limiter.release()

    tasks = [
        asyncio.create_task(wait("first-a", False)),
        asyncio.create_task(wait("first-b", False)),
    ]
    await _settle()
    tasks += [asyncio.create_task(wait("read-1", True)), asyncio.create_task(wait("read-2", True))]
    await _settle()
    limiter.release()
    await asyncio.gather(*tasks)
    assert order == ["read-1", "read-2", "first-a", "first-b"]
    assert limiter.in_flight == 0


async def test_a_cancelled_follow_up_waiter_leaves_its_queue() -> None:
    limiter = ConcurrencyLimiter(1)
    await limiter.acquire()

    async def urgent() -> None:
        with ahead_of_queue():
            await limiter.acquire()

    task = asyncio.create_task(urgent())
    await _settle()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    limiter.release()
    assert limiter.in_flight == 0
    await limiter.acquire()  # the slot is free again for an ordinary waiter
    limiter.release()


def test_re_asks_are_marked_as_follow_ups() -> None:
    seen: list[ChatRequest] = []

    def handler(request: ChatRequest) -> ChatResponse | str:
        seen.append(request)
        if len(seen) == 1:
            return "not json"
        return json.dumps({"rationale": "", "scores": {"q": 4}})

    judge = RubricJudge(FunctionClient(handler), [Criterion(name="q", description="good?")])
    assert judge.judge("p", "an answer").reasks == 1
    assert [r.follow_up for r in seen] == [False, True]
    assert seen[1].messages[:2] == seen[0].messages[:2]
    assert isinstance(seen[0].messages[0], Message)
