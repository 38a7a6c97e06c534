"""API keys are secrets: never in a repr, an attribute, an exception, a log record or the cache.

Every client is checked the same way: the key is held as a ``SecretStr`` (so ``vars(client)`` shows
it nowhere), a server that echoes the request's headers in its error body and headers gets them
scrubbed out of the exception, and with the ``httpx``, ``httpcore``, ``aiohttp`` and ``rftjudge``
loggers at DEBUG no record carries the key — over both transports (aiohttp's pool, httpcore's).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from rftjudge import (
    AnthropicClient,
    AzureOpenAIClient,
    BedrockClient,
    ChatRequest,
    Criterion,
    GeminiClient,
    HTTPClient,
    JudgeError,
    MemoryCache,
    Message,
    OllamaClient,
    OpenAIClient,
    RetryPolicy,
    RubricJudge,
    SQLiteCache,
)

from support.server import LoopbackServer, Reply, chat_reply

KEY = "sk-test-SECRET-0123456789abcdef"
TOKEN = "session-SECRET-token-fedcba9876"
REQUEST = ChatRequest(messages=(Message("user", "hello"),), output_schema=None)
LOGGERS = ("httpx", "httpcore", "aiohttp", "rftjudge", "hpack", "asyncio")

Factory = Callable[..., HTTPClient]
CLIENTS: dict[str, Factory] = {
    "openai": lambda **kw: OpenAIClient("m", base_url="http://judge.test/v1", api_key=KEY, **kw),
    "openai-default-host": lambda **kw: OpenAIClient("m", api_key=KEY, **kw),
    "azure-key": lambda **kw: AzureOpenAIClient(
        "deployment", endpoint="https://res.openai.azure.com", api_key=KEY, **kw
    ),
    "azure-entra-token": lambda **kw: AzureOpenAIClient(
        "deployment", endpoint="https://res.openai.azure.com", azure_ad_token=KEY, **kw
    ),
    "anthropic": lambda **kw: AnthropicClient("claude-test", api_key=KEY, **kw),
    "gemini": lambda **kw: GeminiClient("gemini-test", api_key=KEY, **kw),
    "ollama": lambda **kw: OllamaClient("llama-test", api_key=KEY, **kw),
    "bedrock-api-key": lambda **kw: BedrockClient(
        "anthropic.claude-test", region="us-east-1", api_key=KEY, **kw
    ),
    "bedrock-sigv4": lambda **kw: BedrockClient(
        "anthropic.claude-test",
        region="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key=KEY,
        aws_session_token=TOKEN,
        **kw,
    ),
}


def plain_strings(obj: Any, seen: set[int] | None = None, depth: int = 0) -> Iterator[str]:
    """Every str reachable from ``obj``'s attributes, dicts, lists — but not inside a SecretStr."""
    seen = seen if seen is not None else set()
    if id(obj) in seen or depth > 6 or isinstance(obj, SecretStr):
        return
    seen.add(id(obj))
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, bytes):
        yield obj.decode("utf-8", "replace")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from plain_strings(k, seen, depth + 1)
            yield from plain_strings(v, seen, depth + 1)
    elif isinstance(obj, list | tuple | set | frozenset):
        for v in obj:
            yield from plain_strings(v, seen, depth + 1)
    elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("rftjudge"):
        yield from plain_strings(vars(obj), seen, depth + 1)
    elif callable(obj) and getattr(obj, "__closure__", None):
        for cell in obj.__closure__ or ():
            try:
                yield from plain_strings(cell.cell_contents, seen, depth + 1)
            except ValueError:  # an empty cell
                continue


def leaks(*things: Any) -> list[str]:
    return [s for thing in things for s in plain_strings(thing) if KEY in s or TOKEN in s]


@pytest.mark.parametrize("name", list(CLIENTS))
def test_key_is_held_as_a_secret(name: str) -> None:
    client = CLIENTS[name]()
    assert KEY not in repr(client) and KEY not in str(client)
    assert leaks(client) == [], f"{name} keeps its key in plain text"
    assert KEY in client.secrets()  # ... and still knows what to scrub


