"""Response caches: LRU and SQLite, hits and misses through the client, persistence across
processes, what is never cached, and that no API key reaches a key or a file."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from rftjudge import (
    Cache,
    ChatRequest,
    ConfigurationError,
    MemoryCache,
    Message,
    OpenAIClient,
    RetryPolicy,
    SQLiteCache,
)
from rftjudge.cache import cache_key

from support.payloads import BASE, CHAT, completion

REQ = ChatRequest(messages=(Message("user", "judge this"),))
SECRET = "sk-very-secret-key-123"
SRC = str(Path(__file__).resolve().parents[1] / "src")


def run_python(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


# -- the caches themselves -------------------------------------------------------------------


def test_memory_cache_evicts_least_recently_used() -> None:
    cache = MemoryCache(maxsize=2)
    assert isinstance(cache, Cache)
    cache.set("a", "1")
    cache.set("b", "2")
    assert cache.get("a") == "1"  # a is now the most recent
    cache.set("c", "3")
    assert cache.get("b") is None and cache.get("a") == "1" and cache.get("c") == "3"
    assert len(cache) == 2
    cache.clear()
    assert len(cache) == 0


@pytest.mark.parametrize("maxsize", [0, -1, 1.5, True])
def test_memory_cache_size_must_be_positive(maxsize: Any) -> None:
    with pytest.raises(ConfigurationError, match="maxsize"):
        MemoryCache(maxsize=maxsize)


def test_sqlite_cache_round_trip_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "judge.sqlite"
    cache = SQLiteCache(path)
    assert isinstance(cache, Cache)
    assert cache.get("k") is None
    cache.set("k", "v1")
    cache.set("k", "v2")
    assert cache.get("k") == "v2" and len(cache) == 1
    cache.close()
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_sqlite_cache_rejects_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="directory"):
        SQLiteCache(tmp_path)


def test_sqlite_cache_is_shared_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    writer = """
        import sys
        from rftjudge import SQLiteCache
        cache = SQLiteCache(sys.argv[1] if len(sys.argv) > 1 else {path!r})
        for i in range(200):
            cache.set(f"{tag}-{{i}}", "value-{tag}-" + str(i))
        print("ok")
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(writer.format(path=str(path), tag=tag))],
            env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]  # two writers at once: WAL + busy timeout serialise them
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and out.strip() == "ok", err
    reader = f"""
        from rftjudge import SQLiteCache
        cache = SQLiteCache({str(path)!r})
        print(len(cache), cache.get("a-7"), cache.get("b-199"))
    """
    assert run_python(reader) == "400 value-a-7 value-b-199"


# -- through the client ----------------------------------------------------------------------


async def test_hit_skips_the_request_and_costs_nothing(api: respx.MockRouter) -> None:
    route = api.post(CHAT).respond(200, json=completion("cached answer"))
    client = OpenAIClient("m", base_url=BASE, cache=MemoryCache())
    first = await client.complete(REQ)
    second = await client.complete(REQ)
    assert route.call_count == 1
    assert first.text == second.text == "cached answer"
    assert first.usage.input_tokens == 50 and second.usage.input_tokens == 0
    assert second.usage.requests == 0 and second.request_id is None
    stats = client.stats
    assert (stats.requests, stats.cache_hits, stats.cache_misses) == (1, 1, 1)
    other = ChatRequest(messages=(Message("user", "judge that"),))
    await client.complete(other)
    assert route.call_count == 2 and stats.cache_misses == 2


async def test_key_covers_the_whole_request(api: respx.MockRouter) -> None:
    api.post(CHAT).respond(200, json=completion("x"))
    cache = MemoryCache()
    client = OpenAIClient("m", base_url=BASE, cache=cache)
    variants = [
        REQ,
        ChatRequest(messages=REQ.messages, max_tokens=7),
        ChatRequest(messages=REQ.messages, seed=1),
        ChatRequest(messages=REQ.messages, output_schema={"type": "object"}),
        ChatRequest(messages=REQ.messages, extra_body={"top_p": 0.5}),
    ]
    for request in variants:
        await client.complete(request)
    await OpenAIClient("other-model", base_url=BASE, cache=cache).complete(REQ)
    assert len(cache) == len(variants) + 1


async def test_failures_are_never_cached(api: respx.MockRouter, fake_sleep: Any) -> None:
    cache = MemoryCache()
    client = OpenAIClient(
        "m", base_url=BASE, cache=cache, retry_policy=RetryPolicy(max_retries=0, sleep=fake_sleep)
    )
    bad = [
        httpx.Response(400, json={"error": {"message": "bad"}}),
        httpx.Response(500, json={"error": {"message": "boom"}}),
        httpx.Response(200, text="not json"),
        httpx.Response(200, json=completion('{"partial": ', finish_reason="length")),
        httpx.Response(200, json=completion("", message={"content": None, "refusal": "no"})),
        httpx.Response(200, json=completion("filtered", finish_reason="content_filter")),
    ]
    route = api.post(CHAT)
    route.side_effect = bad
    for _ in bad:
        with contextlib.suppress(Exception):
            await client.complete(REQ)
    assert route.call_count == len(bad) and len(cache) == 0
    route.side_effect = None
    route.respond(200, json=completion("good"))
    await client.complete(REQ)
    assert len(cache) == 1


