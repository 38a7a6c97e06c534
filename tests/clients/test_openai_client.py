from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from rftjudge import (
    AuthenticationError,
    BadRequestError,
    ChatRequest,
    ConfigurationError,
    JudgeTimeoutError,
    Message,
    OpenAIClient,
    QuotaExceededError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    TransportError,
)

from support.payloads import BASE, CHAT, completion

SCHEMA = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
REQ = ChatRequest(messages=(Message("system", "sys"), Message("user", "hi")), output_schema=SCHEMA)


def body_of(route: respx.Route, call: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(route.calls[call].request.content)
    return body


# -- configuration ---------------------------------------------------------------------------


def test_missing_key_for_openai_host_names_the_env_var() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        OpenAIClient("gpt-4.1-mini")


def test_key_and_base_url_fall_back_to_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-secret")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env.test/v1/")
    client = OpenAIClient("m")
    url, headers, _ = client.build_request(REQ)
    assert url == "http://env.test/v1/chat/completions"
    assert headers["authorization"] == "Bearer sk-env-secret"


def test_explicit_arguments_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    client = OpenAIClient("m", base_url="http://arg.test/v1", api_key="sk-arg")
    url, headers, _ = client.build_request(REQ)
    assert url.startswith("http://arg.test/v1")
    assert headers["authorization"] == "Bearer sk-arg"


def test_local_server_needs_no_key() -> None:
    client = OpenAIClient("m", base_url="http://127.0.0.1:8000/v1")
    _, headers, body = client.build_request(REQ)
    assert "authorization" not in headers
    assert body["max_tokens"] == 1024 and "max_completion_tokens" not in body


def test_openai_host_uses_max_completion_tokens() -> None:
    client = OpenAIClient("gpt-4.1-mini", api_key="sk-x")
    _, _, body = client.build_request(REQ)
    assert body["max_completion_tokens"] == 1024 and "max_tokens" not in body


def test_secret_never_in_repr() -> None:
    client = OpenAIClient("m", base_url=BASE, api_key="sk-supersecret")
    assert "sk-supersecret" not in repr(client)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"timeout": 0}, "timeout"),
        ({"structured_output": "xml"}, "structured_output"),
        ({"max_retries": -1}, "max_retries"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        OpenAIClient("m", base_url=BASE, **kwargs)


# -- request body per structured-output mode ---------------------------------------------------


def test_json_schema_mode() -> None:
    _, _, body = OpenAIClient("m", base_url=BASE).build_request(REQ)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "verdict", "strict": True, "schema": SCHEMA},
    }
    assert body["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi"},
    ]
    assert body["temperature"] == 0.0  # always sent: several servers default to 0.8 or 1.0


def test_json_object_schema_mode_for_llama_cpp_python() -> None:
    client = OpenAIClient("m", base_url=BASE, structured_output="json_object_schema")
    _, _, body = client.build_request(REQ)
    assert body["response_format"] == {"type": "json_object", "schema": SCHEMA}


def test_json_object_mode() -> None:
    client = OpenAIClient("m", base_url=BASE, structured_output="json_object")
    _, _, body = client.build_request(REQ)
    assert body["response_format"] == {"type": "json_object"}


def test_prompt_only_mode_sends_no_response_format() -> None:
    client = OpenAIClient("m", base_url=BASE, structured_output="none")
    _, _, body = client.build_request(REQ)
    assert "response_format" not in body
    assert client.capabilities.structured_output is False


def test_logprobs_are_requested_and_capped() -> None:
    req = ChatRequest(messages=REQ.messages, logprobs=True, top_logprobs=50, seed=3)
    _, _, body = OpenAIClient("m", base_url=BASE).build_request(req)
    assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["seed"] == 3


# -- responses -------------------------------------------------------------------------------


async def test_parses_text_usage_and_logprobs(api: respx.MockRouter, client: OpenAIClient) -> None:
    logprobs = {
        "content": [
            {
                "token": "4",
                "logprob": -0.1,
                "top_logprobs": [{"token": "4", "logprob": -0.1}, {"token": "5", "logprob": -2.3}],
            }
        ]
    }
    api.post(CHAT).respond(
        200, json=completion("4", logprobs=logprobs), headers={"x-request-id": "req-1"}
    )
    response = await client.complete(REQ)
    assert response.text == "4"
    assert response.finish_reason == "stop"
    assert response.usage.input_tokens == 50 and response.usage.output_tokens == 10
    assert response.request_id == "req-1"
    assert response.logprobs is not None
    assert response.logprobs[0].top == (("4", -0.1), ("5", -2.3))


async def test_refusal_is_reported(api: respx.MockRouter, client: OpenAIClient) -> None:
    api.post(CHAT).respond(200, json=completion("", message={"content": None, "refusal": "no"}))
    response = await client.complete(REQ)
    assert response.refusal == "no" and response.text == ""


# -- retries ---------------------------------------------------------------------------------


async def test_429_with_retry_after_then_success(
    api: respx.MockRouter, client: OpenAIClient, fake_sleep: Any
) -> None:
    route = api.post(CHAT)
    route.side_effect = [
        httpx.Response(
            429,
            json={"error": {"message": "slow down", "code": "rate_limit_exceeded"}},
            headers={"retry-after": "3"},
        ),
        httpx.Response(200, json=completion("ok")),
    ]
    response = await client.complete(REQ)
    assert response.text == "ok" and response.retries == 1
    assert route.call_count == 2
    assert fake_sleep.delays == [3.0]
    assert client.stats.retries == 1


