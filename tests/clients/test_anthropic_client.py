from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from rftjudge import (
    AnthropicClient,
    AuthenticationError,
    BadRequestError,
    ChatRequest,
    ConfigurationError,
    Criterion,
    HTTPStatusError,
    Judgment,
    Message,
    QuotaExceededError,
    RateLimitError,
    RefusalError,
    RetryPolicy,
    RubricJudge,
    ServerError,
    TruncatedError,
)

from support.payloads import verdict

BASE = "https://api.anthropic.test"
URL = f"{BASE}/v1/messages"
SCHEMA = {
    "type": "object",
    "properties": {"x": {"type": "integer"}},
    "required": ["x"],
    "additionalProperties": False,
}
REQ = ChatRequest(
    messages=(Message("system", "be strict"), Message("user", "judge this")), output_schema=SCHEMA
)


def message(
    content: list[dict[str, Any]] | str,
    *,
    stop_reason: str = "end_turn",
    model: str = "claude-sonnet-4-5-20250929",
    **extra: Any,
) -> dict[str, Any]:
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 512,
            "output_tokens": 48,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
        **extra,
    }


def error(kind: str, text: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": kind, "message": text},
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    }


@pytest.fixture
def anthropic(fake_sleep: Any) -> AnthropicClient:
    return AnthropicClient(
        "claude-sonnet-4-5",
        api_key="sk-ant-test-secret",
        base_url=BASE,
        retry_policy=RetryPolicy(max_retries=2, sleep=fake_sleep),
    )


def sent(route: respx.Route, call: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(route.calls[call].request.content)
    return body


# -- configuration ---------------------------------------------------------------------------


def test_missing_key_names_the_env_var() -> None:
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        AnthropicClient("claude-sonnet-4-5")


def test_key_and_base_url_fall_back_to_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "https://proxy.test/")
    url, headers, _ = AnthropicClient("claude-sonnet-4-5").build_request(REQ)
    assert url == "https://proxy.test/v1/messages"
    assert headers["x-api-key"] == "sk-ant-env"
    assert headers["anthropic-version"] == "2023-06-01"


def test_default_host_and_explicit_key_win() -> None:
    client = AnthropicClient("claude-sonnet-4-5", api_key="sk-ant-arg")
    url, headers, _ = client.build_request(REQ)
    assert url == "https://api.anthropic.com/v1/messages"
    assert headers["x-api-key"] == "sk-ant-arg"
    assert "authorization" not in headers


def test_key_never_in_repr(anthropic: AnthropicClient) -> None:
    assert "sk-ant-test-secret" not in repr(anthropic)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"structured_output": "xml"}, "structured_output"),
        ({"default_max_tokens": 0}, "max_tokens"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        AnthropicClient("claude-sonnet-4-5", api_key="k", **kwargs)


def test_capabilities_have_no_logprobs(anthropic: AnthropicClient) -> None:
    caps = anthropic.capabilities
    assert caps.structured_output is True and caps.logprobs is False and caps.max_top_logprobs == 0
    none = AnthropicClient("claude-3-haiku", api_key="k", structured_output="none")
    assert none.capabilities.structured_output is False


# -- request bodies --------------------------------------------------------------------------


def test_native_structured_output_body(anthropic: AnthropicClient) -> None:
    _, _, body = anthropic.build_request(REQ)
    assert body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": "be strict",
        "messages": [{"role": "user", "content": "judge this"}],
        "temperature": 0.0,
        "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}},
    }


def test_forced_tool_mode_body() -> None:
    client = AnthropicClient("claude-3-5-haiku", api_key="k", structured_output="tool")
    _, _, body = client.build_request(REQ)
    assert body["tools"] == [
        {
            "name": "verdict",
            "description": "Record your verdict. Call this tool exactly once.",
            "input_schema": SCHEMA,
        }
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "verdict"}
    assert "output_config" not in body


