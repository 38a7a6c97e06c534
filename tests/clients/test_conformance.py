"""Conformance: every client's requests validate against the newest provider artefact, and every
response shape those artefacts define parses to the right outcome.

The artefacts are the providers' own packages (the ``test`` extra): ``openai``'s request TypedDicts
and response models, ``anthropic``'s ``MessageCreateParams``, response models and schema transform,
botocore's ``bedrock-runtime`` service model (``ParamValidator``, the ``StopReason`` enum),
``google-genai``'s ``GenerateContentConfig`` (``extra="forbid"``) and ``FinishReason`` enum,
``ollama``'s ``ChatRequest``/``ChatResponse``. Responses are built with those models at test time,
not copied: an SDK release that adds a stop reason or changes a shape fails here, not in training.
"""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest
from pydantic import TypeAdapter

from rftjudge import (
    AnthropicClient,
    BedrockClient,
    ChatRequest,
    GeminiClient,
    Message,
    OllamaClient,
    OpenAIClient,
    ServerError,
)
from rftjudge.clients._prefill import CHOICE_SCHEMA_NAME, choice_schema
from rftjudge.clients._schema import anthropic_schema
from rftjudge.clients.base import HTTPClient
from rftjudge.judges.listwise import ListwiseJudge
from rftjudge.judges.preference import PreferenceJudge
from rftjudge.judges.rubric import RubricJudge

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")
botocore_session = pytest.importorskip("botocore.session")
genai_types = pytest.importorskip("google.genai.types")
ollama_types = pytest.importorskip("ollama._types")

# What a parsed response may say: a verdict to read, a truncation, a refusal — or a ServerError
# (a failed generation, retried). A stop reason passed through raw is none of these.
OUTCOMES = {"stop", "length", "refusal", "content_filter", "tool_use"}

BASE = "http://conformance.test"


def _judge_schemas() -> dict[str, dict[str, Any]]:
    """The verdict schemas rftjudge's judges send (built by the judges themselves)."""
    from rftjudge import Criterion

    client = OpenAIClient("m", base_url=BASE)
    rubric = RubricJudge(client, criteria=[Criterion(name="q", description="good?")])
    return {
        "choice": choice_schema(["1", "2", "3"]),
        "rubric": dict(rubric.output_schema),
        "listwise": ListwiseJudge(client).output_schema(["A", "B", "C"]),
        "preference": dict(PreferenceJudge(client).output_schema),
    }


def _request(schema_name: str, schema: dict[str, Any], **options: Any) -> ChatRequest:
    if schema_name == "choice":
        return ChatRequest(
            messages=(Message("user", "rate"), Message("assistant", '{"score": ')),
            output_schema=schema,
            schema_name=CHOICE_SCHEMA_NAME,
            **options,
        )
    return ChatRequest(
        messages=(Message("system", "judge"), Message("user", "rate")),
        output_schema=schema,
        schema_name="verdict",
        temperature=0.0,
        max_tokens=256,
        **options,
    )


def _keys_of(typed_dict: Any) -> set[str]:
    return set(typing.get_type_hints(typed_dict))


SCHEMAS = _judge_schemas()
OPTIONS = {"plain": {}, "logprobs": {"logprobs": True, "top_logprobs": 5}}


# -- requests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("schema_name", sorted(set(SCHEMAS) - {"choice"}))
@pytest.mark.parametrize("mode", ["json_schema", "json_object_schema", "json_object", "none"])
@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_openai_requests_validate_against_the_sdks_params(
    schema_name: str, mode: Any, option: str
) -> None:
    from openai.types.chat.completion_create_params import (
        CompletionCreateParamsNonStreaming as Params,
    )

    client = OpenAIClient("gpt-4.1-mini", api_key="k", structured_output=mode)
    body = client.build_request(_request(schema_name, SCHEMAS[schema_name], **OPTIONS[option]))[2]
    assert set(body) <= _keys_of(Params)
    TypeAdapter(Params).validate_python(body)


@pytest.mark.parametrize("server", ["vllm", "sglang", "llamacpp"])
def test_exact_read_requests_validate_as_openai_params_plus_extensions(server: Any) -> None:
    from openai.types.chat.completion_create_params import (
        CompletionCreateParamsNonStreaming as Params,
    )

    client = OpenAIClient("m", base_url=BASE, server=server)
    request = _request("choice", SCHEMAS["choice"], logprobs=True, top_logprobs=5, max_tokens=1)
    body = client.build_request(request)[2]
    known = {k: v for k, v in body.items() if k in _keys_of(Params)}
    TypeAdapter(Params).validate_python(known)


