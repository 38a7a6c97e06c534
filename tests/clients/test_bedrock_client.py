from __future__ import annotations

import datetime as dt
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from rftjudge import (
    AuthenticationError,
    BadRequestError,
    BedrockClient,
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
)

from support.payloads import verdict

MODEL = "us.amazon.nova-lite-v1:0"
HOST = "https://bedrock-runtime.us-east-1.amazonaws.com"
URL = f"{HOST}/model/us.amazon.nova-lite-v1%3A0/converse"
SCHEMA = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
REQ = ChatRequest(messages=(Message("system", "sys"), Message("user", "hi")), output_schema=SCHEMA)
FROZEN = dt.datetime(2026, 3, 14, 15, 9, 26, tzinfo=dt.timezone.utc)
ACCESS, SECRET, TOKEN = (
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "IQoJb3Jp//token",
)


def converse(
    content: list[dict[str, Any]] | str, *, stop: str = "end_turn", **extra: Any
) -> dict[str, Any]:
    if isinstance(content, str):
        content = [{"text": content}]
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": 125, "outputTokens": 60, "totalTokens": 185},
        "metrics": {"latencyMs": 1175},
        **extra,
    }


def aws_error(status: int, error_type: str, message: str, *, suffix: bool = True) -> httpx.Response:
    header = (
        f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"
        if suffix
        else error_type
    )
    return httpx.Response(
        status,
        json={"message": message},
        headers={
            "x-amzn-ErrorType": header,
            "x-amzn-RequestId": "4b1c2f7e-0d3a-4b5e-9f6a-1c2d3e4f5a6b",
        },
    )


@pytest.fixture(autouse=True)
def _no_aws_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """botocore (installed by the test extra) must not find the developer's profiles or call IMDS."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def keyed(fake_sleep: Any) -> BedrockClient:
    """A client on a Bedrock API key (bearer)."""
    return BedrockClient(
        MODEL,
        region="us-east-1",
        api_key="ABSKbedrock-api-key-secret",
        retry_policy=RetryPolicy(max_retries=2, sleep=fake_sleep),
    )


def sigv4_client(fake_sleep: Any, **kwargs: Any) -> BedrockClient:
    kwargs.setdefault("region", "us-east-1")
    kwargs.setdefault("aws_access_key_id", ACCESS)
    kwargs.setdefault("aws_secret_access_key", SECRET)
    return BedrockClient(
        MODEL,
        clock=lambda: FROZEN,
        retry_policy=RetryPolicy(max_retries=2, sleep=fake_sleep),
        **kwargs,
    )


def botocore_authorization(request: httpx.Request, region: str, token: str | None = None) -> str:
    """What botocore's SigV4Auth signs for exactly the bytes and headers httpx sent."""
    from botocore import auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    signed = {"content-type", "accept"}
    aws = AWSRequest(
        method="POST",
        url=str(request.url),
        data=request.content,
        headers={k: v for k, v in request.headers.items() if k in signed},
    )
    original = auth.get_current_datetime
    auth.get_current_datetime = lambda *a, **k: FROZEN.replace(tzinfo=None)
    try:
        auth.SigV4Auth(Credentials(ACCESS, SECRET, token), "bedrock", region).add_auth(aws)
    finally:
        auth.get_current_datetime = original
    return str(aws.headers["Authorization"])


# -- configuration: region and credentials ------------------------------------------------------


def test_missing_region_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="AWS_REGION"):
        BedrockClient(MODEL, api_key="k")