def test_prompt_only_mode_and_missing_max_tokens() -> None:
    client = AnthropicClient(
        "claude-3-haiku", api_key="k", structured_output="none", default_max_tokens=333
    )
    req = ChatRequest(messages=REQ.messages, output_schema=SCHEMA, max_tokens=None, seed=7)
    _, _, body = client.build_request(req)
    assert body["max_tokens"] == 333  # required by the API
    assert "output_config" not in body and "tools" not in body
    assert "seed" not in body  # Anthropic has none


def test_system_messages_join_and_same_role_turns_merge(anthropic: AnthropicClient) -> None:
    req = ChatRequest(
        messages=(
            Message("system", "a"),
            Message("user", "q"),
            Message("system", "b"),
            Message("assistant", "x"),
            Message("user", "fix it"),
            Message("user", "now"),
        )
    )
    _, _, body = anthropic.build_request(req)
    assert body["system"] == "a\n\nb"
    assert body["messages"] == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "x"},
        {"role": "user", "content": "fix it\n\nnow"},
    ]


@pytest.mark.parametrize(
    ("model", "sends"),
    [
        ("claude-sonnet-4-5", True),
        ("claude-opus-4-1-20250805", True),
        ("claude-opus-4-20250514", True),  # a date, not minor version 20
        ("claude-opus-4-7", False),
        ("claude-opus-4-8-20260301", False),
        ("claude-opus-5", False),
    ],
)
def test_temperature_omitted_for_models_that_reject_it(model: str, sends: bool) -> None:
    _, _, body = AnthropicClient(model, api_key="k").build_request(REQ)
    assert ("temperature" in body) is sends


def test_send_temperature_overrides_the_model_rule() -> None:
    forced = AnthropicClient("claude-opus-4-7", api_key="k", send_temperature=True)
    assert forced.build_request(REQ)[2]["temperature"] == 0.0
    never = AnthropicClient("claude-sonnet-4-5", api_key="k", send_temperature=False)
    assert "temperature" not in never.build_request(REQ)[2]


# -- responses -------------------------------------------------------------------------------


async def test_text_usage_and_request_id(api: respx.MockRouter, anthropic: AnthropicClient) -> None:
    route = api.post(URL).respond(
        200, json=message('{"x": 3}'), headers={"request-id": "req_018EeWyXxfu5pfWkrYcMdjWG"}
    )
    response = await anthropic.complete(REQ)
    assert response.text == '{"x": 3}'
    assert response.finish_reason == "stop"
    assert response.usage.input_tokens == 512 and response.usage.output_tokens == 48
    assert response.request_id == "req_018EeWyXxfu5pfWkrYcMdjWG"
    assert response.model == "claude-sonnet-4-5-20250929"
    assert response.logprobs is None
    request = route.calls[0].request
    assert request.headers["x-api-key"] == "sk-ant-test-secret"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["content-type"] == "application/json"


async def test_thinking_blocks_are_skipped(
    api: respx.MockRouter, anthropic: AnthropicClient
) -> None:
    content = [
        {"type": "thinking", "thinking": "The answer seems {x: 1}...", "signature": "EqQBCgIYAh"},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
        {"type": "text", "text": '{"x": 4}'},
    ]
    api.post(URL).respond(200, json=message(content))
    assert (await anthropic.complete(REQ)).text == '{"x": 4}'


async def test_forced_tool_input_becomes_the_text(api: respx.MockRouter) -> None:
    client = AnthropicClient(
        "claude-3-5-haiku", api_key="k", base_url=BASE, structured_output="tool"
    )
    content: list[dict[str, Any]] = [
        {"type": "text", "text": "Recording the verdict."},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "verdict",
            "input": {"x": 5, "note": "ünïcode"},
        },
    ]
    api.post(URL).respond(200, json=message(content, stop_reason="tool_use"))
    response = await client.complete(REQ)
    assert json.loads(response.text) == {"x": 5, "note": "ünïcode"}
    assert response.finish_reason == "tool_use"


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("refusal", "refusal"),
        ("pause_turn", "length"),
    ],
)
async def test_stop_reasons_are_normalised(
    api: respx.MockRouter, anthropic: AnthropicClient, stop: str, expected: str
) -> None:
    api.post(URL).respond(200, json=message("{}", stop_reason=stop))
    assert (await anthropic.complete(REQ)).finish_reason == expected


