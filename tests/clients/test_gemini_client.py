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
    Criterion,
    GeminiClient,
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
from rftjudge.clients.gemini import parse_retry_delay

from support.payloads import verdict

BASE = "https://generativelanguage.googleapis.com/v1beta"
URL = f"{BASE}/models/gemini-2.5-flash:generateContent"
SCHEMA = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
REQ = ChatRequest(messages=(Message("system", "sys"), Message("user", "hi")), output_schema=SCHEMA)
KEY = "AIzaSyD-gemini-test-secret"


def generated(
    parts: list[dict[str, Any]] | str, *, finish: str = "STOP", **candidate_extra: Any
) -> dict[str, Any]:
    if isinstance(parts, str):
        parts = [{"text": parts}]
    return {
        "candidates": [
            {
                "content": {"parts": parts, "role": "model"},
                "finishReason": finish,
                "index": 0,
                **candidate_extra,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 120,
            "candidatesTokenCount": 30,
            "thoughtsTokenCount": 50,
            "totalTokenCount": 200,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 120}],
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "mHUvaJ3kK5GqnvgPkpW32Qo",
    }


def google_error(code: int, status: str, message: str, *details: dict[str, Any]) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status, "details": list(details)}}


def retry_info(delay: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


def quota_failure(quota_id: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
            {
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": quota_id,
                "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                "quotaValue": "10",
            }
        ],
    }


@pytest.fixture
def gemini(fake_sleep: Any) -> GeminiClient:
    return GeminiClient(
        "gemini-2.5-flash", api_key=KEY, retry_policy=RetryPolicy(max_retries=2, sleep=fake_sleep)
    )


# -- configuration ---------------------------------------------------------------------------


def test_missing_key_names_the_env_vars() -> None:
    with pytest.raises(ConfigurationError, match=r"GEMINI_API_KEY.*GOOGLE_API_KEY"):
        GeminiClient("gemini-2.5-flash")


@pytest.mark.parametrize("var", ["GEMINI_API_KEY", "GOOGLE_API_KEY"])
def test_key_from_env(monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    monkeypatch.setenv(var, "AIza-env")
    url, headers, _ = GeminiClient("gemini-2.5-flash").build_request(REQ)
    assert url == URL and headers == {"x-goog-api-key": "AIza-env"}
    assert "key=" not in url  # never in the URL, where proxies log it


def test_gemini_key_wins_over_google_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "gemini")
    monkeypatch.setenv("GOOGLE_API_KEY", "google")
    assert GeminiClient("m").build_request(REQ)[1]["x-goog-api-key"] == "gemini"
    assert GeminiClient("m", api_key="arg").build_request(REQ)[1]["x-goog-api-key"] == "arg"


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("gemini-2.5-flash", "models/gemini-2.5-flash"),
        ("models/gemini-2.5-pro", "models/gemini-2.5-pro"),
        ("tunedModels/my-judge-123", "tunedModels/my-judge-123"),
    ],
)
def test_model_resource_paths(model: str, path: str) -> None:
    url = GeminiClient(model, api_key="k", base_url="http://proxy.test/v1beta").build_request(REQ)[
        0
    ]
    assert url == f"http://proxy.test/v1beta/{path}:generateContent"


