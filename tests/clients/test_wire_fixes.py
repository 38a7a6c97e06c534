"""Issue 16's reproduced defects, one block each: sampling fields by model and the 400 recovery,
``server=`` modes and the structured-output ladder, schema dialects, llama-server prefill, provider
specs = ``server=``, stop reasons."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
import respx

import rftjudge
from rftjudge import (
    AnthropicClient,
    BadRequestError,
    BedrockClient,
    ChatRequest,
    GeminiClient,
    Message,
    OpenAIClient,
    RetryPolicy,
    ServerError,
)
from rftjudge.clients._prefill import CHOICE_SCHEMA_NAME, choice_schema
from rftjudge.clients._registry import ProviderRegistry

SCHEMA = {
    "type": "object",
    "properties": {"rationale": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["rationale", "score"],
    "additionalProperties": False,
}
REQ = ChatRequest(
    messages=(Message("system", "sys"), Message("user", "hi")),
    output_schema=SCHEMA,
    temperature=0.0,
    seed=7,
    max_tokens=64,
)
LOCAL = "http://judge.test/v1"


def chat(content: str = '{"rationale": "r", "score": 1}', finish: str = "stop") -> dict[str, Any]:
    return {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": finish}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }  # fmt: skip


def sent(route: respx.Route, call: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(route.calls[call].request.content)
    return body


# -- (2) sampling fields: the table ----------------------------------------------------------

REJECTING_CLAUDE = [
    "claude-opus-4-7",
    "claude-opus-4-8-20260301",
    "claude-opus-5",
    "claude-sonnet-5",
    "claude-sonnet-5-5",
    "claude-haiku-5-5",
    "claude-fable-5",
    "claude-fable-5-1",
    "claude-mythos-1",
    "claude-mythos-preview",
]
ACCEPTING_CLAUDE = [
    "claude-opus-4-1-20250805",
    "claude-opus-4-20250514",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "claude-3-5-sonnet-20241022",
]


@pytest.mark.parametrize("model", REJECTING_CLAUDE)
def test_claude_models_that_reject_sampling_get_none(model: str) -> None:
    _, _, body = AnthropicClient(model, api_key="k").build_request(REQ)
    assert "temperature" not in body
    _, _, converse = BedrockClient(
        f"us.anthropic.{model}-v1:0", region="us-east-1", api_key="k"
    ).build_request(REQ)
    assert "temperature" not in converse.get("inferenceConfig", {})


@pytest.mark.parametrize("model", ACCEPTING_CLAUDE)
def test_other_claude_models_get_temperature(model: str) -> None:
    _, _, body = AnthropicClient(model, api_key="k").build_request(REQ)
    assert body["temperature"] == 0.0
    _, _, converse = BedrockClient(
        f"anthropic.{model}-v1:0", region="us-east-1", api_key="k"
    ).build_request(REQ)
    assert converse["inferenceConfig"]["temperature"] == 0.0


@pytest.mark.parametrize("model", ["gpt-5", "gpt-5-mini", "gpt-5.1", "o1", "o3-mini", "o4-mini"])
def test_openai_reasoning_models_get_no_temperature(model: str) -> None:
    _, _, body = OpenAIClient(model, api_key="k").build_request(REQ)
    assert "temperature" not in body
    assert body["seed"] == 7  # only the fields the model rejects


@pytest.mark.parametrize("model", ["gpt-4.1-mini", "gpt-4o", "gpt-oss-120b"])
def test_other_openai_models_get_temperature(model: str) -> None:
    _, _, body = OpenAIClient(model, api_key="k").build_request(REQ)
    assert body["temperature"] == 0.0


def test_the_openai_table_is_not_applied_to_a_local_servers_model_name() -> None:
    _, _, body = OpenAIClient("o3", base_url=LOCAL, server="vllm").build_request(REQ)
    assert body["temperature"] == 0.0


# -- (2) sampling fields: the generic 400 rule -----------------------------------------------

ANTHROPIC_400 = {
    "type": "error",
    "error": {"type": "invalid_request_error", "message": "`temperature` is deprecated for this model."},
}  # fmt: skip
OPENAI_400 = {
    "error": {
        "message": "Unsupported value: 'temperature' does not support 0.0 with this model. "
        "Only the default (1) value is supported.",
        "type": "invalid_request_error",
        "param": "temperature",
        "code": "unsupported_value",
    }
}


async def test_a_400_naming_temperature_drops_it_once_and_for_good(
    api: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    route = api.post("https://api.anthropic.com/v1/messages").mock(
        side_effect=[
            httpx.Response(400, json=ANTHROPIC_400),
            *[
                httpx.Response(200, json={"content": [{"type": "text", "text": "{}"}],
                                          "stop_reason": "end_turn", "usage": {}})
                for _ in range(2)
            ],
        ]
    )  # fmt: skip
    client = AnthropicClient("claude-next-model", api_key="k")
    with caplog.at_level(logging.WARNING, logger="rftjudge"):
        assert (await client.complete(REQ)).text == "{}"
        await client.complete(REQ)
    assert sent(route, 0)["temperature"] == 0.0
    assert "temperature" not in sent(route, 1)
    assert "temperature" not in sent(route, 2)  # remembered
    assert client.adaptations == {"dropped:temperature": 1}
    assert not client.stats.failures  # the judgment did not fail
    assert len([r for r in caplog.records if "temperature" in r.getMessage()]) == 1
    assert client.send_temperature is False


async def test_openai_unsupported_value_drops_temperature(
    api: respx.MockRouter,
) -> None:
    route = api.post(f"{LOCAL}/chat/completions").mock(
        side_effect=[httpx.Response(400, json=OPENAI_400), httpx.Response(200, json=chat())]
    )
    client = OpenAIClient("my-gateway-model", base_url=LOCAL)
    await client.complete(REQ)
    assert "temperature" not in sent(route) and sent(route)["seed"] == 7


async def test_a_400_that_names_no_droppable_field_is_not_retried(
    api: respx.MockRouter,
) -> None:
    route = api.post(f"{LOCAL}/chat/completions").mock(
        return_value=httpx.Response(400, json={"error": {"message": "prompt is too long"}})
    )
    client = OpenAIClient("m", base_url=LOCAL)
    with pytest.raises(BadRequestError):
        await client.complete(REQ)
    assert route.call_count == 1
    assert client.stats.failures == {"bad_request": 1}


async def test_the_same_field_rejected_again_is_not_retried_twice(
    api: respx.MockRouter,
) -> None:
    route = api.post(f"{LOCAL}/chat/completions").mock(
        return_value=httpx.Response(400, json=OPENAI_400)
    )
    client = OpenAIClient("m", base_url=LOCAL)
    with pytest.raises(BadRequestError):
        await client.complete(REQ)
    assert route.call_count == 2  # once with, once without; the second 400 surfaces


# -- (3) server= implies its mode; a rejected mode steps down --------------------------------


def test_server_implies_its_structured_output_mode() -> None:
    client = OpenAIClient("m", base_url=LOCAL, server="llama-cpp-python")
    assert client.structured_output == "json_object_schema"
    _, _, body = client.build_request(REQ)
    assert body["response_format"] == {"type": "json_object", "schema": SCHEMA}
    for family in ("vllm", "sglang", "llamacpp", "ollama", "openai"):
        assert OpenAIClient("m", base_url=LOCAL, server=family).structured_output == "json_schema"
    explicit = OpenAIClient(
        "m", base_url=LOCAL, server="llama-cpp-python", structured_output="none"
    )
    assert explicit.structured_output == "none"


LLAMA_CPP_PYTHON_500 = {
    "error": {
        "message": "1 validation error for CreateChatCompletionRequest\nresponse_format.type\n"
        "  Input should be 'text' or 'json_object'",
        "type": "internal_server_error",
    }
}


async def test_a_rejected_mode_steps_down_the_ladder_once_per_request(
    api: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    route = api.post(f"{LOCAL}/chat/completions").mock(
        return_value=httpx.Response(500, json=LLAMA_CPP_PYTHON_500)
    )
    client = OpenAIClient("m", base_url=LOCAL, max_retries=0)
    with caplog.at_level(logging.WARNING, logger="rftjudge"), pytest.raises(ServerError):
        await client.complete(REQ)
    assert client.structured_output == "json_object_schema"
    route.mock(side_effect=[httpx.Response(500, json=LLAMA_CPP_PYTHON_500),
                            httpx.Response(200, json=chat())])  # fmt: skip
    await client.complete(REQ)
    # mypy keeps the narrowing from the assert above across complete(), which changes the mode
    assert client.structured_output == "json_object"  # type: ignore[comparison-overlap]
    assert sent(route)["response_format"] == {"type": "json_object"}
    route.mock(side_effect=[httpx.Response(400, json={"error": {"message": "json_object unsupported"}}),
                            httpx.Response(200, json=chat())])  # fmt: skip
    await client.complete(REQ)
    assert client.structured_output == "none"
    assert "response_format" not in sent(route)
    assert client.adaptations == {
        "structured_output:json_object_schema": 1,
        "structured_output:json_object": 1,
        "structured_output:none": 1,
    }
    assert len([r for r in caplog.records if "structured_output" in r.getMessage()]) == 3


async def test_anthropic_without_output_config_steps_down_to_a_tool(
    api: respx.MockRouter,
) -> None:
    route = api.post("https://api.anthropic.com/v1/messages").mock(
        side_effect=[
            httpx.Response(400, json={"type": "error", "error": {
                "type": "invalid_request_error",
                "message": "output_config.format: structured output is not supported for this model"}}),
            httpx.Response(200, json={"content": [{"type": "tool_use", "id": "t", "name": "verdict",
                                                   "input": {"score": 1}}],
                                      "stop_reason": "tool_use", "usage": {}}),
        ]
    )  # fmt: skip
    client = AnthropicClient("claude-3-haiku-20240307", api_key="k")
    assert json.loads((await client.complete(REQ)).text) == {"score": 1}
    assert "output_config" not in sent(route) and sent(route)["tool_choice"]["type"] == "tool"


# -- (4) schema dialects ---------------------------------------------------------------------

LISTWISE = {
    "type": "object",
    "properties": {
        "rationale": {"type": "string"},
        "scores": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "enum": ["A", "B", "C"]},
                    "score": {"type": "integer", "minimum": 1, "maximum": 5},
                },
                "required": ["id", "score"],
                "additionalProperties": False,
            },
            "minItems": 3,
            "maxItems": 3,
        },
    },
    "required": ["rationale", "scores"],
    "additionalProperties": False,
}


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in _keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _keys(v)}
    return set()


def test_anthropic_gets_no_keywords_its_api_rejects() -> None:
    request = ChatRequest(messages=(Message("user", "rank"),), output_schema=LISTWISE)
    _, _, body = AnthropicClient("claude-sonnet-4-5", api_key="k").build_request(request)
    sent_schema = body["output_config"]["format"]["schema"]
    assert not {"minItems", "maxItems", "minimum", "maximum"} & _keys(sent_schema)
    scores = sent_schema["properties"]["scores"]
    assert "minItems: 3" in scores["description"]  # kept as a hint, as the SDK does
    _, _, converse = BedrockClient(
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0", region="us-east-1", api_key="k"
    ).build_request(request)
    bedrock_schema = json.loads(
        converse["outputConfig"]["textFormat"]["structure"]["jsonSchema"]["schema"]
    )
    assert bedrock_schema == sent_schema


def test_gemini_gets_only_keywords_it_documents() -> None:
    schema = {**SCHEMA, "$schema": "https://json-schema.org/draft/2020-12/schema",
              "properties": {"score": {"type": "integer", "multipleOf": 1, "minimum": 1}}}  # fmt: skip
    request = ChatRequest(messages=(Message("user", "x"),), output_schema=schema)
    _, _, body = GeminiClient("gemini-2.5-flash", api_key="k").build_request(request)
    sent_schema = body["generationConfig"]["responseJsonSchema"]
    assert "$schema" not in sent_schema
    assert sent_schema["properties"]["score"] == {"type": "integer", "minimum": 1}


# -- (5) llama-server prefill with thinking off -----------------------------------------------


def test_llamacpp_prefill_turns_the_templates_thinking_off() -> None:
    request = ChatRequest(
        messages=(Message("user", "rate"), Message("assistant", '{"score": ')),
        output_schema=choice_schema(["1", "2", "3"]),
        schema_name=CHOICE_SCHEMA_NAME,
        logprobs=True,
        top_logprobs=3,
    )
    _, _, body = OpenAIClient("m", base_url=LOCAL, server="llamacpp").build_request(request)
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert body["grammar"] == 'root ::= "1" | "2" | "3"'


# -- (6) a provider spec means server= -------------------------------------------------------


@pytest.mark.parametrize("family", ["vllm", "sglang", "llamacpp", "llama-cpp-python"])
def test_a_provider_spec_means_the_same_as_server(family: str) -> None:
    registry = ProviderRegistry(entry_point_group=None)
    spec = registry.create(f"{family}:judge@http://host:8080/v1")
    keyword = OpenAIClient("judge", base_url="http://host:8080/v1", server=family)  # type: ignore[arg-type]
    assert isinstance(spec, OpenAIClient)
    assert spec.server == keyword.server == family
    assert spec.structured_output == keyword.structured_output
    assert spec.capabilities == keyword.capabilities


def test_llamacpp_spec_reads_exactly() -> None:
    client = rftjudge.client("llamacpp:judge@http://host:8080/v1")
    assert client.capabilities.prefill_choice


# -- (7) stop reasons ------------------------------------------------------------------------


@pytest.mark.parametrize("stop", ["malformed_model_output", "malformed_tool_use"])
async def test_bedrock_malformed_output_is_retried_not_parsed(
    api: respx.MockRouter, stop: str, fake_sleep: Any
) -> None:
    url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse"
    ok = {"output": {"message": {"role": "assistant", "content": [{"text": "{}"}]}},
          "stopReason": "end_turn", "usage": {}}  # fmt: skip
    bad = {**ok, "stopReason": stop}
    api.post(url).mock(side_effect=[httpx.Response(200, json=bad), httpx.Response(200, json=ok)])
    client = BedrockClient(
        "m",
        region="us-east-1",
        api_key="k",
        retry_policy=RetryPolicy(max_retries=1, sleep=fake_sleep),
    )
    response = await client.complete(REQ)
    assert response.text == "{}" and response.retries == 1


GEMINI_OUTCOMES = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **{r: "content_filter" for r in (
        "SAFETY", "RECITATION", "LANGUAGE", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
        "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR")},
    **{r: "retried" for r in (
        "OTHER", "MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS",
        "MISSING_THOUGHT_SIGNATURE", "NO_IMAGE", "IMAGE_OTHER")},
}  # fmt: skip


@pytest.mark.parametrize(("finish", "outcome"), sorted(GEMINI_OUTCOMES.items()))
async def test_every_gemini_finish_reason_has_its_outcome(
    api: respx.MockRouter, finish: str, outcome: str
) -> None:
    url = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    api.post(url).respond(200, json={
        "candidates": [{"content": {"role": "model", "parts": [{"text": "{}"}]}, "finishReason": finish}],
        "usageMetadata": {}})  # fmt: skip
    client = GeminiClient("gemini-2.5-flash", api_key="k", max_retries=0)
    if outcome == "retried":
        with pytest.raises(ServerError, match=finish):
            await client.complete(REQ)
    else:
        assert (await client.complete(REQ)).finish_reason == outcome


async def test_anthropic_pause_turn_is_a_truncation(
    api: respx.MockRouter,
) -> None:
    api.post("https://api.anthropic.com/v1/messages").respond(
        200,
        json={
            "content": [{"type": "text", "text": '{"sc'}],
            "stop_reason": "pause_turn",
            "usage": {},
        },
    )
    response = await AnthropicClient("claude-sonnet-4-5", api_key="k").complete(REQ)
    assert response.finish_reason == "length"


async def test_sglang_abort_is_a_server_failure(api: respx.MockRouter, fake_sleep: Any) -> None:
    route = api.post(f"{LOCAL}/chat/completions").mock(
        side_effect=[
            httpx.Response(200, json=chat("", finish="abort")),
            httpx.Response(200, json=chat()),
        ]
    )
    client = OpenAIClient(
        "m",
        base_url=LOCAL,
        server="sglang",
        retry_policy=RetryPolicy(max_retries=1, sleep=fake_sleep),
    )
    assert (await client.complete(REQ)).retries == 1
    assert route.call_count == 2


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("`temperature` is deprecated for this model.", "temperature"),
        ("Unsupported value: 'temperature' does not support 0.0 with this model.", "temperature"),
        ("ValidationException: The model does not support top_k", "top_k"),
        ("Unsupported parameter: 'seed' is not supported with this model.", "seed"),
        ("extra inputs are not permitted: body.top_p", "top_p"),
        ("The prompt asks about temperature, and it is too long", None),
        ("temperature: must be <= 1", None),
        ("Unsupported parameter: 'max_tokens'", None),
        ("unsupported: temperatures_list", None),
    ],
)
def test_which_400_names_a_droppable_field(message: str, field: str | None) -> None:
    from rftjudge.clients._params import DROPPABLE, rejected_field

    assert rejected_field(message, DROPPABLE) == field


def test_openais_own_ladder_skips_the_llama_cpp_python_extension() -> None:
    assert "json_object_schema" not in OpenAIClient("gpt-4.1-mini", api_key="k")._mode_ladder
    assert "json_object_schema" in OpenAIClient("m", base_url=LOCAL)._mode_ladder


async def test_requests_in_flight_together_all_recover(api: respx.MockRouter) -> None:
    """A batch meets the rejection in parallel: every request goes again, one adaptation counted."""
    import asyncio

    arrived: list[int] = []
    all_sent = asyncio.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        if "temperature" in json.loads(request.content):
            arrived.append(1)
            if len(arrived) == 8:
                all_sent.set()
            await all_sent.wait()  # answer none until all eight are on the wire
            return httpx.Response(400, json=OPENAI_400)
        return httpx.Response(200, json=chat())

    route = api.post(f"{LOCAL}/chat/completions").mock(side_effect=answer)
    client = OpenAIClient("m", base_url=LOCAL, coalesce=False)
    requests = [
        ChatRequest(messages=(Message("user", f"item {i}"),), output_schema=SCHEMA, temperature=0.0)
        for i in range(8)
    ]
    # All eight are built (with temperature) before any answer is read.
    results = await asyncio.gather(*(client.complete(r) for r in requests))
    assert len(results) == 8 and route.call_count == 16
    assert client.adaptations == {"dropped:temperature": 1}
    assert not client.stats.failures


async def test_a_judge_on_a_model_that_rejects_temperature_still_scores(
    api: respx.MockRouter,
) -> None:
    from rftjudge import Criterion, RubricJudge

    def answer(request: httpx.Request) -> httpx.Response:
        if "temperature" in json.loads(request.content):
            return httpx.Response(400, json=ANTHROPIC_400)
        verdict = json.dumps({"rationale": "r", "scores": {"q": 5}})
        return httpx.Response(200, json={"content": [{"type": "text", "text": verdict}],
                                         "stop_reason": "end_turn", "usage": {}})  # fmt: skip

    api.post("https://api.anthropic.com/v1/messages").mock(side_effect=answer)
    judge = RubricJudge(
        AnthropicClient("claude-next-model", api_key="k"),
        criteria=[Criterion(name="q", description="good?")],
        scale=(1, 5),
    )
    assert await judge.areward("q", "a") == 1.0


async def test_requests_in_flight_together_step_down_one_mode_only(api: respx.MockRouter) -> None:
    import asyncio

    arrived: list[int] = []
    all_sent = asyncio.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["response_format"]["type"] == "json_schema":
            arrived.append(1)
            if len(arrived) == 8:
                all_sent.set()
            await all_sent.wait()
            return httpx.Response(500, json=LLAMA_CPP_PYTHON_500)
        return httpx.Response(200, json=chat())

    api.post(f"{LOCAL}/chat/completions").mock(side_effect=answer)
    client = OpenAIClient("m", base_url=LOCAL, coalesce=False, max_retries=0)
    requests = [
        ChatRequest(messages=(Message("user", f"item {i}"),), output_schema=SCHEMA, temperature=0.0)
        for i in range(8)
    ]
    assert len(await asyncio.gather(*(client.complete(r) for r in requests))) == 8
    assert client.structured_output == "json_object_schema"  # one step, not eight
    assert client.adaptations == {"structured_output:json_object_schema": 1}
