"""Send what you build, test what you send: each provider's request through the *default* transport
(aiohttp under httpx) to a loopback server that records the raw request, compared with the request
the provider's own SDK sends for the same call to the same server.

The SDKs (``openai``, ``anthropic``, ``google-genai``, ``ollama``: the ``test`` extra) are the
artefacts: their method signatures name every field they know, so a field rftjudge sends that the
SDK does not know must be passed as ``extra_body`` here, and the test lists which (a server's own
extensions, or a field the SDK has dropped but the API still takes). Bedrock is checked against
botocore in ``test_wire_bedrock.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from rftjudge import (
    AnthropicClient,
    AzureOpenAIClient,
    ChatRequest,
    GeminiClient,
    Message,
    OllamaClient,
    OpenAIClient,
)
from rftjudge.clients._prefill import CHOICE_SCHEMA_NAME, choice_schema
from rftjudge.clients.anthropic import ANTHROPIC_VERSION
from rftjudge.clients.base import HTTPClient

from support.wire import Recorded, WireServer, json_reply

pytestmark = pytest.mark.integration

SCHEMA = {
    "type": "object",
    "properties": {"rationale": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["rationale", "score"],
    "additionalProperties": False,
}
REQ = ChatRequest(
    messages=(Message("system", "You judge."), Message("user", "Rate this ✓ answer.")),
    output_schema=SCHEMA,
    temperature=0.0,
    max_tokens=64,
    seed=7,
)
OPENAI_REPLY: dict[str, Any] = {
    "id": "c", "object": "chat.completion", "created": 0, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": '{"score": 1}'},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}  # fmt: skip
ANTHROPIC_REPLY = {
    "id": "msg", "type": "message", "role": "assistant", "model": "m",
    "content": [{"type": "text", "text": '{"score": 1}'}], "stop_reason": "end_turn",
    "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1},
}  # fmt: skip
GEMINI_REPLY = {
    "candidates": [{"content": {"role": "model", "parts": [{"text": '{"score": 1}'}]},
                    "finishReason": "STOP"}],
    "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
}  # fmt: skip
OLLAMA_REPLY = {
    "model": "m", "created_at": "2026-01-01T00:00:00Z", "done": True, "done_reason": "stop",
    "message": {"role": "assistant", "content": '{"score": 1}'},
    "prompt_eval_count": 1, "eval_count": 1,
}  # fmt: skip


def ours(make: Callable[[str], HTTPClient], reply: Any, request: ChatRequest = REQ) -> Recorded:
    """The request rftjudge's client puts on the wire (default transport), as received."""
    with WireServer(lambda r: json_reply(reply)) as server:
        client = make(server.url)
        body = client.build_request(request)[2]
        asyncio.run(client.complete(request))
        (recorded,) = server.recorded
    # Send what you build: the body bytes are the built body, compactly serialised.
    assert recorded.body == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    assert recorded.header("content-length") == str(len(recorded.body))
    assert recorded.header("content-type") == "application/json"
    return recorded


def theirs(send: Callable[[str], Any], reply: Any) -> Recorded:
    """The request the provider's SDK sends to the same kind of server."""
    with WireServer(lambda r: json_reply(reply)) as server:
        send(server.url)
        (recorded,) = server.recorded
    return recorded