@pytest.mark.parametrize("var", ["AWS_REGION", "AWS_DEFAULT_REGION"])
def test_region_from_env(monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    monkeypatch.setenv(var, "eu-central-1")
    client = BedrockClient(MODEL, api_key="k")
    assert client.region == "eu-central-1"
    assert client.build_request(REQ)[0] == (
        "https://bedrock-runtime.eu-central-1.amazonaws.com/model/us.amazon.nova-lite-v1%3A0/converse"
    )


def test_aws_region_wins_over_default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert BedrockClient(MODEL, api_key="k").region == "us-west-2"
    # the legacy positional region (deprecated, still honoured): deliberately off the signature
    legacy = BedrockClient(MODEL, "ap-south-1", api_key="k")  # type: ignore[call-arg]
    assert legacy.region == "ap-south-1"


def test_bearer_token_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "ABSKenv-token")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS)  # the Bedrock key wins, as in botocore
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    client = BedrockClient(MODEL, region="us-east-1")
    assert client.auth_mode == "api_key"
    _, headers, _ = client.build_request(REQ)
    assert headers["authorization"] == "Bearer ABSKenv-token"
    assert client.sign(URL, headers, b"{}") == headers  # nothing to sign


def test_access_keys_from_env(monkeypatch: pytest.MonkeyPatch, fake_sleep: Any) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    client = BedrockClient(MODEL, region="us-east-1", clock=lambda: FROZEN)
    assert client.auth_mode == "sigv4"
    signed = client.sign(URL, {"content-type": "application/json"}, b"{}")
    assert signed["x-amz-security-token"] == TOKEN
    assert f"Credential={ACCESS}/20260314/us-east-1/bedrock/aws4_request" in signed["authorization"]


def test_explicit_keys_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "ABSKenv")
    client = BedrockClient(
        MODEL, region="us-east-1", aws_access_key_id="AKIAARG", aws_secret_access_key="s"
    )
    assert client.auth_mode == "sigv4"
    assert "authorization" not in client.build_request(REQ)[1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"api_key": "k", "aws_access_key_id": "a", "aws_secret_access_key": "s"}, "not both"),
        ({"aws_access_key_id": "a"}, "go together"),
        ({"api_key": "k", "structured_output": "grammar"}, "structured_output"),
    ],
)
def test_conflicting_or_partial_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        BedrockClient(MODEL, region="us-east-1", **kwargs)


def test_no_credentials_names_every_source() -> None:
    with pytest.raises(ConfigurationError) as info:
        BedrockClient(MODEL, region="us-east-1")
    message = str(info.value)
    for name in (
        "AWS_BEARER_TOKEN_BEDROCK",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "api_key",
    ):
        assert name in message


def test_without_botocore_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "botocore.session", None)
    with pytest.raises(ConfigurationError, match=r"rftjudge\[aws\]"):
        BedrockClient(MODEL, region="us-east-1")
    with pytest.raises(ImportError, match=r"rftjudge\[aws\]"):
        BedrockClient(MODEL, region="us-east-1", profile="judge")


def test_profile_credentials_and_region_via_botocore(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "credentials").write_text(
        f"[judge]\naws_access_key_id = {ACCESS}\naws_secret_access_key = {SECRET}\n"
    )
    (tmp_path / "config").write_text("[profile judge]\nregion = ap-northeast-1\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    client = BedrockClient(MODEL, profile="judge", clock=lambda: FROZEN)
    assert client.region == "ap-northeast-1" and client.auth_mode == "sigv4"
    signed = client.sign(URL, {}, b"{}")
    assert f"Credential={ACCESS}/20260314/ap-northeast-1/bedrock/" in signed["authorization"]


def test_unknown_profile_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="ProfileNotFound"):
        BedrockClient(MODEL, region="us-east-1", profile="nope")


def test_secrets_never_in_repr(keyed: BedrockClient, fake_sleep: Any) -> None:
    assert "bedrock-api-key-secret" not in repr(keyed)
    assert SECRET not in repr(sigv4_client(fake_sleep))


# -- request bodies --------------------------------------------------------------------------


