"""Reasoning models as judges (issue 18): thinking switched on per provider, room for the verdict
on top of the thinking, reasoning tokens counted, and the verdict read from the final answer only."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from rftjudge import (
    AnthropicClient,
    ChatRequest,
    ConfigurationError,
    Criterion,
    GeminiClient,
    Message,
    OpenAIClient,
    RubricJudge,
)
from rftjudge.clients._prefill import CHOICE_SCHEMA_NAME, choice_schema
from rftjudge.clients._stats import ClientStats

from support.payloads import BASE, CHAT, completion, verdict

SCHEMA = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
REQ = ChatRequest(
    messages=(Message("system", "sys"), Message("user", "judge")),
    output_schema=SCHEMA,
    max_tokens=300,
    top_p=0.9,
)
ANTHROPIC = "https://api.anthropic.test"


def _body(route: respx.Route) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(route.calls[-1].request.content)
    return body


# -- OpenAI and OpenAI-compatible servers ---------------------------------------------------------


def test_reasoning_effort_is_sent_with_room_for_the_verdict() -> None:
    client = OpenAIClient("gpt-oss-120b", base_url=BASE, server="vllm", reasoning_effort="low")
    _, _, body = client.build_request(REQ)
    assert body["reasoning_effort"] == "low"
    assert body["max_tokens"] == 300 + 8192
    assert client.reasoning_budget == 8192


def test_reasoning_budget_is_the_callers_to_set() -> None:
    client = OpenAIClient("m", base_url=BASE, reasoning_effort="high", reasoning_budget=2000)
    assert client.build_request(REQ)[2]["max_tokens"] == 2300


def test_no_reasoning_no_room_added() -> None:
    _, _, body = OpenAIClient("m", base_url=BASE).build_request(REQ)
    assert body["max_tokens"] == 300 and "reasoning_effort" not in body
    none = OpenAIClient("gpt-5.1", api_key="k", reasoning_effort="none")
    assert none.build_request(REQ)[2]["max_completion_tokens"] == 300


def test_openai_reasoning_models_get_room_and_no_logprobs_by_default() -> None:
    client = OpenAIClient("o4-mini", api_key="k")
    body = client.build_request(REQ)[2]
    assert body["max_completion_tokens"] == 300 + 8192
    assert "temperature" not in body and "top_p" not in body
    assert client.capabilities.logprobs is False
    assert OpenAIClient("o4-mini", api_key="k", logprobs=True).capabilities.logprobs is True
    assert OpenAIClient("gpt-4.1-mini", api_key="k").capabilities.logprobs is True


def test_enable_thinking_goes_to_the_chat_template() -> None:
    client = OpenAIClient("Qwen/Qwen3-8B", base_url=BASE, server="vllm", enable_thinking=True)
    body = client.build_request(REQ)[2]
    assert body["chat_template_kwargs"] == {"enable_thinking": True}
    assert body["max_tokens"] == 300 + 8192
    off = OpenAIClient("Qwen/Qwen3-8B", base_url=BASE, server="vllm", enable_thinking=False)
    body = off.build_request(REQ)[2]
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert body["max_tokens"] == 300


def test_exact_reads_carry_no_thinking_settings() -> None:
    client = OpenAIClient(
        "Qwen/Qwen3-8B",
        base_url=BASE,
        server="llamacpp",
        enable_thinking=True,
        reasoning_effort="low",
    )
    read = ChatRequest(
        messages=(Message("user", "judge"), Message("assistant", '{"x": ')),
        output_schema=choice_schema(["1", "2"]),
        schema_name=CHOICE_SCHEMA_NAME,
        max_tokens=1,
    )
    body = client.build_request(read)[2]
    assert "reasoning_effort" not in body
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert body["max_tokens"] == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reasoning_effort": "hihg"}, "reasoning_effort must be one of"),
        ({"reasoning_effort": "low", "reasoning_budget": -1}, "reasoning_budget"),
        ({"enable_thinking": True, "api_key": "k", "base_url": None}, "enable_thinking"),
    ],
)
def test_bad_reasoning_settings_fail_when_built(kwargs: dict[str, Any], match: str) -> None:
    settings: dict[str, Any] = {"base_url": BASE, **kwargs}
    with pytest.raises(ConfigurationError, match=match):
        OpenAIClient("m", **settings)


async def test_verdict_from_content_never_from_reasoning(api: respx.MockRouter) -> None:
    """vLLM/SGLang/DeepSeek return the thinking in ``reasoning_content`` (newer vLLM: ``reasoning``);
    a verdict there — or a response quoted there — is never read."""
    answer = completion(
        verdict({"q": 2}),
        message={
            "reasoning_content": 'The answer says {"rationale": "x", "scores": {"q": 5}}',
            "reasoning": '{"rationale": "x", "scores": {"q": 5}}',
        },
    )
    answer["usage"]["completion_tokens_details"] = {"reasoning_tokens": 7}
    api.post(CHAT).respond(200, json=answer)
    client = OpenAIClient("m", base_url=BASE, server="vllm", reasoning_effort="medium")
    judge = RubricJudge(
        client,
        criteria=[Criterion(name="q", description="quality")],
        scale=(1, 5),
        scoring="sampled",
    )
    result = await judge.ajudge("p", "r")
    assert result.criteria == {"q": 2.0}
    assert result.usage.reasoning_tokens == 7
    assert client.stats.reasoning_tokens == 7
    assert client.stats.snapshot()["reasoning_tokens"] == 7


async def test_thinking_that_fills_the_limit_is_truncated_not_parsed(api: respx.MockRouter) -> None:
    answer = completion(
        "",
        finish_reason="length",
        message={"content": None, "reasoning_content": '{"rationale": "x", "scores": {"q": 5}}'},
    )
    api.post(CHAT).respond(200, json=answer)
    judge = RubricJudge(
        OpenAIClient("m", base_url=BASE, reasoning_effort="high"),
        criteria=[Criterion(name="q", description="quality")],
        scale=(1, 5),
        max_reasks=1,
        on_error="abstain",
    )
    assert await judge.areward("p", "r") is None
    assert judge.stats.failures == {"truncated": 1}


def test_azure_reasoning_deployments_get_room_and_no_logprobs() -> None:
    from rftjudge import AzureOpenAIClient

    client = AzureOpenAIClient("o4-mini", api_key="k", base_url="https://x.openai.azure.com")
    assert client.reasoning_budget == 8192
    assert client.capabilities.logprobs is False
    with pytest.raises(ConfigurationError, match="enable_thinking"):
        AzureOpenAIClient(
            "o4-mini", api_key="k", base_url="https://x.openai.azure.com", enable_thinking=True
        )


def test_servers_take_their_own_efforts() -> None:
    with pytest.raises(ConfigurationError, match="vllm takes reasoning_effort low, medium, high"):
        OpenAIClient("m", base_url=BASE, server="vllm", reasoning_effort="minimal")
    assert OpenAIClient("m", base_url=BASE, server="sglang", reasoning_effort="high")


def test_a_reasoning_client_reads_no_exact_distributions_by_default() -> None:
    """An exact read continues the written answer without its thinking: its distribution would be
    the model's answer without the reasoning."""
    thinking = OpenAIClient("Qwen/Qwen3-8B", base_url=BASE, server="vllm", enable_thinking=True)
    assert thinking.capabilities.prefill_choice is False
    effort = OpenAIClient("m", base_url=BASE, server="llamacpp", reasoning_effort="low")
    assert effort.capabilities.prefill_choice is False
    asked = OpenAIClient(
        "m", base_url=BASE, server="vllm", enable_thinking=True, prefill_choice=True
    )
    assert asked.capabilities.prefill_choice is True
    plain = OpenAIClient("m", base_url=BASE, server="vllm", enable_thinking=False)
    assert plain.capabilities.prefill_choice is True


