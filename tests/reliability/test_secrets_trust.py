"""Issue 17 item 7: secrets and trust.

An API key passed by position is held like one passed by keyword (a ``SecretStr``: never in
``vars()`` nor the recipe); a Redis password in the URL's query never reaches a repr, an error or a
log; ``api_key_env`` may name only a variable that looks like an API key (the key is sent to the
config's ``base_url``).
"""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from typing import Any

import pytest

from rftjudge import (
    AnthropicClient,
    AzureOpenAIClient,
    ConfigurationError,
    GeminiClient,
    OpenAIClient,
    RateLimits,
    TransportError,
)
from rftjudge._key_variables import key_variable_problem
from rftjudge._limits import ConcurrencyLimiter
from rftjudge._rebuild import recipe
from rftjudge.app.config import build_client, load_config, parse_config

KEY = "sk-positional-0123456789"


@pytest.mark.parametrize(
    "make",
    [
        lambda: OpenAIClient("m", base_url="http://judge.test/v1", api_key=KEY),
        lambda: AzureOpenAIClient(
            "m", endpoint="https://x.openai.azure.com", api_key=KEY, api_version="2024-10-21"
        ),
        lambda: GeminiClient("m", api_key=KEY),
        lambda: AnthropicClient("m", api_key=KEY),
    ],
    ids=["openai", "azure", "gemini", "anthropic"],
)
def test_a_positional_api_key_is_held_as_a_secret(make: Any) -> None:
    client = make()
    assert KEY not in repr(vars(client))
    assert KEY not in json.dumps(recipe(client))
    assert KEY not in repr(client)
    copy = pickle.loads(pickle.dumps(client))  # still rebuilt with the key itself
    assert copy.secrets() == client.secrets() == (KEY,)
    assert recipe(copy) == recipe(client)


URL = "redis://127.0.0.1:1/0?password=Qu3ryS3cret&db=0"


def test_a_query_password_never_reaches_a_repr_an_error_or_a_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis = pytest.importorskip("redis")
    from rftjudge.clients._redis_limits import RedisRateLimiter, redact_url

    assert redact_url(URL) == "redis://127.0.0.1:1/0?password=***&db=0"
    limits = RateLimits(backend=URL, key="k", max_in_flight=1)
    limiter = RedisRateLimiter(limits, ConcurrencyLimiter(1))
    assert "Qu3ryS3cret" not in repr(limits) + repr(limiter) + str(limiter.backend)

    async def failing() -> None:
        raise redis.AuthenticationError(f"invalid password Qu3ryS3cret for {URL}")

    import asyncio

    with caplog.at_level(logging.DEBUG, logger="rftjudge"):
        with pytest.raises(TransportError) as info:
            asyncio.run(limiter._call(failing()))
        logging.getLogger("rftjudge").warning("rftjudge: %s", info.value)
    assert "Qu3ryS3cret" not in str(info.value)
    assert "password=***" in str(info.value)
    assert "Qu3ryS3cret" not in caplog.text


def test_a_config_with_a_query_password_keeps_it_out_of_its_repr() -> None:
    config = parse_config(
        {
            "provider": "openai",
            "model": "m",
            "criteria": [{"name": "c", "description": "d"}],
            "limits": {"backend": URL, "key": "k"},
        }
    )
    assert "Qu3ryS3cret" not in repr(config)


def _config(tmp_path: Path, variable: str, provider: str = "openai") -> Path:
    path = tmp_path / "judge.yaml"
    path.write_text(
        f"provider: {provider}\nmodel: m\nbase_url: http://judge.test/v1\n"
        f"api_key_env: {variable}\ncriteria: [{{name: c, description: d}}]\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    "variable",
    [
        "AWS_SECRET_ACCESS_KEY",
        "DATABASE_PASSWORD",
        "HOME",
        "PATH",
        "SSH_PRIVATE_KEY",
        "AWS_SESSION_TOKEN",
        "CLIENT_SECRET",
        "MY-KEY",
    ],
)
def test_api_key_env_must_name_a_key_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "not-an-api-key")
    with pytest.raises(ConfigurationError, match="field `api_key_env`") as info:
        load_config(_config(tmp_path, variable))
    assert "ending in _KEY or _TOKEN" in str(info.value) and "\n" not in str(info.value)


def test_api_key_env_checked_again_for_a_config_built_in_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rftjudge.app.config import JudgeConfig

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI")
    config = JudgeConfig(
        provider="openai",
        model="m",
        base_url="http://judge.test/v1",
        api_key_env="AWS_SECRET_ACCESS_KEY",
        criteria=({"name": "c", "description": "d"},),  # type: ignore[arg-type]
    )
    with pytest.raises(ConfigurationError, match="credential of another kind"):
        build_client(config)


@pytest.mark.parametrize(
    ("variable", "provider"),
    [
        ("OPENAI_API_KEY", "openai"),
        ("MY_JUDGE_KEY", "openai"),
        ("HF_TOKEN", "openai"),
        ("API_KEY", None),
        ("AWS_BEARER_TOKEN_BEDROCK", "bedrock"),
    ],
)
def test_ordinary_key_variables_are_allowed(variable: str, provider: str | None) -> None:
    assert key_variable_problem(variable, provider) is None


def test_aws_variables_only_for_bedrock() -> None:
    assert "only provider bedrock" in str(key_variable_problem("AWS_BEDROCK_KEY", "openai"))
    assert key_variable_problem("AWS_BEDROCK_KEY", "bedrock") is None
    assert key_variable_problem("AWS_BEARER_TOKEN_BEDROCK", "openai") is not None