async def test_sampled_requests_are_cached_only_when_asked(api: respx.MockRouter) -> None:
    route = api.post(CHAT).respond(200, json=completion("x"))
    sampled = ChatRequest(messages=REQ.messages, temperature=0.9)
    unset = ChatRequest(messages=REQ.messages, temperature=None)  # the server's default samples
    cache = MemoryCache()
    client = OpenAIClient("m", base_url=BASE, cache=cache)
    for request in (sampled, sampled, unset, unset):
        await client.complete(request)
    assert route.call_count == 4 and len(cache) == 0
    opted = OpenAIClient("m", base_url=BASE, cache=cache, cache_sampled=True)
    await opted.complete(sampled)
    await opted.complete(sampled)
    assert route.call_count == 5 and opted.stats.cache_hits == 1


async def test_no_api_key_in_keys_or_files(api: respx.MockRouter, tmp_path: Path) -> None:
    echo = completion(f"the key was {SECRET}")  # even a response that echoes the key
    route = api.post(CHAT).respond(200, json=echo)
    path = tmp_path / "c.sqlite"
    seen_keys: list[str] = []

    class Spy(SQLiteCache):
        def set(self, key: str, value: str) -> None:
            seen_keys.append(key)
            super().set(key, value)

    cache = Spy(path)
    client = OpenAIClient("m", base_url=BASE, api_key=SECRET, cache=cache)
    await client.complete(REQ)
    assert seen_keys and all(SECRET not in k for k in seen_keys)
    assert all(SECRET not in str(v) for v in cache._connection().execute("SELECT * FROM responses"))
    cache.close()
    for file in os.listdir(tmp_path):  # the database and its WAL / shared-memory files
        with open(tmp_path / file, "rb") as handle:  # noqa: ASYNC230 - a test reading a tmp file
            assert SECRET.encode() not in handle.read(), file
    # The key is not part of the cache key: a rotated key still hits.
    rotated = OpenAIClient("m", base_url=BASE, api_key="sk-rotated-456", cache=SQLiteCache(path))
    await rotated.complete(REQ)
    assert route.call_count == 1 and rotated.stats.cache_hits == 1
    assert "sk-very" not in repr(cache) and "sk-very" not in repr(client)


def test_cache_key_is_a_plain_digest() -> None:
    key = cache_key("http://x/v1/chat/completions", b'{"model":"m"}')
    assert len(key) == 64 and int(key, 16) >= 0
    assert key != cache_key("http://x/v1/chat/completions", b'{"model":"n"}')


async def test_broken_cache_never_fails_a_request(api: respx.MockRouter) -> None:
    class Broken:
        def get(self, key: str) -> str | None:
            raise OSError("disk gone")

        def set(self, key: str, value: str) -> None:
            raise OSError("disk gone")

    api.post(CHAT).respond(200, json=completion("fine"))
    client = OpenAIClient("m", base_url=BASE, cache=Broken())
    assert (await client.complete(REQ)).text == "fine"


async def test_unreadable_entry_is_a_miss(api: respx.MockRouter) -> None:
    route = api.post(CHAT).respond(200, json=completion("fresh"))
    cache = MemoryCache()
    client = OpenAIClient("m", base_url=BASE, cache=cache)
    await client.complete(REQ)
    (key,) = cache._data
    cache.set(key, "{not json")
    assert (await client.complete(REQ)).text == "fresh"
    assert route.call_count == 2
    assert json.loads(cache.get(key) or "")["choices"][0]["message"]["content"] == "fresh"


def test_cached_answer_survives_a_restart(tmp_path: Path) -> None:
    """One process judges (mocked server) and writes the cache; another reads it with no server."""
    path = str(tmp_path / "judge.sqlite")
    program = f"""
        import asyncio, json, respx, httpx
        from rftjudge import ChatRequest, Message, OpenAIClient, SQLiteCache
        REQ = ChatRequest(messages=(Message("user", "judge this"),))
        body = {json.dumps(completion("from the first run"))!r}

        async def main(serve):
            with respx.mock(using="httpx", assert_all_called=False) as router:
                route = router.post("http://judge.test/v1/chat/completions")
                route.respond(200, json=json.loads(body)) if serve else route.mock(
                    side_effect=httpx.ConnectError("no server in this run"))
                client = OpenAIClient("m", base_url="http://judge.test/v1",
                                      cache=SQLiteCache({path!r}), max_retries=0)
                response = await client.complete(REQ)
                print(response.text, route.call_count, client.stats.cache_hits)

        asyncio.run(main(serve=SERVE))
    """
    assert run_python(program.replace("SERVE", "True")) == "from the first run 1 0"
    assert run_python(program.replace("SERVE", "False")) == "from the first run 0 1"