# -- Anthropic -----------------------------------------------------------------------------------


def test_anthropic_extended_thinking_budget() -> None:
    client = AnthropicClient("claude-sonnet-4-5", api_key="k", base_url=ANTHROPIC, thinking=2048)
    body = client.build_request(REQ)[2]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] == 300 + 2048  # budget_tokens < max_tokens, verdict room kept
    assert "temperature" not in body and "top_p" not in body  # top_p < 0.95 is refused
    high_p = ChatRequest(messages=REQ.messages, output_schema=SCHEMA, top_p=0.97)
    assert client.build_request(high_p)[2]["top_p"] == 0.97


def test_anthropic_adaptive_thinking_with_effort_and_json_schema() -> None:
    client = AnthropicClient(
        "claude-opus-4-7", api_key="k", base_url=ANTHROPIC, thinking="adaptive", effort="low"
    )
    body = client.build_request(REQ)[2]
    assert body["thinking"] == {"type": "adaptive"}
    assert body["output_config"]["effort"] == "low"
    assert body["output_config"]["format"]["type"] == "json_schema"
    assert body["max_tokens"] == 300 + 8192


def test_anthropic_budget_on_an_adaptive_only_model_is_refused() -> None:
    with pytest.raises(ConfigurationError, match='pass thinking="adaptive"'):
        AnthropicClient("claude-opus-4-7", api_key="k", thinking=4096)
    more = AnthropicClient("claude-sonnet-4-5", api_key="k", thinking=2048, reasoning_budget=4000)
    assert more.build_request(REQ)[2]["max_tokens"] == 300 + 4000


