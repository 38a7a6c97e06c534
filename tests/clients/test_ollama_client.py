from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from rftjudge import (
    BadRequestError,
    ChatRequest,
    ConfigurationError,
    Criterion,
    Judgment,
    Message,
    OllamaClient,
    RetryPolicy,
    RubricJudge,
    ServerError,
    TruncatedError,
)
from rftjudge.clients.ollama import ollama_base_url

from support.payloads import verdict

BASE = "http://ollama.test:11434"
URL = f"{BASE}/api/chat"
SCHEMA = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
REQ = ChatRequest(messages=(Message("system", "sys"), Message("user", "hi")), output_schema=SCHEMA)


def chat(content: str, *, done_reason: str = "stop", **extra: Any) -> dict[str, Any]:
    return {
        "model": "qwen3:8b",
        "created_at": "2026-05-17T23:14:07.414671Z",
        "message": {"role": "assistant", "content": content},
        "done": True,
        "done_reason": done_reason,
        "total_duration": 174560334,
        "load_duration": 101397084,
        "prompt_eval_count": 61,
        "prompt_eval_duration": 13074791,
        "eval_count": 18,
        "eval_duration": 52479709,
        **extra,
    }


@pytest.fixture
def ollama(fake_sleep: Any) -> OllamaClient:
    return OllamaClient(
        "qwen3:8b", base_url=BASE, retry_policy=RetryPolicy(max_retries=2, sleep=fake_sleep)
    )


# -- configuration ---------------------------------------------------------------------------


def test_default_url_needs_no_key() -> None:
    url, headers, _ = OllamaClient("qwen3:8b").build_request(REQ)
    assert url == "http://localhost:11434/api/chat"
    assert "authorization" not in headers


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://0.0.0.0:11434"),
        ("gpu-box:11500", "http://gpu-box:11500"),
        ("https://ollama.example.org/", "https://ollama.example.org"),
        ("[::1]", "http://[::1]:11434"),
    ],
)
def test_ollama_host_env(monkeypatch: pytest.MonkeyPatch, host: str, url: str) -> None:
    monkeypatch.setenv("OLLAMA_HOST", host)
    assert OllamaClient("m").build_request(REQ)[0] == f"{url}/api/chat"
    assert ollama_base_url(host) == url


def test_explicit_base_url_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "elsewhere:1")
    assert OllamaClient("m", base_url="http://here:2/").build_request(REQ)[0] == (
        "http://here:2/api/chat"
    )


def test_api_key_for_hosted_ollama(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", "ollama-secret")
    client = OllamaClient("gpt-oss:120b", base_url="https://ollama.com")
    assert client.build_request(REQ)[1]["authorization"] == "Bearer ollama-secret"
    assert "ollama-secret" not in repr(client)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"structured_output": "grammar"}, "structured_output"), ({"think": 3}, "think")],
)
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        OllamaClient("m", **kwargs)


def test_capabilities_follow_logprobs_flag() -> None:
    assert OllamaClient("m").capabilities.logprobs is False
    on = OllamaClient("m", logprobs=True).capabilities
    assert on.logprobs is True and on.max_top_logprobs == 20
    assert OllamaClient("m", structured_output="none").capabilities.structured_output is False


# -- request bodies --------------------------------------------------------------------------


def test_native_body(ollama: OllamaClient) -> None:
    req = ChatRequest(messages=REQ.messages, output_schema=SCHEMA, seed=7, max_tokens=256)
    _, _, body = ollama.build_request(req)
    assert body == {
        "model": "qwen3:8b",
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}],
        "stream": False,
        "options": {"temperature": 0.0, "num_predict": 256, "seed": 7},
        "format": SCHEMA,
        "think": False,
    }


def test_json_mode_think_options_keep_alive() -> None:
    client = OllamaClient(
        "m",
        structured_output="json",
        think="high",
        keep_alive="30m",
        options={"num_ctx": 8192, "temperature": 0.2},
    )
    _, _, body = client.build_request(REQ)
    assert body["format"] == "json"
    assert body["think"] == "high" and body["keep_alive"] == "30m"
    assert body["options"]["num_ctx"] == 8192
    assert body["options"]["temperature"] == 0.2  # the client's options win


def test_prompt_only_and_no_think() -> None:
    _, _, body = OllamaClient("m", structured_output="none", think=None).build_request(REQ)
    assert "format" not in body and "think" not in body


def test_logprobs_requested_and_capped(ollama: OllamaClient) -> None:
    req = ChatRequest(messages=REQ.messages, logprobs=True, top_logprobs=50)
    _, _, body = ollama.build_request(req)
    assert body["logprobs"] is True and body["top_logprobs"] == 20
    _, _, plain = ollama.build_request(REQ)
    assert "logprobs" not in plain and "top_logprobs" not in plain


# -- responses -------------------------------------------------------------------------------


