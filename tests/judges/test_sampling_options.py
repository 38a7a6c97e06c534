"""top_p, stop and extra_body: declared on every judge, checked at construction, sent on the wire."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from rftjudge import (
    AnthropicClient,
    BedrockClient,
    ChatRequest,
    ConfigurationError,
    Criterion,
    FunctionClient,
    GeminiClient,
    ListwiseJudge,
    Message,
    OllamaClient,
    OpenAIClient,
    PreferenceJudge,
    RubricJudge,
)
from rftjudge.app.config import build_judge, parse_config

CRITERIA = [Criterion(name="quality", description="Is it good?")]
REQUEST = ChatRequest(
    messages=(Message("system", "s"), Message("user", "u")), top_p=0.9, stop=("###", "\n\n")
)


def test_every_judge_takes_the_options_and_puts_them_on_its_requests() -> None:
    seen: list[ChatRequest] = []

    def handler(request: ChatRequest) -> str:
        seen.append(request)
        return '{"rationale": "", "scores": {"quality": 4}}'

    judge = RubricJudge(
        FunctionClient(handler),
        CRITERIA,
        top_p=0.5,
        stop="END",
        extra_body={"repeat_penalty": 1.1},
    )
    assert judge.reward("p", "an answer") is not None
    assert seen[0].top_p == 0.5 and seen[0].stop == ("END",)
    assert seen[0].extra_body == {"repeat_penalty": 1.1}
    for cls in (PreferenceJudge, ListwiseJudge):
        other = cls(FunctionClient(handler), top_p=0.5, stop=["a", "b"], extra_body={"x": 1})
        assert (other.top_p, other.stop, other.extra_body) == (0.5, ("a", "b"), {"x": 1})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"stop": []}, "stop"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": [""]}, "stop"),
        ({"extra_body": ["repeat_penalty"]}, "extra_body"),
    ],
)
def test_bad_values_fail_at_construction(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RubricJudge(FunctionClient(lambda r: ""), CRITERIA, **options)


def test_openai_sends_top_p_and_stop() -> None:
    _, _, body = OpenAIClient("m", base_url="http://judge.test/v1").build_request(REQUEST)
    assert body["top_p"] == 0.9 and body["stop"] == ["###", "\n\n"]


def test_openai_leaves_top_p_out_for_models_that_reject_it() -> None:
    client = OpenAIClient("gpt-5-mini", api_key="sk-test")
    _, _, body = client.build_request(REQUEST)
    assert "top_p" not in body and body["stop"] == ["###", "\n\n"]


def test_anthropic_gemini_ollama_bedrock_send_their_spelling() -> None:
    _, _, body = AnthropicClient("claude-3-5-haiku", api_key="k").build_request(REQUEST)
    assert body["top_p"] == 0.9 and body["stop_sequences"] == ["###", "\n\n"]
    _, _, body = GeminiClient("gemini-2.5-flash", api_key="k").build_request(REQUEST)
    config = body["generationConfig"]
    assert config["topP"] == 0.9 and config["stopSequences"] == ["###", "\n\n"]
    _, _, body = OllamaClient("qwen3").build_request(REQUEST)
    assert body["options"]["top_p"] == 0.9 and body["options"]["stop"] == ["###", "\n\n"]
    bedrock = BedrockClient("anthropic.claude-3-5-haiku", region="us-east-1", api_key="k")
    _, _, body = bedrock.build_request(REQUEST)
    assert body["inferenceConfig"]["topP"] == 0.9
    assert body["inferenceConfig"]["stopSequences"] == ["###", "\n\n"]


async def test_extra_body_reaches_the_wire_merged_into_nested_objects() -> None:
    sent: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(
            200, json={"message": {"role": "assistant", "content": "{}"}, "done": True}
        )

    client = OllamaClient("qwen3", options={"num_ctx": 8192}, transport=httpx.MockTransport(answer))
    request = ChatRequest(
        messages=(Message("user", "u"),),
        extra_body={"options": {"repeat_penalty": 1.1}, "keep_alive": "5m"},
    )
    await client.complete(request)
    await client.aclose()
    assert sent[0]["options"]["num_ctx"] == 8192
    assert sent[0]["options"]["repeat_penalty"] == 1.1
    assert sent[0]["keep_alive"] == "5m"


def test_config_fields_reach_the_judge() -> None:
    config = parse_config(
        {
            "model": "m",
            "base_url": "http://judge.test/v1",
            "criteria": [{"name": "quality", "description": "Is it good?"}],
            "top_p": 0.8,
            "stop": ["###"],
            "extra_body": {"repeat_penalty": 1.1},
        }
    )
    judge = build_judge(config, FunctionClient(lambda r: ""))
    assert isinstance(judge, RubricJudge)
    assert (judge.top_p, judge.stop, judge.extra_body) == (0.8, ("###",), {"repeat_penalty": 1.1})