def test_json_schema_body(keyed: BedrockClient) -> None:
    url, headers, body = keyed.build_request(REQ)
    assert url == URL
    assert headers["authorization"] == "Bearer ABSKbedrock-api-key-secret"
    assert body["system"] == [{"text": "sys"}]
    assert body["messages"] == [{"role": "user", "content": [{"text": "hi"}]}]
    assert body["inferenceConfig"] == {"maxTokens": 1024, "temperature": 0.0}
    text_format = body["outputConfig"]["textFormat"]
    assert text_format["type"] == "json_schema"
    schema = text_format["structure"]["jsonSchema"]["schema"]
    assert isinstance(schema, str) and json.loads(schema) == SCHEMA  # a JSON string
    assert text_format["structure"]["jsonSchema"]["name"] == "verdict"
    assert "toolConfig" not in body


def test_forced_tool_body() -> None:
    client = BedrockClient(MODEL, region="us-east-1", api_key="k", structured_output="tool")
    _, _, body = client.build_request(REQ)
    assert body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "verdict",
                    "description": "Record your verdict. Call this tool exactly once.",
                    "inputSchema": {"json": SCHEMA},
                }
            }
        ],
        "toolChoice": {"tool": {"name": "verdict"}},
    }
    assert "outputConfig" not in body


def test_prompt_only_body_and_no_limits() -> None:
    client = BedrockClient(MODEL, region="us-east-1", api_key="k", structured_output="none")
    req = ChatRequest(
        messages=(Message("user", "hi"),), output_schema=SCHEMA, temperature=None, max_tokens=None
    )
    _, _, body = client.build_request(req)
    assert set(body) == {"messages"}
    assert client.capabilities.structured_output is False and client.capabilities.logprobs is False


def test_temperature_omitted_for_opus_4_7() -> None:
    opus = BedrockClient("us.anthropic.claude-opus-4-7-v1:0", region="us-east-1", api_key="k")
    assert opus.build_request(REQ)[2]["inferenceConfig"] == {"maxTokens": 1024}
    forced = BedrockClient(
        "us.anthropic.claude-opus-4-7-v1:0", region="us-east-1", api_key="k", send_temperature=True
    )
    assert forced.build_request(REQ)[2]["inferenceConfig"]["temperature"] == 0.0


def test_arn_model_id_and_base_url_override() -> None:
    arn = "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.meta.llama3-3-70b-instruct-v1:0"
    client = BedrockClient(
        arn, region="us-west-2", api_key="k", base_url="https://vpce-1.bedrock.test/"
    )
    assert client.build_request(REQ)[0] == (
        "https://vpce-1.bedrock.test/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3A"
        "inference-profile%2Fus.meta.llama3-3-70b-instruct-v1%3A0/converse"
    )


# -- SigV4 on the wire -------------------------------------------------------------------------


async def test_sent_request_carries_botocores_signature(api: respx.MockRouter, fake_sleep: Any) -> None:
    route = api.post(URL).respond(200, json=converse('{"x": 1}'))
    client = sigv4_client(fake_sleep)
    await client.complete(REQ)
    request = route.calls[0].request
    assert request.url.raw_path == b"/model/us.amazon.nova-lite-v1%3A0/converse"
    assert request.headers["x-amz-date"] == "20260314T150926Z"
    assert request.headers["authorization"] == botocore_authorization(request, "us-east-1")
    assert "x-amz-security-token" not in request.headers


async def test_session_token_is_sent_and_signed(api: respx.MockRouter, fake_sleep: Any) -> None:
    route = api.post(URL).respond(200, json=converse('{"x": 1}'))
    await sigv4_client(fake_sleep, aws_session_token=TOKEN).complete(REQ)
    request = route.calls[0].request
    assert request.headers["x-amz-security-token"] == TOKEN
    assert request.headers["authorization"] == botocore_authorization(request, "us-east-1", TOKEN)