async def test_retry_after_ms_wins(api: respx.MockRouter, client: OpenAIClient, fake_sleep: Any) -> None:
    api.post(CHAT).side_effect = [
        httpx.Response(503, headers={"retry-after-ms": "250", "retry-after": "9"}),
        httpx.Response(200, json=completion("ok")),
    ]
    await client.complete(REQ)
    assert fake_sleep.delays == [0.25]


async def test_retry_after_beyond_cap_fails_fast(api: respx.MockRouter, fake_sleep: Any) -> None:
    client = OpenAIClient(
        "m",
        base_url=BASE,
        retry_policy=RetryPolicy(max_retries=3, max_retry_after=30, sleep=fake_sleep),
    )
    route = api.post(CHAT).respond(
        429, headers={"retry-after": "600"}, json={"error": {"message": "x"}}
    )
    with pytest.raises(RateLimitError) as info:
        await client.complete(REQ)
    assert route.call_count == 1 and fake_sleep.delays == []
    assert info.value.retry_after == 600


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_are_never_retried(
    api: respx.MockRouter, client: OpenAIClient, status: int
) -> None:
    route = api.post(CHAT).respond(status, json={"error": {"message": "bad", "code": "x"}})
    expected = AuthenticationError if status in (401, 403) else BadRequestError
    with pytest.raises(expected) as info:
        await client.complete(REQ)
    assert route.call_count == 1
    assert info.value.status_code == status


async def test_insufficient_quota_is_not_retried(
    api: respx.MockRouter, client: OpenAIClient
) -> None:
    route = api.post(CHAT).respond(
        429,
        json={
            "error": {"message": "You exceeded your current quota", "code": "insufficient_quota"}
        },
    )
    with pytest.raises(QuotaExceededError):
        await client.complete(REQ)
    assert route.call_count == 1


@pytest.mark.parametrize("status", [408, 409, 500, 502, 503, 529])
async def test_transient_statuses_are_retried_with_backoff(
    api: respx.MockRouter, client: OpenAIClient, fake_sleep: Any, status: int
) -> None:
    route = api.post(CHAT).respond(
        status, json={"error": {"message": "boom"}}, headers={"x-request-id": "req-9"}
    )
    with pytest.raises(Exception) as info:
        await client.complete(REQ)
    assert route.call_count == 3  # 1 + max_retries=2
    assert len(fake_sleep.delays) == 2
    assert 0.375 <= fake_sleep.delays[0] <= 0.5 and 0.75 <= fake_sleep.delays[1] <= 1.0
    assert info.value.request_id == "req-9"  # type: ignore[attr-defined]
    assert client.stats.failures


async def test_x_should_retry_header_overrides(api: respx.MockRouter, client: OpenAIClient) -> None:
    route = api.post(CHAT).respond(500, headers={"x-should-retry": "false"})
    with pytest.raises(ServerError):
        await client.complete(REQ)
    assert route.call_count == 1


async def test_connection_errors_and_timeouts_are_retried(
    api: respx.MockRouter, client: OpenAIClient
) -> None:
    api.post(CHAT).side_effect = [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, json=completion("ok")),
    ]
    response = await client.complete(REQ)
    assert response.text == "ok" and response.retries == 2


async def test_exhausted_retries_raise_typed_errors(
    api: respx.MockRouter, client: OpenAIClient
) -> None:
    api.post(CHAT).side_effect = httpx.ReadTimeout("slow")
    with pytest.raises(JudgeTimeoutError):
        await client.complete(REQ)
    api.post(CHAT).side_effect = httpx.ConnectError("refused")
    with pytest.raises(TransportError):
        await client.complete(REQ)


async def test_invalid_json_200_is_retried(api: respx.MockRouter, client: OpenAIClient) -> None:
    api.post(CHAT).side_effect = [
        httpx.Response(200, text="<html>gateway</html>"),
        httpx.Response(200, json={"unexpected": True}),
        httpx.Response(200, json=completion("ok")),
    ]
    assert (await client.complete(REQ)).text == "ok"


async def test_error_messages_never_contain_the_key(api: respx.MockRouter, fake_sleep: Any) -> None:
    secret = "sk-live-abcdef123456"
    client = OpenAIClient(
        "m",
        base_url=BASE,
        api_key=secret,
        retry_policy=RetryPolicy(max_retries=0, sleep=fake_sleep),
    )
    api.post(CHAT).respond(
        401, json={"error": {"message": f"Incorrect API key provided: {secret}"}}
    )
    with pytest.raises(AuthenticationError) as info:
        await client.complete(REQ)
    assert secret not in str(info.value) and secret not in info.value.body
    assert "***" in str(info.value)


async def test_flat_error_body_of_old_vllm(api: respx.MockRouter, client: OpenAIClient) -> None:
    api.post(CHAT).respond(
        400, json={"object": "error", "message": "context too long", "code": 400}
    )
    with pytest.raises(BadRequestError, match="context too long"):
        await client.complete(REQ)


async def test_user_transport_is_used() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=completion("via transport"))

    client = OpenAIClient("m", base_url=BASE, transport=httpx.MockTransport(handler))
    async with client:
        assert (await client.complete(REQ)).text == "via transport"
    assert seen and seen[0].headers["content-type"] == "application/json"