async def test_parses_text_usage_and_skips_thinking(
    api: respx.MockRouter, ollama: OllamaClient
) -> None:
    body = chat('{"x": 2}')
    body["message"]["thinking"] = "Let me think about {x: 9}"
    route = api.post(URL).respond(200, json=body)
    response = await ollama.complete(REQ)
    assert response.text == '{"x": 2}'
    assert response.finish_reason == "stop"
    assert response.usage.input_tokens == 61 and response.usage.output_tokens == 18
    assert response.model == "qwen3:8b"
    assert json.loads(route.calls[0].request.content)["stream"] is False


async def test_parses_logprobs(api: respx.MockRouter, ollama: OllamaClient) -> None:
    logprobs = [
        {
            "token": "4",
            "logprob": -0.105,
            "bytes": [52],
            "top_logprobs": [
                {"token": "4", "logprob": -0.105, "bytes": [52]},
                {"token": "5", "logprob": -2.302, "bytes": [53]},
            ],
        },
        {"token": "}", "logprob": 0.0, "bytes": [125]},
    ]
    api.post(URL).respond(200, json=chat("4}", logprobs=logprobs))
    response = await ollama.complete(ChatRequest(messages=REQ.messages, logprobs=True))
    assert response.logprobs is not None and len(response.logprobs) == 2
    assert response.logprobs[0].top == (("4", -0.105), ("5", -2.302))
    assert response.logprobs[1].token == "}" and response.logprobs[1].top == ()


async def test_length_and_missing_counts(api: respx.MockRouter, ollama: OllamaClient) -> None:
    body = chat('{"x": ', done_reason="length")
    del body["prompt_eval_count"]  # absent when zero (cached prompt)
    api.post(URL).respond(200, json=body)
    response = await ollama.complete(REQ)
    assert response.finish_reason == "length" and response.usage.input_tokens == 0


# -- errors and retries ------------------------------------------------------------------------


async def test_unknown_model_is_a_clear_bad_request(
    api: respx.MockRouter, ollama: OllamaClient
) -> None:
    route = api.post(URL).respond(404, json={"error": "model 'qwen3:8b' not found"})
    with pytest.raises(BadRequestError, match="ollama pull qwen3:8b") as info:
        await ollama.complete(REQ)
    assert route.call_count == 1 and info.value.status_code == 404


async def test_think_unsupported_is_not_retried(
    api: respx.MockRouter, ollama: OllamaClient
) -> None:
    route = api.post(URL).respond(400, json={"error": '"llama3.2" does not support thinking'})
    with pytest.raises(BadRequestError, match="does not support thinking"):
        await ollama.complete(REQ)
    assert route.call_count == 1


async def test_busy_server_is_retried(
    api: respx.MockRouter, ollama: OllamaClient, fake_sleep: Any
) -> None:
    route = api.post(URL)
    route.side_effect = [
        httpx.Response(
            503, json={"error": "server busy, please try again.  maximum pending requests exceeded"}
        ),
        httpx.Response(500, json={"error": "llama runner process has terminated: signal: killed"}),
        httpx.Response(200, json=chat('{"x": 1}')),
    ]
    response = await ollama.complete(REQ)
    assert response.retries == 2 and len(fake_sleep.delays) == 2


async def test_server_errors_exhaust_into_server_error(
    api: respx.MockRouter, ollama: OllamaClient
) -> None:
    api.post(URL).respond(502, json={"error": "bad gateway"})
    with pytest.raises(ServerError, match="bad gateway"):
        await ollama.complete(REQ)


async def test_connection_refused_is_retried(api: respx.MockRouter, ollama: OllamaClient) -> None:
    api.post(URL).side_effect = [
        httpx.ConnectError("refused"),
        httpx.Response(200, json=chat("{}")),
    ]
    assert (await ollama.complete(REQ)).retries == 1


# -- end to end --------------------------------------------------------------------------------

QUESTION = "How long should I boil an egg for a firm yolk?"
ANSWER = "About nine to ten minutes, then cool it in cold water."
CRITERIA = [Criterion(name="helpful", description="Does it help?")]


async def test_rubric_judge_over_ollama(api: respx.MockRouter, ollama: OllamaClient) -> None:
    route = api.post(URL).respond(200, json=chat(json.dumps(verdict({"helpful": 4}, "good"))))
    judgment = await RubricJudge(ollama, criteria=CRITERIA, scale=(1, 5)).ajudge(QUESTION, ANSWER)
    assert isinstance(judgment, Judgment)
    assert judgment.score == pytest.approx(0.75) and judgment.rationale == "good"
    sent = json.loads(route.calls[0].request.content)
    assert sent["format"]["properties"]["scores"]["required"] == ["helpful"]
    assert sent["options"]["temperature"] == 0.0


async def test_rubric_judge_truncation_is_an_error(
    api: respx.MockRouter, ollama: OllamaClient
) -> None:
    api.post(URL).respond(200, json=chat('{"rationale": "long', done_reason="length"))
    judge = RubricJudge(ollama, criteria=CRITERIA, on_error="raise", max_reasks=0)
    with pytest.raises(TruncatedError):
        await judge.ajudge(QUESTION, ANSWER)