def test_base_url_makes_the_key_optional() -> None:
    client = GeminiClient("m", base_url="http://proxy.test/v1beta")
    assert client.build_request(REQ)[1] == {}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"structured_output": "grammar"}, "structured_output"),
        ({"thinking_budget": 0, "thinking_level": "low"}, "not both"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        GeminiClient("m", api_key="k", **kwargs)


def test_capabilities_and_repr(gemini: GeminiClient) -> None:
    assert gemini.capabilities.logprobs is False and gemini.capabilities.structured_output
    on = GeminiClient("gemini-2.0-flash", api_key="k", logprobs=True).capabilities
    assert on.logprobs is True and on.max_top_logprobs == 20
    assert KEY not in repr(gemini)


# -- request bodies --------------------------------------------------------------------------


def test_body(gemini: GeminiClient) -> None:
    req = ChatRequest(
        messages=(
            Message("system", "sys"),
            Message("user", "hi"),
            Message("assistant", "draft"),
            Message("user", "again"),
        ),
        output_schema=SCHEMA,
        seed=11,
    )
    _, _, body = gemini.build_request(req)
    assert body == {
        "contents": [
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [{"text": "draft"}]},
            {"role": "user", "parts": [{"text": "again"}]},
        ],
        "systemInstruction": {"parts": [{"text": "sys"}]},
        "generationConfig": {
            "temperature": 0.0,
            "maxOutputTokens": 1024 + 8192,  # 2.5 thinks by default: room for it
            "seed": 11,
            "responseMimeType": "application/json",
            "responseJsonSchema": SCHEMA,
        },
    }


def test_json_mode_prompt_only_and_thinking() -> None:
    json_mode = GeminiClient("m", api_key="k", structured_output="json", thinking_budget=0)
    config = json_mode.build_request(REQ)[2]["generationConfig"]
    assert config["responseMimeType"] == "application/json" and "responseJsonSchema" not in config
    assert config["thinkingConfig"] == {"thinkingBudget": 0}
    level = GeminiClient(
        "gemini-3-pro", api_key="k", structured_output="none", thinking_level="low"
    )
    config = level.build_request(REQ)[2]["generationConfig"]
    assert "responseMimeType" not in config and config["thinkingConfig"] == {"thinkingLevel": "low"}


def test_logprobs_requested_and_capped(gemini: GeminiClient) -> None:
    req = ChatRequest(messages=REQ.messages, logprobs=True, top_logprobs=30)
    config = gemini.build_request(req)[2]["generationConfig"]
    assert config["responseLogprobs"] is True and config["logprobs"] == 20
    only_chosen = gemini.build_request(ChatRequest(messages=REQ.messages, logprobs=True))[2]
    assert "logprobs" not in only_chosen["generationConfig"]
    assert "responseLogprobs" not in gemini.build_request(REQ)[2]["generationConfig"]


# -- responses -------------------------------------------------------------------------------


async def test_parses_text_skips_thoughts_counts_thinking(
    api: respx.MockRouter, gemini: GeminiClient
) -> None:
    parts: list[dict[str, Any]] = [
        {"text": "**Weighing it** maybe {x: 0}", "thought": True},
        {"text": '{"x": '},
        {"text": "3}"},
    ]
    route = api.post(URL).respond(200, json=generated(parts))
    response = await gemini.complete(REQ)
    assert response.text == '{"x": 3}'
    assert response.finish_reason == "stop"
    assert response.usage.input_tokens == 120 and response.usage.output_tokens == 80
    assert response.model == "gemini-2.5-flash"
    assert response.request_id == "mHUvaJ3kK5GqnvgPkpW32Qo"
    assert route.calls[0].request.headers["x-goog-api-key"] == KEY


async def test_parses_logprobs(api: respx.MockRouter, gemini: GeminiClient) -> None:
    logprobs = {
        "topCandidates": [
            {
                "candidates": [
                    {"token": "4", "tokenId": 236812, "logProbability": -0.02},
                    {"token": "5", "tokenId": 236811, "logProbability": -3.9},
                ]
            },
            {"candidates": [{"token": "}", "tokenId": 236783, "logProbability": 0.0}]},
        ],
        "chosenCandidates": [
            {"token": "4", "tokenId": 236812, "logProbability": -0.02},
            {"token": "}", "tokenId": 236783, "logProbability": 0.0},
        ],
        "logProbabilitySum": -0.02,
    }
    api.post(URL).respond(200, json=generated("4}", logprobsResult=logprobs, avgLogprobs=-0.01))
    response = await gemini.complete(
        ChatRequest(messages=REQ.messages, logprobs=True, top_logprobs=2)
    )
    assert response.logprobs is not None and len(response.logprobs) == 2
    assert response.logprobs[0].token == "4" and response.logprobs[0].logprob == -0.02
    assert response.logprobs[0].top == (("4", -0.02), ("5", -3.9))


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
    ],
)
async def test_finish_reasons(
    api: respx.MockRouter, gemini: GeminiClient, finish: str, expected: str
) -> None:
    api.post(URL).respond(200, json=generated("{}", finish=finish))
    assert (await gemini.complete(REQ)).finish_reason == expected


