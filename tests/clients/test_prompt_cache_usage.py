"""Prompt tokens reused from the server's prefix cache reach Usage, ClientStats and log_metric."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from rftjudge import ChatRequest, Criterion, Message, OpenAIClient, RubricJudge
from rftjudge._sync import run_sync
from rftjudge.rewards import trl_reward_func

REQUEST = ChatRequest(messages=(Message("user", "u"),))


def _body(usage: dict[str, Any], timings: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "choices": [
            {
                "message": {"content": '{"rationale": "", "scores": {"q": 4}}'},
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }
    if timings is not None:
        body["timings"] = timings
    return body


@pytest.mark.parametrize(
    ("usage", "timings", "cached"),
    [
        ({"prompt_tokens": 500, "prompt_tokens_details": {"cached_tokens": 384}}, None, 384),
        ({"prompt_tokens": 578}, {"prompt_n": 111, "cache_n": 467, "predicted_n": 60}, 467),
        ({"prompt_tokens": 500}, None, 0),
    ],
)
def test_cached_prompt_tokens_are_read(
    usage: dict[str, Any], timings: dict[str, Any] | None, cached: int
) -> None:
    client = OpenAIClient("m", base_url="http://judge.test/v1")
    response = client.parse_response(_body(usage, timings), {})
    assert response.usage.cached_input_tokens == cached
    assert response.usage.input_tokens == usage["prompt_tokens"]


def test_client_stats_and_log_metric_report_them() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        usage = {"prompt_tokens": 500, "prompt_tokens_details": {"cached_tokens": 400}}
        return httpx.Response(200, json=_body(usage))

    client = OpenAIClient(
        "m", base_url="http://judge.test/v1", transport=httpx.MockTransport(answer)
    )
    judge = RubricJudge(client, [Criterion(name="q", description="good?")], scoring="sampled")
    logged: dict[str, float] = {}
    reward = trl_reward_func(judge, name="judge")
    run_sync(reward(["p", "p"], ["a", "b"], log_metric=logged.__setitem__))
    assert client.stats.cached_input_tokens == 800 and client.stats.input_tokens == 1000
    assert client.stats.snapshot()["cached_input_tokens"] == 800
    assert logged["judge/cached_input_tokens"] == 800
    client.close()