async def test_each_retry_is_signed_afresh(api: respx.MockRouter, fake_sleep: Any) -> None:
    ticks = itertools.count()
    client = BedrockClient(
        MODEL,
        region="us-east-1",
        aws_access_key_id=ACCESS,
        aws_secret_access_key=SECRET,
        clock=lambda: FROZEN + dt.timedelta(seconds=next(ticks)),
        retry_policy=RetryPolicy(max_retries=2, sleep=fake_sleep),
    )
    route = api.post(URL)
    route.side_effect = [
        aws_error(
            429, "ThrottlingException", "Too many requests, please wait before trying again."
        ),
        httpx.Response(200, json=converse('{"x": 1}')),
    ]
    response = await client.complete(REQ)
    assert response.retries == 1
    dates = [call.request.headers["x-amz-date"] for call in route.calls]
    assert dates == ["20260314T150926Z", "20260314T150927Z"]
    auths = {call.request.headers["authorization"] for call in route.calls}
    assert len(auths) == 2


# -- responses -------------------------------------------------------------------------------


async def test_parses_text_usage_and_request_id(
    api: respx.MockRouter, keyed: BedrockClient
) -> None:
    content: list[dict[str, Any]] = [
        {"reasoningContent": {"reasoningText": {"text": "maybe {x: 0}", "signature": "sig"}}},
        {"text": '{"x": '},
        {"text": "7}"},
    ]
    api.post(URL).respond(
        200,
        json=converse(content),
        headers={"x-amzn-RequestId": "f6c1b4d2-5e8a-4c3b-9d7e-0a1b2c3d4e5f"},
    )
    response = await keyed.complete(REQ)
    assert response.text == '{"x": 7}'
    assert response.finish_reason == "stop"
    assert response.usage.input_tokens == 125 and response.usage.output_tokens == 60
    assert response.request_id == "f6c1b4d2-5e8a-4c3b-9d7e-0a1b2c3d4e5f"
    assert response.logprobs is None


async def test_tool_use_input_becomes_the_text(api: respx.MockRouter, keyed: BedrockClient) -> None:
    content: list[dict[str, Any]] = [
        {"text": "I'll record it."},
        {
            "toolUse": {
                "toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                "name": "verdict",
                "input": {"x": 2},
            }
        },
    ]
    api.post(URL).respond(200, json=converse(content, stop="tool_use"))
    response = await keyed.complete(REQ)
    assert json.loads(response.text) == {"x": 2} and response.finish_reason == "tool_use"


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
    ],
)
async def test_stop_reasons(
    api: respx.MockRouter, keyed: BedrockClient, stop: str, expected: str
) -> None:
    api.post(URL).respond(200, json=converse("{}", stop=stop))
    assert (await keyed.complete(REQ)).finish_reason == expected


# -- errors and retries ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "cls"),
    [
        (429, "ThrottlingException", RateLimitError),
        (429, "ModelNotReadyException", RateLimitError),
        (408, "ModelTimeoutException", ServerError),
        (503, "ServiceUnavailableException", ServerError),
        (500, "InternalServerException", ServerError),
    ],
)
async def test_transient_errors_are_retried(
    api: respx.MockRouter, keyed: BedrockClient, fake_sleep: Any, status: int, error_type: str, cls: type[HTTPStatusError]
) -> None:
    route = api.post(URL)
    route.side_effect = [aws_error(status, error_type, "try later")] * 3
    with pytest.raises(cls) as info:
        await keyed.complete(REQ)
    assert route.call_count == 3 and len(fake_sleep.delays) == 2
    assert info.value.error_code == error_type  # the ':...' suffix stripped
    assert info.value.request_id == "4b1c2f7e-0d3a-4b5e-9f6a-1c2d3e4f5a6b"
    assert error_type in str(info.value)


@pytest.mark.parametrize(
    ("status", "error_type", "cls"),
    [
        (400, "ValidationException", BadRequestError),
        (403, "AccessDeniedException", AuthenticationError),
        (404, "ResourceNotFoundException", BadRequestError),
        (400, "ServiceQuotaExceededException", QuotaExceededError),
        (424, "ModelErrorException", HTTPStatusError),
        (403, "UnrecognizedClientException", AuthenticationError),
    ],
)
async def test_permanent_errors_are_not_retried(
    api: respx.MockRouter, keyed: BedrockClient, status: int, error_type: str, cls: type[HTTPStatusError]
) -> None:
    route = api.post(URL)
    route.side_effect = [
        aws_error(status, error_type, "no", suffix=False),
        httpx.Response(200, json=converse("{}")),
    ]
    with pytest.raises(cls) as info:
        await keyed.complete(REQ)
    assert type(info.value) is cls
    assert route.call_count == 1 and info.value.status_code == status