def split_known(body: Mapping[str, Any], known: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields the SDK method names, the rest) of a body."""
    import inspect

    names = set(inspect.signature(known).parameters)
    return (
        {k: v for k, v in body.items() if k in names},
        {k: v for k, v in body.items() if k not in names},
    )


def camel(node: Any) -> Any:
    """``node`` with every object key in lowerCamelCase (``thinking_budget`` → ``thinkingBudget``)."""
    if isinstance(node, dict):
        return {
            _camel(k) if "_" in k and not k.startswith("_") else k: camel(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [camel(v) for v in node]
    return node


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


# -- OpenAI and compatible servers ------------------------------------------------------------


@pytest.mark.parametrize("mode", ["json_schema", "json_object_schema", "json_object", "none"])
def test_openai_request_equals_the_openai_sdks(mode: Any) -> None:
    openai = pytest.importorskip("openai")
    recorded = ours(
        lambda url: OpenAIClient(
            "gpt-4.1-mini", base_url=f"{url}/v1", api_key="sk-test", structured_output=mode,
            max_tokens_field="max_completion_tokens",
        ),
        OPENAI_REPLY,
    )  # fmt: skip
    assert recorded.request_line == b"POST /v1/chat/completions HTTP/1.1"
    assert recorded.header("authorization") == "Bearer sk-test"
    sdk = openai.OpenAI(api_key="sk-test", base_url="http://unused", max_retries=0)
    known, extra = split_known(recorded.json(), sdk.chat.completions.create)
    assert extra == {}  # every field is one the SDK knows
    if mode == "json_object_schema":  # llama-cpp-python's extension: the schema beside the type
        assert known["response_format"] == {"type": "json_object", "schema": SCHEMA}

    def send(url: str) -> None:
        client = openai.OpenAI(api_key="sk-test", base_url=f"{url}/v1", max_retries=0)
        client.chat.completions.create(**known)

    reference = theirs(send, OPENAI_REPLY)
    assert reference.request_line == recorded.request_line
    assert reference.json() == recorded.json()


SERVER_EXTENSIONS = {
    "vllm": {"continue_final_message", "add_generation_prompt", "structured_outputs"},
    "sglang": {"continue_final_message", "regex"},
    "llamacpp": {"grammar", "chat_template_kwargs"},
}


@pytest.mark.parametrize("server", sorted(SERVER_EXTENSIONS))
def test_exact_read_requests_are_openai_requests_plus_the_servers_extensions(server: Any) -> None:
    openai = pytest.importorskip("openai")
    request = ChatRequest(
        messages=(Message("user", "rate"), Message("assistant", '{"score": ')),
        output_schema=choice_schema(["1", "2", "3"]),
        schema_name=CHOICE_SCHEMA_NAME,
        temperature=0.0,
        max_tokens=1,
        logprobs=True,
        top_logprobs=5,
    )
    reply = {**OPENAI_REPLY, "choices": [{**OPENAI_REPLY["choices"][0],
                                          "message": {"role": "assistant", "content": "1"}}]}  # fmt: skip
    recorded = ours(
        lambda url: OpenAIClient("m", base_url=f"{url}/v1", server=server), reply, request
    )
    sdk = openai.OpenAI(api_key="x", base_url="http://unused", max_retries=0)
    known, extra = split_known(recorded.json(), sdk.chat.completions.create)
    assert set(extra) == SERVER_EXTENSIONS[server]

    def send(url: str) -> None:
        client = openai.OpenAI(api_key="x", base_url=f"{url}/v1", max_retries=0)
        client.chat.completions.create(**known, extra_body=extra)

    reference = theirs(send, reply)
    assert reference.request_line == recorded.request_line
    assert reference.json() == recorded.json()


def test_azure_request_equals_the_openai_sdks_azure_client() -> None:
    openai = pytest.importorskip("openai")
    version = "2024-10-21"
    recorded = ours(
        lambda url: AzureOpenAIClient(
            "judge-deployment", endpoint=url, api_key="az-key", api_version=version
        ),
        OPENAI_REPLY,
    )
    assert recorded.header("api-key") == "az-key"

    def send(url: str) -> None:
        client = openai.AzureOpenAI(
            api_key="az-key", api_version=version, azure_endpoint=url, max_retries=0
        )
        client.chat.completions.create(**recorded.json())

    reference = theirs(send, OPENAI_REPLY)
    assert reference.request_line == recorded.request_line
    assert reference.header("api-key") == recorded.header("api-key")
    assert reference.json() == recorded.json()


# -- Anthropic ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["json_schema", "tool", "none"])
def test_anthropic_request_equals_the_anthropic_sdks(mode: Any) -> None:
    anthropic = pytest.importorskip("anthropic")
    recorded = ours(
        lambda url: AnthropicClient(
            "claude-sonnet-4-5", api_key="sk-ant", base_url=url, structured_output=mode
        ),
        ANTHROPIC_REPLY,
    )
    assert recorded.request_line == b"POST /v1/messages HTTP/1.1"
    assert recorded.header("x-api-key") == "sk-ant"
    sdk = anthropic.Anthropic(api_key="sk-ant", base_url="http://unused", max_retries=0)
    known, extra = split_known(recorded.json(), sdk.messages.create)
    # The SDK dropped `temperature` in 1.0.0; the API still takes it for the models that accept it.
    assert set(extra) == {"temperature"}

    def send(url: str) -> None:
        client = anthropic.Anthropic(api_key="sk-ant", base_url=url, max_retries=0)
        client.messages.create(**known, extra_body=extra)

    reference = theirs(send, ANTHROPIC_REPLY)
    assert reference.request_line == recorded.request_line
    assert reference.json() == recorded.json()
    # rftjudge pins the API version its parser was written for; the SDK sends its newest (2.17:
    # 2026-10-21). Both are versions the API serves; moving the pin is a deliberate change.
    assert recorded.header("anthropic-version") == ANTHROPIC_VERSION
    assert reference.header("anthropic-version")


# -- Gemini ------------------------------------------------------------------------------------


def test_gemini_request_equals_the_google_genai_sdks() -> None:
    genai = pytest.importorskip("google.genai")
    from google.genai import types

    recorded = ours(
        lambda url: GeminiClient(
            "gemini-2.5-flash", api_key="g-key", base_url=f"{url}/v1beta", thinking_budget=0
        ),
        GEMINI_REPLY,
    )
    assert recorded.request_line == b"POST /v1beta/models/gemini-2.5-flash:generateContent HTTP/1.1"
    assert recorded.header("x-goog-api-key") == "g-key"
    body = recorded.json()
    config = types.GenerateContentConfig.model_validate(  # extra="forbid": unknown fields fail
        {**body["generationConfig"], "systemInstruction": body["systemInstruction"]}
    )
    contents = [types.Content.model_validate(c) for c in body["contents"]]

    def send(url: str) -> None:
        client = genai.Client(
            api_key="g-key", http_options=types.HttpOptions(base_url=url, api_version="v1beta")
        )
        client.models.generate_content(model="gemini-2.5-flash", contents=contents, config=config)

    reference = theirs(send, GEMINI_REPLY)
    assert reference.request_line == recorded.request_line
    # google-genai 3.6 writes thinkingConfig's fields in snake_case; the API's JSON mapping of
    # protobuf accepts both spellings, so the comparison is over lowerCamelCase names.
    assert camel(reference.json()) == body


# -- Ollama ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["json_schema", "json", "none"])
def test_ollama_request_equals_the_ollama_sdks(mode: Any) -> None:
    ollama = pytest.importorskip("ollama")
    recorded = ours(
        lambda url: OllamaClient("qwen3:8b", base_url=url, structured_output=mode), OLLAMA_REPLY
    )
    assert recorded.request_line == b"POST /api/chat HTTP/1.1"
    body = recorded.json()

    def send(url: str) -> None:
        client = ollama.Client(host=url)
        client.chat(**body)

    reference = theirs(send, OLLAMA_REPLY)
    assert reference.request_line == recorded.request_line
    sdk_body = reference.json()
    assert sdk_body.pop("tools") == []  # the SDK always sends an empty tool list
    assert sdk_body == body
