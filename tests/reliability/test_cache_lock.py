"""Issue 17 item 6 (cache part): a SQLite cache locked by another process cannot stall the loop.

Another connection holds the cache file's write lock for longer than the judgment's deadline.
The cache is called off the event loop: the write is given up after the cache's ``io_timeout``,
counted in ``stats.cache_skipped``, and the judgment finishes within its deadline with its answer.
(Before, the write waited on the event loop for SQLite's whole busy timeout.)
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import respx

from rftjudge import ChatRequest, MemoryCache, Message, OpenAIClient, SQLiteCache

from support.payloads import BASE, CHAT, completion

REQ = ChatRequest(messages=(Message("user", "judge this"),))
BUSY_TIMEOUT_S = 8.0  # how long SQLite would wait for the lock
DEADLINE_S = 3.0  # the judgment's deadline: well under the busy timeout


@pytest.fixture
def locked_cache(tmp_path: Path) -> Iterator[SQLiteCache]:
    path = tmp_path / "cache.sqlite"
    cache = SQLiteCache(path, timeout=BUSY_TIMEOUT_S, io_timeout=0.2)
    cache.set("warm", "{}")  # the file exists, in WAL mode
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write lock, held through the test
    holder.execute("INSERT INTO responses VALUES ('other', '{}', 0)")
    try:
        yield cache
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def test_a_locked_sqlite_cache_degrades_to_no_cache_within_the_deadline(
    api: respx.MockRouter, locked_cache: SQLiteCache
) -> None:
    api.post(CHAT).respond(200, json=completion("judged"))
    client = OpenAIClient("m", base_url=BASE, cache=locked_cache)
    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await asyncio.wait_for(client.complete(REQ), DEADLINE_S)
    assert loop.time() - started < DEADLINE_S  # the loop was never blocked for the busy timeout
    assert response.text == "judged"
    assert client.stats.cache_skipped == 1  # the write, given up and counted
    assert client.stats.snapshot()["cache_skipped"] == 1
    await client.aclose()


def test_in_memory_caches_stay_inline_and_sqlite_goes_off_the_loop() -> None:
    assert MemoryCache.blocking is False
    assert SQLiteCache.blocking is True