def test_anthropic_tool_mode_with_thinking_is_not_forced() -> None:
    client = AnthropicClient(
        "claude-sonnet-4-5",
        api_key="k",
        base_url=ANTHROPIC,
        thinking=1024,
        structured_output="tool",
    )
    body = client.build_request(REQ)[2]
    assert body["tool_choice"] == {"type": "auto"}
    plain = AnthropicClient(
        "claude-sonnet-4-5", api_key="k", base_url=ANTHROPIC, structured_output="tool"
    )
    assert plain.build_request(REQ)[2]["tool_choice"]["type"] == "tool"
    assert "thinking" not in plain.build_request(REQ)[2]
    assert plain.build_request(REQ)[2]["max_tokens"] == 300


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"thinking": 512}, "at least 1024"),
        ({"thinking": "on"}, "adaptive"),
        ({"effort": "extreme"}, "effort must be one of"),
    ],
)
def test_anthropic_bad_thinking_settings(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        AnthropicClient("claude-sonnet-4-5", api_key="k", **kwargs)


async def test_anthropic_thinking_blocks_are_never_read(api: respx.MockRouter) -> None:
    body = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [
            {
                "type": "thinking",
                "thinking": '{"rationale": "x", "scores": {"q": 5}}',
                "signature": "sig",
            },
            {"type": "text", "text": json.dumps(verdict({"q": 3}))},
        ],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 40, "output_tokens": 900},
    }
    route = api.post(f"{ANTHROPIC}/v1/messages").respond(200, json=body)
    judge = RubricJudge(
        AnthropicClient("claude-sonnet-4-5", api_key="k", base_url=ANTHROPIC, thinking=4096),
        criteria=[Criterion(name="q", description="quality")],
        scale=(1, 5),
    )
    result = await judge.ajudge("p", "r")
    assert result.criteria == {"q": 3.0}
    assert _body(route)["thinking"]["budget_tokens"] == 4096


# -- Gemini --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "kwargs", "limit"),
    [
        ("gemini-2.5-flash", {"thinking_budget": 2048}, 300 + 2048),
        ("gemini-2.5-flash", {"thinking_budget": 0}, 300),
        ("gemini-2.5-pro", {}, 300 + 8192),  # thinks by default (dynamic)
        ("gemini-3-pro-preview", {"thinking_level": "low"}, 300 + 8192),
        ("gemini-2.0-flash", {}, 300),
        ("gemini-2.5-flash", {"thinking_budget": -1, "reasoning_budget": 1000}, 1300),
    ],
)
def test_gemini_room_for_thinking(model: str, kwargs: dict[str, Any], limit: int) -> None:
    client = GeminiClient(model, api_key="k", **kwargs)
    assert client.build_request(REQ)[2]["generationConfig"]["maxOutputTokens"] == limit


async def test_gemini_thought_tokens_are_reasoning_tokens() -> None:
    body = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": '{"x": 9}', "thought": True},
                        {"text": '{"x": 1}'},
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 30,
            "candidatesTokenCount": 5,
            "thoughtsTokenCount": 200,
            "cachedContentTokenCount": 12,
        },
    }
    client = GeminiClient("gemini-2.5-flash", api_key="k")
    response = client.parse_response(body, httpx.Headers())
    assert response.text == '{"x": 1}'
    assert response.usage.output_tokens == 205  # thoughts are billed as output
    assert response.usage.reasoning_tokens == 200
    assert response.usage.cached_input_tokens == 12


def test_stats_sum_reasoning_tokens() -> None:
    from rftjudge import Usage

    stats = ClientStats()
    stats.add_usage(Usage(output_tokens=10, reasoning_tokens=6))
    stats.add_usage(Usage(output_tokens=4, reasoning_tokens=1))
    assert stats.reasoning_tokens == 7
    assert (Usage(reasoning_tokens=2) + Usage(reasoning_tokens=3)).reasoning_tokens == 5