@pytest.mark.parametrize("schema_name", sorted(set(SCHEMAS) - {"choice"}))
@pytest.mark.parametrize("mode", ["json_schema", "tool", "none"])
def test_anthropic_requests_validate_against_the_sdks_params(schema_name: str, mode: Any) -> None:
    from anthropic.types.message_create_params import MessageCreateParamsNonStreaming as Params

    client = AnthropicClient("claude-sonnet-4-5", api_key="k", structured_output=mode)
    body = client.build_request(_request(schema_name, SCHEMAS[schema_name]))[2]
    body.pop("temperature")  # dropped from the SDK in 1.0.0, still taken by the API for this model
    assert set(body) <= _keys_of(Params)
    TypeAdapter(Params).validate_python(body)


@pytest.mark.parametrize("schema_name", sorted(SCHEMAS))
def test_anthropic_dialect_is_the_sdks_transform(schema_name: str) -> None:
    from anthropic.lib._parse._transform import transform_schema

    schema = SCHEMAS[schema_name]
    assert anthropic_schema(schema) == transform_schema(json.loads(json.dumps(schema)))


@pytest.mark.parametrize("schema_name", sorted(set(SCHEMAS) - {"choice"}))
@pytest.mark.parametrize("mode", ["json_schema", "tool", "none"])
@pytest.mark.parametrize(
    "model", ["us.anthropic.claude-sonnet-4-5-20250929-v1:0", "us.amazon.nova-lite-v1:0"]
)
def test_bedrock_requests_validate_against_the_service_model(
    schema_name: str, mode: Any, model: str
) -> None:
    from botocore.validate import ParamValidator

    service = botocore_session.get_session().get_service_model("bedrock-runtime")
    client = BedrockClient(model, region="us-east-1", api_key="k", structured_output=mode)
    body = client.build_request(_request(schema_name, SCHEMAS[schema_name]))[2]
    report = ParamValidator().validate(
        {"modelId": model, **body}, service.operation_model("Converse").input_shape
    )
    assert not report.has_errors(), report.generate_report()


@pytest.mark.parametrize("schema_name", sorted(set(SCHEMAS) - {"choice"}))
@pytest.mark.parametrize("mode", ["json_schema", "json", "none"])
@pytest.mark.parametrize(
    "extra", [{}, {"thinking_budget": 0}, {"thinking_level": "low"}, {"logprobs": True}]
)
def test_gemini_requests_validate_against_generate_content_config(
    schema_name: str, mode: Any, extra: dict[str, Any]
) -> None:
    client = GeminiClient("gemini-2.5-flash", api_key="k", structured_output=mode, **extra)
    options = OPTIONS["logprobs"] if extra.get("logprobs") else {}
    body = client.build_request(_request(schema_name, SCHEMAS[schema_name], **options))[2]
    assert set(body) <= {"contents", "systemInstruction", "generationConfig"}
    genai_types.GenerateContentConfig.model_validate(  # extra="forbid"
        {**body.get("generationConfig", {}), "systemInstruction": body["systemInstruction"]}
    )
    for content in body["contents"]:
        genai_types.Content.model_validate(content)


@pytest.mark.parametrize("schema_name", sorted(set(SCHEMAS) - {"choice"}))
@pytest.mark.parametrize("mode", ["json_schema", "json", "none"])
@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_ollama_requests_validate_against_chat_request(
    schema_name: str, mode: Any, option: str
) -> None:
    client = OllamaClient("qwen3:8b", structured_output=mode, keep_alive="5m")
    body = client.build_request(_request(schema_name, SCHEMAS[schema_name], **OPTIONS[option]))[2]
    model = ollama_types.ChatRequest
    assert set(body) <= set(model.model_fields)
    model.model_validate(body)


# -- responses ---------------------------------------------------------------------------------


def _outcome(client: HTTPClient, body: Any) -> str:
    try:
        response = client.parse_response(body, {})
    except ServerError:
        return "retried"
    assert response.finish_reason in OUTCOMES, response.finish_reason
    return str(response.finish_reason)


def _literal_values(annotation: Any) -> list[str]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return [str(a) for a in args]
    return [v for a in args for v in _literal_values(a)]


OPENAI_FINISH = _literal_values(
    openai.types.chat.chat_completion.Choice.model_fields["finish_reason"].annotation
)


@pytest.mark.parametrize("finish", OPENAI_FINISH)
def test_every_openai_finish_reason_has_an_outcome(finish: str) -> None:
    from openai.types.chat import ChatCompletion

    completion = ChatCompletion.model_validate({
        "id": "c", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": finish,
                     "message": {"role": "assistant", "content": "{}", "refusal": None}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5,
                  "completion_tokens_details": {"reasoning_tokens": 1},
                  "prompt_tokens_details": {"cached_tokens": 2}},
    })  # fmt: skip
    client = OpenAIClient("m", base_url=BASE)
    assert _outcome(client, completion.model_dump(mode="json")) in OUTCOMES