async def test_refusal_carries_the_explanation(
    api: respx.MockRouter, anthropic: AnthropicClient
) -> None:
    body = message(
        [],
        stop_reason="refusal",
        stop_details={"type": "refusal", "category": "cyber", "explanation": "Malware request."},
    )
    api.post(URL).respond(200, json=body)
    response = await anthropic.complete(REQ)
    assert response.finish_reason == "refusal" and response.refusal == "Malware request."
    assert response.text == ""


# -- errors and retries ------------------------------------------------------------------------


async def test_529_overloaded_is_retried(
    api: respx.MockRouter, anthropic: AnthropicClient, fake_sleep: Any
) -> None:
    route = api.post(URL)
    route.side_effect = [
        httpx.Response(529, json=error("overloaded_error", "Overloaded")),
        httpx.Response(200, json=message('{"x": 1}')),
    ]
    response = await anthropic.complete(REQ)
    assert response.text == '{"x": 1}' and response.retries == 1
    assert route.call_count == 2 and len(fake_sleep.delays) == 1


async def test_529_exhausted_raises_server_error_with_evidence(
    api: respx.MockRouter, anthropic: AnthropicClient
) -> None:
    api.post(URL).respond(529, json=error("overloaded_error", "Overloaded"))
    with pytest.raises(ServerError) as info:
        await anthropic.complete(REQ)
    assert info.value.status_code == 529 and info.value.error_code == "overloaded_error"
    assert info.value.request_id == "req_011CSHoEeqs5C35K2UUqR7Fy"  # from the body
    assert "Overloaded" in str(info.value)


async def test_429_honours_retry_after(
    api: respx.MockRouter, anthropic: AnthropicClient, fake_sleep: Any
) -> None:
    api.post(URL).side_effect = [
        httpx.Response(
            429,
            json=error("rate_limit_error", "Number of request tokens has exceeded your limit"),
            headers={"retry-after": "7", "request-id": "req_1"},
        ),
        httpx.Response(200, json=message('{"x": 1}')),
    ]
    await anthropic.complete(REQ)
    assert fake_sleep.delays == [7.0]


async def test_429_exhausted_is_a_rate_limit_error(
    api: respx.MockRouter, anthropic: AnthropicClient
) -> None:
    route = api.post(URL).respond(429, json=error("rate_limit_error", "slow down"))
    with pytest.raises(RateLimitError) as info:
        await anthropic.complete(REQ)
    assert route.call_count == 3 and info.value.error_code == "rate_limit_error"


@pytest.mark.parametrize(
    ("status", "kind", "cls"),
    [
        (400, "invalid_request_error", BadRequestError),
        (401, "authentication_error", AuthenticationError),
        (403, "permission_error", AuthenticationError),
        (404, "not_found_error", BadRequestError),
        (413, "request_too_large", BadRequestError),
        (402, "billing_error", QuotaExceededError),
    ],
)
async def test_client_errors_are_not_retried(
    api: respx.MockRouter, anthropic: AnthropicClient, status: int, kind: str, cls: type[HTTPStatusError]
) -> None:
    route = api.post(URL).respond(status, json=error(kind, "nope"))
    with pytest.raises(cls) as info:
        await anthropic.complete(REQ)
    assert route.call_count == 1 and info.value.error_code == kind


async def test_key_is_scrubbed_from_errors(
    api: respx.MockRouter, anthropic: AnthropicClient
) -> None:
    api.post(URL).respond(
        401, json=error("authentication_error", "invalid x-api-key sk-ant-test-secret")
    )
    with pytest.raises(AuthenticationError) as info:
        await anthropic.complete(REQ)
    assert (
        "sk-ant-test-secret" not in str(info.value) and "sk-ant-test-secret" not in info.value.body
    )


