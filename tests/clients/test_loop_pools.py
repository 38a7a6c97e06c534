"""A client used from many short-lived event loops keeps nothing of the loops that ended.

Every ``asyncio.run`` gets its own connection pool; when that loop shuts down the pool is closed —
and must also be forgotten: the closed pool refers to its loop, so a weak-keyed entry holding it
would keep the loop, the pool and their buffers alive for the rest of the run (a soak grew ~0.75 MB
per finished loop; benchmarks/soak.py).
"""

from __future__ import annotations

import asyncio
import gc
import json
import weakref
from typing import Any

import pytest

from rftjudge import ChatRequest, Message, OpenAIClient

from support.server import LoopbackServer, Reply, chat_reply

pytestmark = pytest.mark.integration


def test_pools_of_finished_loops_are_forgotten() -> None:
    def handler(payload: dict[str, Any]) -> Reply:
        return Reply(body=chat_reply(json.dumps({"ok": True})))

    with LoopbackServer(handler) as server:
        client = OpenAIClient("m", base_url=server.base_url)
        request = ChatRequest(messages=(Message("user", "hi"),))
        loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

        async def once() -> None:
            loops.append(weakref.ref(asyncio.get_running_loop()))
            await client.complete(request)
            assert len(client._http) == 1  # this loop's pool, while it runs

        for _ in range(5):
            asyncio.run(once())
            assert len(client._http) == 0 and len(client._closers) == 0
        gc.collect()
        assert [ref() for ref in loops] == [None] * 5  # every finished loop could be freed
        client.close()