async def test_blocked_prompt_is_a_content_filter_not_a_server_error(
    api: respx.MockRouter, gemini: GeminiClient
) -> None:
    route = api.post(URL).respond(
        200,
        json={
            "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
            "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
            "modelVersion": "gemini-2.5-flash",
            "responseId": "b1",
        },
    )
    response = await gemini.complete(REQ)
    assert route.call_count == 1  # not retried as a malformed answer
    assert response.finish_reason == "content_filter"
    assert response.refusal == "prompt blocked (PROHIBITED_CONTENT)"
    assert response.usage.input_tokens == 8


async def test_thinking_that_ate_the_budget_is_length(
    api: respx.MockRouter, gemini: GeminiClient
) -> None:
    body = generated([], finish="MAX_TOKENS")
    del body["candidates"][0]["content"]["parts"]
    api.post(URL).respond(200, json=body)
    response = await gemini.complete(REQ)
    assert response.text == "" and response.finish_reason == "length"


async def test_no_candidates_without_reason_is_retried(
    api: respx.MockRouter, gemini: GeminiClient
) -> None:
    api.post(URL).side_effect = [
        httpx.Response(200, json={"usageMetadata": {}}),
        httpx.Response(200, json=generated("{}")),
    ]
    assert (await gemini.complete(REQ)).retries == 1


# -- errors and retries ------------------------------------------------------------------------


def test_parse_retry_delay() -> None:
    assert parse_retry_delay("37s") == 37.0
    assert parse_retry_delay("0.5s") == 0.5
    assert parse_retry_delay("soon") is None and parse_retry_delay(None) is None


async def test_retry_delay_is_honoured(
    api: respx.MockRouter, gemini: GeminiClient, fake_sleep: Any
) -> None:
    route = api.post(URL)
    route.side_effect = [
        httpx.Response(
            429,
            json=google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "You exceeded your current quota, please check your plan and billing details.",
                quota_failure("GenerateRequestsPerMinutePerProjectPerModel-FreeTier"),
                {
                    "@type": "type.googleapis.com/google.rpc.Help",
                    "links": [{"url": "https://ai.google.dev/gemini-api/docs/rate-limits"}],
                },
                retry_info("37s"),
            ),
        ),
        httpx.Response(200, json=generated("{}")),
    ]
    response = await gemini.complete(REQ)
    assert response.retries == 1 and fake_sleep.delays == [37.0]


async def test_rate_limit_error_carries_retry_after(
    api: respx.MockRouter, gemini: GeminiClient
) -> None:
    api.post(URL).respond(
        429, json=google_error(429, "RESOURCE_EXHAUSTED", "Resource exhausted", retry_info("2s"))
    )
    with pytest.raises(RateLimitError) as info:
        await gemini.complete(REQ)
    assert info.value.retry_after == 2.0 and info.value.error_code == "RESOURCE_EXHAUSTED"


async def test_long_retry_delay_fails_fast(
    api: respx.MockRouter, gemini: GeminiClient, fake_sleep: Any
) -> None:
    route = api.post(URL).respond(
        429, json=google_error(429, "RESOURCE_EXHAUSTED", "quota", retry_info("3600s"))
    )
    with pytest.raises(RateLimitError):
        await gemini.complete(REQ)
    assert route.call_count == 1 and fake_sleep.delays == []


async def test_daily_quota_is_not_retried(api: respx.MockRouter, gemini: GeminiClient) -> None:
    route = api.post(URL).respond(
        429,
        json=google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota.",
            quota_failure("GenerateRequestsPerDayPerProjectPerModel-FreeTier"),
            retry_info("21s"),
        ),
    )
    with pytest.raises(QuotaExceededError):
        await gemini.complete(REQ)
    assert route.call_count == 1