# -- end to end --------------------------------------------------------------------------------

QUESTION = "How long should I boil an egg for a firm yolk?"
ANSWER = "About nine to ten minutes, then cool it in cold water."
CRITERIA = [
    Criterion(name="correctness", description="Is it right?", weight=3.0),
    Criterion(name="tone", description="Is it polite?"),
]


@pytest.mark.parametrize("mode", ["json_schema", "tool"])
async def test_rubric_judge_over_anthropic(api: respx.MockRouter, fake_sleep: Any, mode: str) -> None:
    client = AnthropicClient(
        "claude-sonnet-4-5",
        api_key="k",
        base_url=BASE,
        structured_output=mode,  # type: ignore[arg-type]
        retry_policy=RetryPolicy(max_retries=0, sleep=fake_sleep),
    )
    answer = verdict({"correctness": 5, "tone": 3}, "right and curt")
    if mode == "tool":
        body = message(
            [{"type": "tool_use", "id": "toolu_1", "name": "verdict", "input": answer}],
            stop_reason="tool_use",
        )
    else:
        body = message(json.dumps(answer))
    route = api.post(URL).respond(200, json=body)
    judgment = await RubricJudge(client, criteria=CRITERIA).ajudge(QUESTION, ANSWER)
    assert isinstance(judgment, Judgment)
    assert judgment.criteria == {"correctness": 5.0, "tone": 3.0}
    assert judgment.score == pytest.approx((3 * 1.0 + 0.5) / 4)
    assert judgment.rationale == "right and curt"
    assert judgment.usage.input_tokens == 512
    sent_body = sent(route)
    assert sent_body["system"] and sent_body["messages"][0]["role"] == "user"


async def test_rubric_judge_raises_refusal_and_truncation(
    api: respx.MockRouter, fake_sleep: Any
) -> None:
    client = AnthropicClient(
        "claude-sonnet-4-5",
        api_key="k",
        base_url=BASE,
        retry_policy=RetryPolicy(max_retries=0, sleep=fake_sleep),
    )
    judge = RubricJudge(client, criteria=CRITERIA, on_error="raise", max_reasks=0)
    api.post(URL).respond(200, json=message([], stop_reason="refusal"))
    with pytest.raises(RefusalError):
        await judge.ajudge(QUESTION, ANSWER)
    api.post(URL).respond(200, json=message('{"rationale": "cut', stop_reason="max_tokens"))
    with pytest.raises(TruncatedError):
        await judge.ajudge(QUESTION, ANSWER)
    abstaining = RubricJudge(client, criteria=CRITERIA, max_reasks=0)
    assert await abstaining.areward(QUESTION, ANSWER) is None
    assert abstaining.stats.failures["truncated"] == 1


# -- shared HTTPClient options ---------------------------------------------------------------------


async def test_anthropic_rate_limit_headers_are_read(
    api: respx.MockRouter, anthropic: AnthropicClient
) -> None:
    api.post(URL).respond(
        200,
        json=message('{"x": 1}'),
        headers={
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-requests-reset": "2099-01-01T00:00:00Z",
            "anthropic-ratelimit-tokens-limit": "30000",
            "anthropic-ratelimit-tokens-remaining": "29000",
        },
    )
    await anthropic.complete(REQ)
    snapshot = anthropic.last_rate_limits
    assert snapshot is not None
    assert snapshot.remaining_requests == 49 and snapshot.limit_tokens == 30000


def test_http_client_options_pass_through() -> None:
    client = AnthropicClient("claude-sonnet-4-5", api_key="k", max_concurrency=4, timeout=9)
    assert client.max_concurrency == 4 and client.timeout == 9.0
    with pytest.raises(TypeError, match="no_such_option"):
        AnthropicClient("claude-sonnet-4-5", api_key="k", no_such_option=1)  # type: ignore[call-arg]  # deliberately unknown