async def test_daily_token_quota_is_not_retried(
    api: respx.MockRouter, keyed: BedrockClient
) -> None:
    route = api.post(URL).mock(
        return_value=aws_error(
            429, "ThrottlingException", "Too many tokens per day, please wait before trying again."
        )
    )
    with pytest.raises(QuotaExceededError):
        await keyed.complete(REQ)
    assert route.call_count == 1


async def test_error_type_from_body_when_header_missing(
    api: respx.MockRouter, keyed: BedrockClient
) -> None:
    api.post(URL).respond(
        403,
        json={
            "__type": "com.amazon.coral.service#ExpiredTokenException",
            "Message": "The security token included in the request is expired",
        },
    )
    with pytest.raises(AuthenticationError, match="expired") as info:
        await keyed.complete(REQ)
    assert info.value.error_code == "ExpiredTokenException"


async def test_secret_is_scrubbed_from_errors(api: respx.MockRouter, fake_sleep: Any) -> None:
    client = sigv4_client(fake_sleep, aws_session_token=TOKEN)
    api.post(URL).mock(
        return_value=aws_error(
            403, "InvalidSignatureException", f"bad signature for {SECRET} / {TOKEN}"
        )
    )
    with pytest.raises(AuthenticationError) as info:
        await client.complete(REQ)
    assert SECRET not in str(info.value) and TOKEN not in info.value.body


# -- end to end --------------------------------------------------------------------------------

QUESTION = "How long should I boil an egg for a firm yolk?"
ANSWER = "About nine to ten minutes, then cool it in cold water."
CRITERIA = [Criterion(name="faithful", description="Is it faithful to the source?")]


@pytest.mark.parametrize("auth", ["api_key", "sigv4"])
async def test_rubric_judge_over_bedrock(api: respx.MockRouter, fake_sleep: Any, auth: str) -> None:
    if auth == "api_key":
        client = BedrockClient(MODEL, region="us-east-1", api_key="k")
    else:
        client = sigv4_client(fake_sleep)
    api.post(URL).respond(200, json=converse(json.dumps(verdict({"faithful": True}, "cites it"))))
    judge = RubricJudge(client, criteria=CRITERIA, scale="pass_fail")
    judgment = await judge.ajudge(QUESTION, ANSWER)
    assert isinstance(judgment, Judgment)
    assert judgment.score == 1.0 and judgment.criteria == {"faithful": 1.0}
    assert judgment.usage.output_tokens == 60


async def test_rubric_judge_guardrail_is_a_refusal(api: respx.MockRouter) -> None:
    client = BedrockClient(MODEL, region="us-east-1", api_key="k")
    api.post(URL).respond(
        200,
        json=converse("Sorry, the model cannot answer this question.", stop="guardrail_intervened"),
    )
    judge = RubricJudge(client, criteria=CRITERIA, scale="pass_fail", on_error="raise")
    with pytest.raises(RefusalError, match="content_filter"):
        await judge.ajudge(QUESTION, ANSWER)


def test_botocore_is_not_imported_by_rftjudge() -> None:
    """botocore is optional (the `aws` extra): importing rftjudge or building a keyed client must not
    load it."""
    import subprocess

    code = (
        "import sys, rftjudge; rftjudge.BedrockClient('m', region='us-east-1', api_key='k'); "
        "print('botocore' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("model", ["", "   ", None])
def test_bad_model_is_a_configuration_error(model: Any) -> None:
    with pytest.raises(ConfigurationError, match="model"):
        BedrockClient(model, region="us-east-1", api_key="k")
