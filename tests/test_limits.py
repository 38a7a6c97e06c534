from __future__ import annotations

import asyncio
import threading

import pytest

from rftjudge._limits import ConcurrencyLimiter


async def test_limit_holds_within_one_loop() -> None:
    limiter = ConcurrencyLimiter(2)
    peak = 0

    async def work() -> None:
        nonlocal peak
        async with limiter.slot():
            peak = max(peak, limiter.in_flight)
            await asyncio.sleep(0)
            await asyncio.sleep(0)

    await asyncio.gather(*(work() for _ in range(10)))
    assert peak == 2 and limiter.in_flight == 0


def test_limit_holds_across_loops_in_threads() -> None:
    limiter = ConcurrencyLimiter(3)
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    async def work() -> None:
        async with limiter.slot():
            with lock:
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
            await asyncio.sleep(0.002)
            with lock:
                state["now"] -= 1

    def run_loop() -> None:
        async def main() -> None:
            await asyncio.gather(*(work() for _ in range(20)))

        asyncio.run(main())

    threads = [threading.Thread(target=run_loop) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert state["peak"] == 3 and limiter.in_flight == 0


async def test_cancelled_waiter_gives_its_slot_back() -> None:
    limiter = ConcurrencyLimiter(1)
    await limiter.acquire()
    waiter = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    limiter.release()
    assert limiter.in_flight == 0
    await asyncio.wait_for(limiter.acquire(), 1)
    assert limiter.in_flight == 1


async def test_cancel_after_grant_does_not_leak() -> None:
    limiter = ConcurrencyLimiter(1)
    await limiter.acquire()
    waiter = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    limiter.release()  # grant in transit to the waiter
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.sleep(0)
    assert limiter.in_flight == 0


async def test_set_limit_wakes_waiters() -> None:
    limiter = ConcurrencyLimiter(1)
    await limiter.acquire()
    waiter = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    assert not waiter.done()
    limiter.set_limit(2)
    await asyncio.wait_for(waiter, 1)
    assert limiter.in_flight == 2
