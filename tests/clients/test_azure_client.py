from __future__ import annotations

import json
import os
from typing import Any

import httpx
import pytest
import respx

from rftjudge import (
    AuthenticationError,
    AzureOpenAIClient,
    BadRequestError,
    ChatRequest,
    ConfigurationError,
    Criterion,
    Judgment,
    Message,
    OpenAIClient,
    RateLimitError,
    RefusalError,
    RetryPolicy,
    RubricJudge,
)

from support.payloads import completion, verdict

ENDPOINT = "https://my-resource.openai.azure.com"
V1 = f"{ENDPOINT}/openai/v1/chat/completions"
CLASSIC = f"{ENDPOINT}/openai/deployments/judge-4o/chat/completions?api-version=2024-10-21"
SCHEMA = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
REQ = ChatRequest(messages=(Message("system", "sys"), Message("user", "hi")), output_schema=SCHEMA)
KEY = "azure-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def _no_azure_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("AZURE_"):
            monkeypatch.delenv(var, raising=False)


@pytest.fixture
def azure(fake_sleep: Any) -> AzureOpenAIClient:
    return AzureOpenAIClient(
        "judge-4o",
        endpoint=ENDPOINT,
        api_key=KEY,
        retry_policy=RetryPolicy(max_retries=2, sleep=fake_sleep),
    )


# -- configuration ---------------------------------------------------------------------------


def test_is_an_openai_client(azure: AzureOpenAIClient) -> None:
    assert isinstance(azure, OpenAIClient) and azure.provider == "azure"


def test_missing_key_names_the_env_var() -> None:
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_API_KEY"):
        AzureOpenAIClient("judge-4o", endpoint=ENDPOINT)


def test_missing_endpoint_names_the_env_var() -> None:
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_ENDPOINT"):
        AzureOpenAIClient("judge-4o", api_key=KEY)


def test_openai_env_does_not_leak_into_azure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_API_KEY"):
        AzureOpenAIClient("judge-4o", endpoint=ENDPOINT)
    url, headers, _ = AzureOpenAIClient("judge-4o", endpoint=ENDPOINT, api_key=KEY).build_request(
        REQ
    )
    assert url == V1 and "authorization" not in headers


def test_v1_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", ENDPOINT + "/")
    url, headers, body = AzureOpenAIClient("judge-4o").build_request(REQ)
    assert url == V1
    assert headers == {"api-key": KEY}
    assert body["model"] == "judge-4o"


@pytest.mark.parametrize("suffix", ["/openai/v1", "/openai/v1/", "/openai"])
def test_endpoint_with_path_is_normalised(suffix: str) -> None:
    client = AzureOpenAIClient("judge-4o", endpoint=ENDPOINT + suffix, api_key=KEY)
    assert client.build_request(REQ)[0] == V1


def test_classic_deployment_url_from_api_version(monkeypatch: pytest.MonkeyPatch) -> None:
    client = AzureOpenAIClient("judge-4o", endpoint=ENDPOINT, api_key=KEY, api_version="2024-10-21")
    assert client.build_request(REQ)[0] == CLASSIC
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    assert (
        AzureOpenAIClient("judge-4o", endpoint=ENDPOINT, api_key=KEY).build_request(REQ)[0]
        == CLASSIC
    )
    explicit_v1 = AzureOpenAIClient("judge-4o", endpoint=ENDPOINT, api_key=KEY, api_version="v1")
    assert explicit_v1.build_request(REQ)[0] == V1


def test_entra_token_is_a_bearer(monkeypatch: pytest.MonkeyPatch) -> None:
    client = AzureOpenAIClient("judge-4o", endpoint=ENDPOINT, azure_ad_token="eyJ0eXAi.entra")
    assert client.build_request(REQ)[1] == {"authorization": "Bearer eyJ0eXAi.entra"}
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", "eyJ.env")
    env = AzureOpenAIClient("judge-4o", endpoint=ENDPOINT)
    assert env.build_request(REQ)[1] == {"authorization": "Bearer eyJ.env"}
    assert "eyJ.env" in env.secrets()


def test_base_url_override() -> None:
    client = AzureOpenAIClient("d", api_key=KEY, base_url="https://gateway.test/azure/openai/v1")
    assert client.build_request(REQ)[0] == "https://gateway.test/azure/openai/v1/chat/completions"