async def test_invalid_key_is_an_authentication_error(
    api: respx.MockRouter, gemini: GeminiClient
) -> None:
    route = api.post(URL).respond(
        400,
        json=google_error(
            400,
            "INVALID_ARGUMENT",
            f"API key not valid. Please pass a valid API key. ({KEY})",
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
            },
        ),
    )
    with pytest.raises(AuthenticationError) as info:
        await gemini.complete(REQ)
    assert route.call_count == 1
    assert KEY not in str(info.value) and KEY not in info.value.body


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "INVALID_ARGUMENT", BadRequestError),
        (403, "PERMISSION_DENIED", AuthenticationError),
        (404, "NOT_FOUND", BadRequestError),
    ],
)
async def test_client_errors_are_not_retried(
    api: respx.MockRouter, gemini: GeminiClient, status: int, code: str, cls: type
) -> None:
    route = api.post(URL).respond(
        status,
        json=google_error(status, code, "Logprobs is not enabled for models/gemini-2.5-flash"),
    )
    with pytest.raises(cls, match="Logprobs is not enabled"):
        await gemini.complete(REQ)
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("status", "code"), [(500, "INTERNAL"), (503, "UNAVAILABLE"), (504, "DEADLINE_EXCEEDED")]
)
async def test_server_errors_are_retried(
    api: respx.MockRouter, gemini: GeminiClient, status: int, code: str
) -> None:
    route = api.post(URL).respond(
        status, json=google_error(status, code, "The model is overloaded. Please try again later.")
    )
    with pytest.raises(ServerError):
        await gemini.complete(REQ)
    assert route.call_count == 3


async def test_non_google_error_body_falls_back(
    api: respx.MockRouter, gemini: GeminiClient
) -> None:
    api.post(URL).respond(502, text="<html>Bad Gateway</html>")
    with pytest.raises(ServerError, match="Bad Gateway"):
        await gemini.complete(REQ)


# -- end to end --------------------------------------------------------------------------------

QUESTION = "How long should I boil an egg for a firm yolk?"
ANSWER = "About nine to ten minutes, then cool it in cold water."
CRITERIA = [
    Criterion(name="correct", description="Is it correct?"),
    Criterion(name="concise", description="Is it concise?"),
]


async def test_rubric_judge_over_gemini(api: respx.MockRouter, gemini: GeminiClient) -> None:
    answer = json.dumps(verdict({"correct": 5, "concise": 1}, "right but long"))
    route = api.post(URL).respond(
        200, json=generated([{"text": "hmm", "thought": True}, {"text": answer}])
    )
    judgment = await RubricJudge(gemini, criteria=CRITERIA, scale=(1, 5)).ajudge(QUESTION, ANSWER)
    assert isinstance(judgment, Judgment)
    assert judgment.score == pytest.approx(0.5)
    assert judgment.normalized == {"correct": 1.0, "concise": 0.0}
    sent = json.loads(route.calls[0].request.content)
    assert "responseJsonSchema" in sent["generationConfig"]


async def test_rubric_judge_blocked_prompt_is_refusal(
    api: respx.MockRouter, gemini: GeminiClient
) -> None:
    api.post(URL).respond(200, json={"promptFeedback": {"blockReason": "SAFETY"}})
    judge = RubricJudge(gemini, criteria=CRITERIA, on_error="raise")
    with pytest.raises(RefusalError, match="prompt blocked"):
        await judge.ajudge(QUESTION, ANSWER)


async def test_rubric_judge_truncated_by_thinking(
    api: respx.MockRouter, gemini: GeminiClient
) -> None:
    api.post(URL).respond(200, json=generated([], finish="MAX_TOKENS"))
    judge = RubricJudge(gemini, criteria=CRITERIA, on_error="raise", max_reasks=0)
    with pytest.raises(TruncatedError):
        await judge.ajudge(QUESTION, ANSWER)
