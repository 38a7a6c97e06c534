"""Issue 17 item 4: reward servers that hold up on a shared network.

OpenRLHF's reward server and the cohort server: a bearer token (compared in constant time; a loud
warning when exposed without one), a streamed body read with a byte cap and a read timeout, caps on
list length, string length and open cohort groups, uvicorn's ``limit_concurrency``, a fair share of
the judge per request, cohort keys no third party can predict or reuse for another prompt, and
``serve openrlhf --eos-token``. In-process ASGI (httpx's ASGITransport): no network.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, MutableMapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

pytest.importorskip("starlette")

from rftjudge.integrations import openrlhf
from rftjudge.integrations._serving import FairShare, ServerLimits
from rftjudge.integrations.cohort import (
    CohortBuffer,
    CohortFullError,
    CohortItem,
    cohort_reward_func,
    create_cohort_app,
    group_key,
)

from support.judges import GOOD, scripted_judge

TOKEN = "t0ken-for-the-tests-0123456789"
PROMPT = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://server")


def body(responses: Sequence[str]) -> dict[str, Any]:
    return {"query": [PROMPT + r for r in responses], "prompts": [PROMPT] * len(responses)}


async def chunks(parts: list[bytes]) -> Any:
    for part in parts:
        yield part


# -- the token -------------------------------------------------------------------------------------


async def test_a_token_is_required_by_header_or_query() -> None:
    judge, _ = scripted_judge(on_error=0.5)
    app = openrlhf.create_app(judge, token=TOKEN)
    async with client_for(app) as http:
        none = await http.post("/get_reward", json=body(["4"]))
        wrong = await http.post(
            "/get_reward", json=body(["4"]), headers={"authorization": "Bearer x"}
        )
        header = await http.post(
            "/get_reward", json=body(["4"]), headers={"authorization": f"Bearer {TOKEN}"}
        )
        query = await http.post(f"/get_reward?token={TOKEN}", json=body(["4"]))
        bare_health = await http.get("/health")
        health = await http.get(f"/health?token={TOKEN}")
    assert none.status_code == wrong.status_code == 401
    assert header.json()["rewards"] == query.json()["rewards"] == [GOOD]
    assert bare_health.json() == {"status": "ok"}  # liveness without the judge's details
    assert health.json()["judge"] == "judge"


def test_the_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from rftjudge import ConfigurationError
    from rftjudge.integrations._serving import resolve_token

    monkeypatch.setenv("RFTJUDGE_SERVER_TOKEN", TOKEN)
    assert resolve_token(None) == TOKEN
    with pytest.raises(ConfigurationError, match="at least 16 characters"):
        resolve_token("short")


class FakeUvicorn:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def run(self, app: Any, **kwargs: Any) -> None:
        self.calls.append(kwargs)


def test_exposed_without_a_token_warns_loudly_and_uvicorn_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("RFTJUDGE_SERVER_TOKEN", raising=False)
    fake = FakeUvicorn()
    monkeypatch.setattr(openrlhf, "_uvicorn", lambda: fake)
    judge, _ = scripted_judge(on_error=0.5)
    with caplog.at_level(logging.WARNING, logger="rftjudge"):
        openrlhf.serve(judge, host="0.0.0.0", port=5999)
        openrlhf.serve(judge, host="127.0.0.1", port=5999)
        openrlhf.serve(judge, host="0.0.0.0", port=5999, token=TOKEN)
    warnings = [r for r in caplog.records if "WITHOUT A TOKEN" in r.getMessage()]
    assert len(warnings) == 1 and "0.0.0.0:5999" in warnings[0].getMessage()
    assert "WITHOUT A TOKEN" in capsys.readouterr().err
    assert all(call["limit_concurrency"] == ServerLimits().limit_concurrency for call in fake.calls)


# -- bounded requests ------------------------------------------------------------------------------


async def test_body_list_and_string_caps_answer_413() -> None:
    judge, script = scripted_judge(on_error=0.5)
    limits = ServerLimits(max_body_bytes=4000, max_items=3, max_chars=500)
    app = openrlhf.create_app(judge, limits=limits)
    async with client_for(app) as http:
        big = await http.post("/get_reward", content=b'{"query": ["' + b"x" * 5000 + b'"]}')
        streamed = await http.post(  # no Content-Length: the streamed read stops at the cap
            "/get_reward", content=chunks([b'{"query": ["', b"x" * 5000, b'"]}'])
        )
        many = await http.post("/get_reward", json={"query": ["4"] * 4})
        long = await http.post("/get_reward", json={"query": ["4" * 501]})
        fine = await http.post("/get_reward", json={"query": ["4"] * 3})
    assert big.status_code == streamed.status_code == 413
    assert many.status_code == 413 and "at most 3" in many.json()["error"]
    assert long.status_code == 413 and "at most 500" in long.json()["error"]
    assert fine.status_code == 200 and len(script.seen) == 3


async def test_a_body_that_never_arrives_gets_408() -> None:
    judge, script = scripted_judge(on_error=0.5)
    app = openrlhf.create_app(judge, limits=ServerLimits(read_timeout_s=0.05))
    sent: list[MutableMapping[str, Any]] = []
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b'{"query": [', "more_body": True}
        await asyncio.Event().wait()  # a slowloris: the rest never comes
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/get_reward", "raw_path": b"/get_reward", "query_string": b"",
        "root_path": "", "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 5000),
    }  # fmt: skip
    await asyncio.wait_for(app(scope, receive, send), 10)
    assert sent[0]["status"] == 408 and not script.seen


async def test_open_cohort_groups_are_capped() -> None:
    judge = SimpleNamespace(ajudge_group=lambda *a: None, name="g")
    buffer = CohortBuffer(judge, group_size=2, max_open_groups=3)
    items = [CohortItem(f"k{i}", 2, f"p{i}", "c") for i in range(4)]
    with pytest.raises(CohortFullError, match="more than the 3 open"):
        await buffer.submit(items)
    assert buffer.pending == 0  # nothing joined


async def test_a_request_opening_too_many_groups_gets_413() -> None:
    from rftjudge import FunctionClient, ListwiseJudge

    from support.listwise import ListwiseScript

    judge = ListwiseJudge(FunctionClient(ListwiseScript({})))
    app = create_cohort_app(judge, group_size=8, limits=ServerLimits(max_open_groups=100))
    items = [
        {"key": f"k{i}", "group_size": 8, "prompt": "p", "completion": "c"} for i in range(101)
    ]
    async with client_for(app) as http:
        response = await http.post("/cohort", json={"items": items})
    assert response.status_code == 413 and "100 open" in response.json()["error"]


# -- a fair share of the judge --------------------------------------------------------------------


class GatedJudge:
    """A judge whose client runs 2 judgments at once; each finishes when the test says so."""

    name = "gated"
    on_error = 0.5

    def __init__(self) -> None:
        self.client = SimpleNamespace(max_concurrency=2)
        self.slots = asyncio.Semaphore(2)  # the client's own limit (FIFO)
        self.started: list[str] = []
        self.finish: asyncio.Queue[None] = asyncio.Queue()

    async def ajudge_batch(self, prompts: Any, responses: Any, references: Any = None) -> list[Any]:
        async with self.slots:
            self.started.append(responses[0])
            await self.finish.get()
            return [1.0]

    def reward_of(self, outcome: Any) -> float | None:
        return None if isinstance(outcome, BaseException) else float(outcome)

    def metrics_of(self, outcomes: Any) -> dict[str, float]:
        return {}


async def settle_loop(rounds: int = 200) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


async def test_a_flood_cannot_push_another_clients_query_to_the_back() -> None:
    judge = GatedJudge()
    app = openrlhf.create_app(judge, deadline_s=60)  # type: ignore[arg-type]
    async with client_for(app) as http:
        flood = asyncio.create_task(
            http.post("/get_reward", json={"query": [f"flood-{i}" for i in range(40)]})
        )
        await settle_loop()
        assert len(judge.started) == 2
        single = asyncio.create_task(http.post("/get_reward", json={"query": ["single"]}))
        await settle_loop()
        for _ in range(3):  # three judgments finish, one at a time
            judge.finish.put_nowait(None)
            await settle_loop()
        assert "single" in judge.started[:5]  # not behind the other 38 queued flood items
        for _ in range(41):
            judge.finish.put_nowait(None)
        answers = await asyncio.gather(flood, single)
    assert answers[1].json()["rewards"] == [1.0]
    assert answers[0].json()["rewards"] == [1.0] * 40


async def test_a_flood_of_one_query_requests_from_one_host_is_shared_fairly_too() -> None:
    judge = GatedJudge()
    app = openrlhf.create_app(judge, deadline_s=60)  # type: ignore[arg-type]

    def client(host: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(host, 1234))
        return httpx.AsyncClient(transport=transport, base_url="http://server")

    async with client("10.0.0.66") as flooder, client("10.0.0.7") as trainer:
        flood = [
            asyncio.create_task(flooder.post("/get_reward", json={"query": [f"flood-{i}"]}))
            for i in range(30)
        ]
        await settle_loop()
        single = asyncio.create_task(trainer.post("/get_reward", json={"query": ["single"]}))
        await settle_loop()
        for _ in range(3):
            judge.finish.put_nowait(None)
            await settle_loop()
        assert "single" in judge.started[:5]
        for _ in range(31):
            judge.finish.put_nowait(None)
        answers = await asyncio.gather(*flood, single)
    assert all(a.json()["rewards"] == [1.0] for a in answers)


async def test_fair_share_hands_slots_round_robin_and_survives_cancellation() -> None:
    fair = FairShare(1)
    order: list[str] = []
    release = asyncio.Event()

    async def hold(client: str, request: int, name: str) -> None:
        async with fair.slot(client, request):
            order.append(name)
            await release.wait()

    first = asyncio.create_task(hold("a", 0, "a0-1"))
    await settle_loop(5)
    waiting = [
        asyncio.create_task(hold("a", 0, "a0-2")),
        asyncio.create_task(hold("a", 0, "a0-3")),
        asyncio.create_task(hold("a", 1, "a1-1")),
        asyncio.create_task(hold("b", 2, "b2-1")),
    ]
    cancelled = asyncio.create_task(hold("c", 3, "c3-1"))
    await settle_loop(5)
    cancelled.cancel()
    release.set()
    await asyncio.gather(first, *waiting)
    # clients in turn (a, b, a, ...), and a's requests in turn (0, 1, 0)
    assert order == ["a0-1", "a0-2", "b2-1", "a1-1", "a0-3"]
    assert fair.free == 1


# -- cohort keys -----------------------------------------------------------------------------------


def test_cohort_keys_under_a_token_cannot_be_predicted() -> None:
    plain = group_key("p", "r", "", 3, 1)
    keyed = group_key("p", "r", "", 3, 1, secret=TOKEN)
    assert keyed != plain and keyed == group_key("p", "r", "", 3, 1, secret=TOKEN)
    assert keyed != group_key("p", "r", "", 3, 1, secret=TOKEN + "x")


async def test_the_reward_function_sends_the_token_and_keyed_groups() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"rewards": [0.5], "metrics": {}})

    func = cohort_reward_func(
        "http://server", num_generations=1, token=TOKEN, transport=httpx.MockTransport(handler)
    )
    assert await func(prompts=["p"], completions=["c"]) == [0.5]
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"
    import json

    key = json.loads(seen[0].content)["items"][0]["key"]
    assert key == group_key("p", None, "", "", 1, secret=TOKEN)


async def test_a_key_open_for_another_prompt_cannot_be_hijacked() -> None:
    judge = SimpleNamespace(ajudge_group=lambda *a: None, name="g")
    buffer = CohortBuffer(judge, group_size=2)
    from rftjudge import ConfigurationError

    legit = asyncio.create_task(buffer.submit([CohortItem("k", 2, "the prompt", "mine")]))
    await settle_loop(5)
    with pytest.raises(ConfigurationError, match="open for another prompt"):
        await buffer.submit([CohortItem("k", 2, "an attacker's prompt", "theirs")])
    assert buffer.pending == 1
    await buffer.aclose()
    await legit


async def test_keys_that_could_forge_log_lines_are_refused() -> None:
    from rftjudge import FunctionClient, ListwiseJudge

    from support.listwise import ListwiseScript

    judge = ListwiseJudge(FunctionClient(ListwiseScript({})))
    app = create_cohort_app(judge, group_size=8)
    item = {"key": "k\nrftjudge: all good", "group_size": 8, "prompt": "p", "completion": "c"}
    async with client_for(app) as http:
        response = await http.post("/cohort", json={"items": [item]})
    assert response.status_code == 400 and "a key is 1 to 128" in response.json()["error"]


# -- the EOS token ---------------------------------------------------------------------------------


async def test_an_eos_only_response_does_not_reach_the_judge_as_the_literal_token() -> None:
    judge, script = scripted_judge(on_error=0.5)
    app = openrlhf.create_app(judge, eos_token=list(openrlhf.COMMON_EOS_TOKENS))
    async with client_for(app) as http:
        await http.post("/get_reward", json=body(["<|im_end|>", "4<|eot_id|>"]))
    shown = sorted(str(item["response"]) for item in script.seen)
    assert all("<|" not in text for text in shown)


def test_serve_openrlhf_takes_eos_token_and_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from rftjudge.app.cli import app

    config = tmp_path / "judge.yaml"
    config.write_text(
        "provider: openai\nmodel: m\nbase_url: http://judge.test/v1\n"
        "criteria: [{name: c, description: d}]\n",
        encoding="utf-8",
    )
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(openrlhf, "serve", lambda judge, **kwargs: calls.append(kwargs))
    monkeypatch.delenv("RFTJUDGE_SERVER_TOKEN", raising=False)
    args = ["serve", "openrlhf", "--judge", str(config)]
    custom = CliRunner().invoke(app, [*args, "--eos-token", "<eos>", "--token", TOKEN])
    default = CliRunner().invoke(app, args)
    assert custom.exit_code == 0 and default.exit_code == 0, custom.output + default.output
    assert calls[0]["eos_token"] == ["<eos>"] and calls[0]["token"] == TOKEN
    assert "<|im_end|>" in calls[1]["eos_token"] and calls[1]["token"] is None


async def test_a_client_that_disconnects_mid_body_gets_an_answer_not_a_crash() -> None:
    judge, script = scripted_judge(on_error=0.5)
    app = openrlhf.create_app(judge)
    sent: list[MutableMapping[str, Any]] = []
    messages: Iterator[dict[str, Any]] = iter(
        [
            {"type": "http.request", "body": b'{"query": [', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/get_reward", "raw_path": b"/get_reward", "query_string": b"",
        "root_path": "", "headers": [], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 5000),
    }  # fmt: skip
    await app(scope, receive, send)
    assert sent[0]["status"] == 400 and not script.seen