def test_body_is_openais(azure: AzureOpenAIClient) -> None:
    _, _, body = azure.build_request(
        ChatRequest(messages=REQ.messages, output_schema=SCHEMA, logprobs=True, top_logprobs=5)
    )
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA
    assert body["max_completion_tokens"] == 1024 and "max_tokens" not in body
    assert body["logprobs"] is True and body["top_logprobs"] == 5
    legacy = AzureOpenAIClient("d", endpoint=ENDPOINT, api_key=KEY, max_tokens_field="max_tokens")
    assert legacy.build_request(REQ)[2]["max_tokens"] == 1024


def test_key_never_in_repr(azure: AzureOpenAIClient) -> None:
    assert KEY not in repr(azure)


# -- on the wire -------------------------------------------------------------------------------


async def test_completion_with_api_key_header(
    api: respx.MockRouter, azure: AzureOpenAIClient
) -> None:
    route = api.post(V1).respond(
        200,
        json=completion('{"x": 1}'),
        headers={"x-request-id": "az-req-1", "apim-request-id": "apim-1"},
    )
    response = await azure.complete(REQ)
    assert response.text == '{"x": 1}' and response.request_id == "az-req-1"
    request = route.calls[0].request
    assert request.headers["api-key"] == KEY and "authorization" not in request.headers


async def test_classic_url_on_the_wire(api: respx.MockRouter, fake_sleep: Any) -> None:
    client = AzureOpenAIClient(
        "judge-4o",
        endpoint=ENDPOINT,
        api_key=KEY,
        api_version="2024-10-21",
        retry_policy=RetryPolicy(max_retries=0, sleep=fake_sleep),
    )
    route = api.post(CLASSIC).respond(200, json=completion("{}"))
    await client.complete(REQ)
    assert route.call_count == 1
    assert route.calls[0].request.url.params["api-version"] == "2024-10-21"


async def test_429_retry_after_ms(
    api: respx.MockRouter, azure: AzureOpenAIClient, fake_sleep: Any
) -> None:
    api.post(V1).side_effect = [
        httpx.Response(
            429,
            json={
                "error": {
                    "code": "429",
                    "message": "Requests to the ChatCompletions_Create Operation have exceeded call rate limit.",
                }
            },
            headers={"retry-after-ms": "1500", "retry-after": "2"},
        ),
        httpx.Response(200, json=completion("{}")),
    ]
    assert (await azure.complete(REQ)).retries == 1
    assert fake_sleep.delays == [1.5]


async def test_429_exhausted(api: respx.MockRouter, azure: AzureOpenAIClient) -> None:
    route = api.post(V1).respond(429, json={"error": {"code": "429", "message": "rate"}})
    with pytest.raises(RateLimitError):
        await azure.complete(REQ)
    assert route.call_count == 3


async def test_flagged_prompt_is_a_bad_request_not_retried(
    api: respx.MockRouter, azure: AzureOpenAIClient
) -> None:
    body: dict[str, Any] = {
        "error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {"hate": {"filtered": True, "severity": "high"}},
            },
        }
    }
    route = api.post(V1).respond(400, json=body)
    with pytest.raises(BadRequestError) as info:
        await azure.complete(REQ)
    assert route.call_count == 1 and info.value.error_code == "content_filter"


async def test_key_scrubbed(api: respx.MockRouter, azure: AzureOpenAIClient) -> None:
    api.post(V1).respond(
        401,
        json={
            "error": {
                "code": "401",
                "message": f"Access denied due to invalid subscription key {KEY}",
            }
        },
    )
    with pytest.raises(AuthenticationError) as info:
        await azure.complete(REQ)
    assert KEY not in str(info.value) and KEY not in info.value.body


# -- end to end --------------------------------------------------------------------------------

QUESTION = "How long should I boil an egg for a firm yolk?"
ANSWER = "About nine to ten minutes, then cool it in cold water."
CRITERIA = [Criterion(name="grounded", description="Is it grounded?")]


async def test_rubric_judge_over_azure(api: respx.MockRouter, azure: AzureOpenAIClient) -> None:
    api.post(V1).respond(200, json=completion(verdict({"grounded": 2}, "partly")))
    judgment = await RubricJudge(azure, criteria=CRITERIA, scale=(1, 3)).ajudge(QUESTION, ANSWER)
    assert isinstance(judgment, Judgment) and judgment.score == pytest.approx(0.5)


async def test_rubric_judge_filtered_output_is_refusal(
    api: respx.MockRouter, azure: AzureOpenAIClient
) -> None:
    api.post(V1).respond(200, json=completion("", finish_reason="content_filter"))
    judge = RubricJudge(azure, criteria=CRITERIA, on_error="raise")
    with pytest.raises(RefusalError):
        await judge.ajudge(QUESTION, ANSWER)
    sent = json.loads(api.calls.last.request.content)
    assert sent["model"] == "judge-4o"