def test_openai_refusal_and_logprobs_from_the_sdks_models() -> None:
    from openai.types.chat import ChatCompletion

    completion = ChatCompletion.model_validate({
        "id": "c", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": None, "refusal": "I can't."},
                     "logprobs": {"content": [{"token": "4", "logprob": -0.1, "bytes": [52],
                                               "top_logprobs": [{"token": "4", "logprob": -0.1,
                                                                 "bytes": [52]}]}],
                                  "refusal": None}}],
    })  # fmt: skip
    response = OpenAIClient("m", base_url=BASE).parse_response(
        completion.model_dump(mode="json"), {}
    )
    assert response.refusal == "I can't."
    assert response.logprobs is not None and response.logprobs[0].top == (("4", -0.1),)


ANTHROPIC_STOP = _literal_values(anthropic.types.StopReason)


@pytest.mark.parametrize("stop", ANTHROPIC_STOP)
def test_every_anthropic_stop_reason_has_an_outcome(stop: str) -> None:
    message = anthropic.types.Message.model_validate({
        "id": "m", "type": "message", "role": "assistant", "model": "claude",
        "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "text", "text": "{}"}],
        "stop_reason": stop, "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 2, "cache_read_input_tokens": 1,
                  "cache_creation_input_tokens": 0},
    })  # fmt: skip
    client = AnthropicClient("claude-sonnet-4-5", api_key="k")
    body = message.model_dump(mode="json")
    assert _outcome(client, body) in OUTCOMES
    assert client.parse_response(body, {}).text == "{}"  # thinking skipped


def test_anthropic_forced_tool_from_the_sdks_model() -> None:
    message = anthropic.types.Message.model_validate({
        "id": "m", "type": "message", "role": "assistant", "model": "claude",
        "content": [{"type": "tool_use", "id": "t", "name": "verdict", "input": {"score": 4}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 2},
    })  # fmt: skip
    client = AnthropicClient("claude-sonnet-4-5", api_key="k", structured_output="tool")
    response = client.parse_response(message.model_dump(mode="json"), {})
    assert json.loads(response.text) == {"score": 4} and response.usage.input_tokens == 3


BEDROCK_STOP = (
    botocore_session.get_session().get_service_model("bedrock-runtime").shape_for("StopReason").enum
)


@pytest.mark.parametrize("stop", BEDROCK_STOP)
def test_every_bedrock_stop_reason_has_an_outcome(stop: str) -> None:
    body = {
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "hmm"}}}, {"text": "{}"}]}},
        "stopReason": stop,
        "usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5, "cacheReadInputTokens": 1},
        "metrics": {"latencyMs": 10},
    }  # fmt: skip
    service = botocore_session.get_session().get_service_model("bedrock-runtime")
    output_shape = service.operation_model("Converse").output_shape
    assert set(body) <= set(output_shape.members)
    client = BedrockClient("m", region="us-east-1", api_key="k")
    expected = "retried" if stop.startswith("malformed_") else None
    outcome = _outcome(client, body)
    assert outcome in OUTCOMES | {"retried"}
    if expected:
        assert outcome == expected


GEMINI_FINISH = [r.value for r in genai_types.FinishReason]


@pytest.mark.parametrize("finish", GEMINI_FINISH)
def test_every_gemini_finish_reason_has_an_outcome(finish: str) -> None:
    response = genai_types.GenerateContentResponse.model_validate({
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "thinking", "thought": True}, {"text": "{}"}]}, "finishReason": finish}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2,
                          "thoughtsTokenCount": 4, "cachedContentTokenCount": 1},
    })  # fmt: skip
    body = response.model_dump(mode="json", by_alias=True, exclude_none=True)
    client = GeminiClient("gemini-2.5-flash", api_key="k")
    outcome = _outcome(client, body)
    if outcome != "retried":
        parsed = client.parse_response(body, {})
        assert parsed.text == "{}" and parsed.usage.output_tokens == 6


@pytest.mark.parametrize("reason", [r.value for r in genai_types.BlockedReason])
def test_every_gemini_block_reason_is_a_refusal(reason: str) -> None:
    response = genai_types.GenerateContentResponse.model_validate(
        {"promptFeedback": {"blockReason": reason}, "usageMetadata": {"promptTokenCount": 3}}
    )
    body = response.model_dump(mode="json", by_alias=True, exclude_none=True)
    parsed = GeminiClient("gemini-2.5-flash", api_key="k").parse_response(body, {})
    assert parsed.finish_reason == "content_filter" and reason in (parsed.refusal or "")