def echoing_transport() -> httpx.MockTransport:
    """A server that repeats every request header back: in its error body and response headers."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen = dict(request.headers)
        return httpx.Response(
            401,
            json={"error": {"message": f"bad credentials {seen}", "code": "invalid_api_key"}},
            headers={"x-echo": json.dumps(seen), "x-request-id": seen.get("authorization", "")},
        )

    return httpx.MockTransport(handler)


@pytest.mark.parametrize("name", list(CLIENTS))
async def test_key_never_in_an_error(name: str) -> None:
    client = CLIENTS[name](transport=echoing_transport())
    with pytest.raises(JudgeError) as caught:
        await client.complete(REQUEST)
    error = caught.value
    rendered = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    assert KEY not in rendered and TOKEN not in rendered
    assert leaks(error, error.args, str(error), repr(error)) == []
    await client.aclose()


@pytest.mark.parametrize("name", ["openai", "anthropic", "gemini", "ollama", "bedrock-sigv4"])
async def test_key_never_in_a_transport_error(name: str) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url} with {dict(request.headers)}")

    client = CLIENTS[name](
        transport=httpx.MockTransport(fail), retry_policy=RetryPolicy(max_retries=0)
    )
    with pytest.raises(JudgeError) as caught:
        await client.complete(REQUEST)
    assert KEY not in str(caught.value) and TOKEN not in str(caught.value)
    await client.aclose()


# -- logs, over real sockets ---------------------------------------------------------------------


def echo_server_handler(
    server_ref: list[LoopbackServer], *, in_headers: bool
) -> Callable[[dict[str, Any]], Reply]:
    """Answers by turns: 503, then a verdict that quotes the key, then a 401 echoing the request
    headers in its body (and, with ``in_headers``, in its own headers)."""
    calls = {"n": 0}

    def handler(payload: dict[str, Any]) -> Reply:
        calls["n"] += 1
        headers = server_ref[0].request_headers[-1]
        if calls["n"] % 3 == 1:
            return Reply(status=503, body={"error": {"message": f"overloaded {headers}"}})
        if calls["n"] % 3 == 2:
            verdict = {"rationale": f"you sent {headers.get('Authorization')}", "scores": {"q": 5}}
            return Reply(body=chat_reply(json.dumps(verdict)))
        echo = {"x-echo": str(headers)} if in_headers else {}
        return Reply(status=401, body={"error": {"message": f"bad key {headers}"}}, headers=echo)

    return handler


@pytest.mark.parametrize("transport", ["aiohttp", "httpcore"])
async def test_key_never_in_debug_logs(
    transport: str, caplog: pytest.LogCaptureFixture, fake_sleep: Any
) -> None:
    """httpcore logs response headers verbatim at DEBUG, so over httpcore a server that echoed
    the key in a response *header* would leak it there (documented); nothing else does."""
    for logger in LOGGERS:
        logging.getLogger(logger).setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    ref: list[LoopbackServer] = []
    try:
        handler = echo_server_handler(ref, in_headers=transport == "aiohttp")
        with LoopbackServer(handler) as server:
            ref.append(server)
            options: dict[str, Any] = {}
            if transport == "httpcore":
                options["transport"] = httpx.AsyncHTTPTransport()
            client = OpenAIClient(
                "m",
                base_url=server.base_url,
                api_key=KEY,
                retry_policy=RetryPolicy(max_retries=1, sleep=fake_sleep),
                **options,
            )
            judge = RubricJudge(client, criteria=[Criterion(name="q", description="d")])
            first = await judge.areward("q", "a")  # 503, retried, then the quoting verdict
            second = await judge.areward("q", "b")  # 401: logged as a failed judgment
            await client.aclose()
    finally:
        for logger in LOGGERS:
            logging.getLogger(logger).setLevel(logging.NOTSET)
    assert first == 1.0 and second is None
    assert any(KEY in h.get("Authorization", "") for h in server.request_headers)  # it was sent
    assert len(caplog.records) > 5  # the loggers really were talking
    formatter = logging.Formatter("%(message)s")
    for record in caplog.records:
        text = formatter.format(record) + repr(record.args)
        assert KEY not in text, f"{record.name}: {record.getMessage()[:200]}"


# -- the cache -----------------------------------------------------------------------------------


async def test_key_never_in_the_cache(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        quoted = request.headers["authorization"]
        return httpx.Response(200, json=chat_reply(f"your header was {quoted}"))

    path = tmp_path / "judge-cache.sqlite"
    memory = MemoryCache()
    for cache in (SQLiteCache(path), memory):
        client = OpenAIClient(
            "m",
            base_url="http://judge.test/v1",
            api_key=KEY,
            cache=cache,
            transport=httpx.MockTransport(handler),
        )
        first = await client.complete(REQUEST)
        second = await client.complete(REQUEST)  # a cache hit
        assert client.stats.cache_hits == 1
        assert KEY not in second.text and KEY in first.text  # the live answer is untouched
        await client.aclose()
    assert KEY.encode() not in path.read_bytes()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT * FROM sqlite_master").fetchall()
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'"):
            rows += db.execute(f"SELECT * FROM {table}").fetchall()
    assert rows and not any(KEY in str(row) for row in rows)
    assert leaks(memory) == []