@pytest.mark.parametrize("done", ["stop", "length", "load", "unload"])
def test_ollama_responses_from_the_sdks_model(done: str) -> None:
    response = ollama_types.ChatResponse.model_validate({
        "model": "qwen3:8b", "created_at": "2026-01-01T00:00:00Z", "done": True,
        "done_reason": done, "message": {"role": "assistant", "content": "{}", "thinking": "hmm"},
        "prompt_eval_count": 3, "eval_count": 2,
        "logprobs": [{"token": "{", "logprob": -0.1, "top_logprobs": [{"token": "{", "logprob": -0.1}]}],
    })  # fmt: skip
    body = response.model_dump(mode="json", exclude_none=True)
    parsed = OllamaClient("qwen3:8b").parse_response(body, {})
    assert parsed.text == "{}" and parsed.usage.output_tokens == 2
    assert parsed.logprobs is not None and parsed.logprobs[0].token == "{"


# -- image parts (issue 19): the same bodies against the SDKs' content-part types -----------------

_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def _image_request(url: bool) -> ChatRequest:
    from rftjudge._content import TextPart, image_part

    image = image_part("https://example.test/cat.png" if url else _PNG, detail="high")
    return ChatRequest(
        messages=(Message("system", "judge"), Message("user", (TextPart("rate"), image))),
        output_schema=SCHEMAS["rubric"],
        temperature=0.0,
        max_tokens=256,
    )


@pytest.mark.parametrize("url", [False, True])
def test_image_parts_validate_as_openai_content_parts(url: bool) -> None:
    from openai.types.chat.completion_create_params import (
        CompletionCreateParamsNonStreaming as Params,
    )

    body = OpenAIClient("gpt-4.1-mini", api_key="k").build_request(_image_request(url))[2]
    TypeAdapter(Params).validate_python(body)
    part = body["messages"][1]["content"][1]
    from openai.types.chat import ChatCompletionContentPartImageParam as ImageParam

    TypeAdapter(ImageParam).validate_python(part)  # TypedDicts ignore unknown keys: check them too
    assert set(part) <= _keys_of(ImageParam)
    from openai.types.chat.chat_completion_content_part_image_param import ImageURL

    assert set(part["image_url"]) <= _keys_of(ImageURL)


@pytest.mark.parametrize("url", [False, True])
def test_image_blocks_validate_as_anthropic_params(url: bool) -> None:
    from anthropic.types.message_create_params import MessageCreateParamsNonStreaming as Params

    body = AnthropicClient("claude-sonnet-4-5", api_key="k").build_request(_image_request(url))[2]
    body.pop("temperature")
    TypeAdapter(Params).validate_python(body)
    block = body["messages"][0]["content"][1]
    from anthropic.types import Base64ImageSourceParam, URLImageSourceParam

    expected = URLImageSourceParam if url else Base64ImageSourceParam
    TypeAdapter(expected).validate_python(block["source"])
    assert set(block["source"]) <= _keys_of(expected)


def test_image_blocks_validate_against_the_bedrock_service_model() -> None:
    from botocore.validate import ParamValidator

    model = "us.amazon.nova-lite-v1:0"
    service = botocore_session.get_session().get_service_model("bedrock-runtime")
    body = BedrockClient(model, region="us-east-1", api_key="k").build_request(
        _image_request(False)
    )[2]
    report = ParamValidator().validate(
        {"modelId": model, **body}, service.operation_model("Converse").input_shape
    )
    assert not report.has_errors(), report.generate_report()
    image_shape = service.shape_for("ImageBlock")
    assert (
        body["messages"][0]["content"][1]["image"]["format"] in image_shape.members["format"].enum
    )


@pytest.mark.parametrize("url", [False, True])
def test_image_parts_validate_as_gemini_content(url: bool) -> None:
    body = GeminiClient("gemini-2.5-flash", api_key="k").build_request(_image_request(url))[2]
    for content in body["contents"]:
        parsed = genai_types.Content.model_validate_json(json.dumps(content))  # base64 bytes
    image = parsed.parts[1]
    if url:
        assert image.file_data.file_uri == "https://example.test/cat.png"
    else:
        assert image.inline_data.data == _PNG
        assert image.inline_data.mime_type == "image/png"


def test_images_validate_as_an_ollama_chat_request() -> None:
    body = OllamaClient("qwen2.5vl:7b").build_request(_image_request(False))[2]
    ollama_types.ChatRequest.model_validate(body)  # messages are typed Mapping | Message there
    sdk = ollama_types.Message(role="user", content="rate", images=[ollama_types.Image(value=_PNG)])
    assert body["messages"][1] == sdk.model_dump(mode="json", exclude_none=True)  # what it sends
