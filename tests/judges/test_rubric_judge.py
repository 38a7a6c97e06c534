from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import respx

from rftjudge import (
    ConfigurationError,
    Criterion,
    Judgment,
    OpenAIClient,
    ParseError,
    RefusalError,
    RetryPolicy,
    RubricJudge,
    TruncatedError,
)

from support.payloads import BASE, CHAT, completion, verdict

CRITERIA = [
    Criterion(name="correctness", description="Is the answer factually right?", weight=2.0),
    Criterion(name="tone", description="Is it polite and concise?"),
]


@pytest.fixture
def judge(client: OpenAIClient) -> RubricJudge:
    return RubricJudge(client, criteria=CRITERIA, scale=(1, 5))


def reply(scores: dict[str, Any], rationale: str = "ok") -> httpx.Response:
    return httpx.Response(200, json=completion(verdict(scores, rationale)))


# -- construction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"criteria": []}, "non-empty"),
        ({"criteria": [CRITERIA[0], CRITERIA[0]]}, "duplicate"),
        ({"scale": (5, 1)}, "low < high"),
        ({"scale": "stars"}, "scale"),
        ({"on_error": 2.0}, "on_error"),
        ({"on_error": "ignore"}, "on_error"),
        ({"template": "{{ prompt }} {{ no_such_variable }}"}, "no_such_variable"),
        ({"template": "{% if %}"}, "syntax"),
        ({"template": "missing-file.j2"}, "not found"),
    ],
)
def test_bad_configuration_fails_at_construction(client: OpenAIClient, kwargs: dict[str, Any], match: str) -> None:
    args = {"criteria": CRITERIA, **kwargs}
    with pytest.raises(ConfigurationError, match=match):
        RubricJudge(client, **args)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "has space", "description": "d"}, "criterion name"),
        ({"name": "ok", "description": "  "}, "description"),
        ({"name": "ok", "description": "d", "weight": 0}, "weight"),
        ({"name": "ok", "description": "d", "weight": float("nan")}, "weight"),
    ],
)
def test_bad_criteria_name_the_problem(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Criterion(**kwargs)


def test_schema_is_built_once_and_bounded(judge: RubricJudge) -> None:
    schema = judge.output_schema
    scores = schema["properties"]["scores"]
    assert scores["required"] == ["correctness", "tone"]
    assert scores["properties"]["tone"] == {"type": "integer", "enum": [1, 2, 3, 4, 5]}
    assert scores["additionalProperties"] is False


# -- scoring -----------------------------------------------------------------------------------


async def test_weighted_normalised_score(api: respx.MockRouter, judge: RubricJudge) -> None:
    route = api.post(CHAT).mock(return_value=reply({"correctness": 5, "tone": 2}, "fine"))
    result = await judge.ajudge("What is 2+2?", "4", reference="4")
    assert isinstance(result, Judgment)
    # correctness 5 -> 1.0 (weight 2), tone 2 -> 0.25 (weight 1) => (2*1 + 0.25) / 3
    assert result.score == pytest.approx(0.75)
    assert result.criteria == {"correctness": 5, "tone": 2}
    assert result.normalized == {"correctness": 1.0, "tone": 0.25}
    assert result.rationale == "fine"
    assert result.usage.input_tokens == 50 and result.usage.requests == 1
    sent = json.loads(route.calls[0].request.content)
    user = sent["messages"][-1]["content"]
    assert "What is 2+2?" in user and "REFERENCE" in user
    assert sent["response_format"]["json_schema"]["schema"] == judge.output_schema


async def test_no_reference_section_without_reference(api: respx.MockRouter, judge: RubricJudge) -> None:
    route = api.post(CHAT).mock(return_value=reply({"correctness": 3, "tone": 3}))
    await judge.ajudge("q", "a")
    assert "REFERENCE" not in json.loads(route.calls[0].request.content)["messages"][-1]["content"]


async def test_binary_scale(api: respx.MockRouter, client: OpenAIClient) -> None:
    judge = RubricJudge(client, criteria=CRITERIA, scale="pass_fail")
    assert judge.output_schema["properties"]["scores"]["properties"]["tone"] == {"type": "boolean"}
    api.post(CHAT).mock(return_value=reply({"correctness": True, "tone": False}))
    result = await judge.ajudge("q", "a")
    assert result.criteria == {"correctness": 1.0, "tone": 0.0}
    assert result.score == pytest.approx(2 / 3)


def test_sync_reward_in_plain_code(api: respx.MockRouter, judge: RubricJudge) -> None:
    api.post(CHAT).mock(return_value=reply({"correctness": 1, "tone": 1}))
    assert judge.reward("q", "a") == 0.0


async def test_sync_reward_inside_running_loop(api: respx.MockRouter, judge: RubricJudge) -> None:
    """Jupyter / TRL's loop thread: the sync API is called while a loop runs in this thread."""
    api.post(CHAT).mock(return_value=reply({"correctness": 5, "tone": 5}))
    assert asyncio.get_running_loop().is_running()
    assert judge.reward("q", "a") == 1.0
    assert judge.judge("q", "a").score == 1.0
    assert judge.reward_batch(["q", "q2"], ["a", "b"]) == [1.0, 1.0]


# -- parsing, re-ask, failures -----------------------------------------------------------------


async def test_prose_and_fenced_json_are_parsed(api: respx.MockRouter, client: OpenAIClient) -> None:
    judge = RubricJudge(
        OpenAIClient("m", base_url=BASE, structured_output="none"), criteria=CRITERIA
    )
    text = (
        'Draft: {"rationale": "x", "scores": {"correctness": 1, "tone": 1}}\n'
        'Final:\n```json\n{"rationale": "final", "scores": {"correctness": 5, "tone": 3}}\n```'
    )
    route = api.post(CHAT).respond(200, json=completion(text))
    result = await judge.ajudge("q", "a")
    assert result.rationale == "final" and result.criteria == {"correctness": 5, "tone": 3}
    assert "response_format" not in json.loads(route.calls[0].request.content)


async def test_reask_with_validation_error_then_success(api: respx.MockRouter, judge: RubricJudge) -> None:
    route = api.post(CHAT)
    route.side_effect = [reply({"correctness": 9, "tone": 3}), reply({"correctness": 4, "tone": 3})]
    result = await judge.ajudge("q", "a")
    assert result.criteria["correctness"] == 4 and result.reasks == 1
    assert result.usage.requests == 2
    second = json.loads(route.calls[1].request.content)["messages"]
    assert second[-2]["role"] == "assistant"
    assert "scores.correctness" in second[-1]["content"]


async def test_reasks_are_bounded(api: respx.MockRouter, judge: RubricJudge) -> None:
    route = api.post(CHAT).mock(return_value=reply({"correctness": 9}))
    with pytest.raises(ParseError, match="2 request"):
        await judge.ajudge("q", "a")
    assert route.call_count == 2  # 1 + max_reasks=1
    assert judge.stats.usage.requests == 2


async def test_refusal_and_truncation_are_typed(api: respx.MockRouter, judge: RubricJudge) -> None:
    api.post(CHAT).respond(
        200, json=completion("", message={"content": None, "refusal": "I can't"})
    )
    with pytest.raises(RefusalError):
        await judge.ajudge("q", "a")
    api.post(CHAT).respond(200, json=completion('{"rationale": "lo', finish_reason="length"))
    with pytest.raises(TruncatedError, match="max_tokens"):
        await judge.ajudge("q", "a")


@pytest.mark.parametrize(("on_error", "expected"), [("abstain", None), (0.5, 0.5), (0.0, 0.0)])
async def test_on_error_policies(api: respx.MockRouter, client: OpenAIClient, on_error: Any, expected: Any) -> None:
    judge = RubricJudge(client, criteria=CRITERIA, on_error=on_error)
    api.post(CHAT).respond(400, json={"error": {"message": "bad"}})
    assert await judge.areward("q", "a") == expected
    assert judge.stats.failures["bad_request"] == 1


async def test_on_error_raise(api: respx.MockRouter, client: OpenAIClient) -> None:
    judge = RubricJudge(client, criteria=CRITERIA, on_error="raise")
    api.post(CHAT).respond(400, json={"error": {"message": "bad"}})
    with pytest.raises(Exception, match="HTTP 400"):
        await judge.areward("q", "a")
    with pytest.raises(Exception, match="HTTP 400"):
        await judge.areward_batch(["q"], ["a"])


# -- batches -----------------------------------------------------------------------------------


async def test_batch_keeps_order_and_isolates_failures(api: respx.MockRouter, judge: RubricJudge) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        user = json.loads(request.content)["messages"][-1]["content"]
        if "answer-2" in user:
            return httpx.Response(400, json={"error": {"message": "bad"}})
        score = int(user.split("answer-")[1][0]) + 1
        return reply({"correctness": score, "tone": score})

    api.post(CHAT).mock(side_effect=respond)
    rewards = await judge.areward_batch(["q"] * 4, [f"answer-{i}" for i in range(4)])
    assert rewards == [0.0, 0.25, None, 0.75]


async def test_batch_identical_items_are_judged_once(api: respx.MockRouter, judge: RubricJudge) -> None:
    route = api.post(CHAT).mock(return_value=reply({"correctness": 3, "tone": 3}))
    rewards = await judge.areward_batch(["q"] * 5, ["same", "same", "other", "same", "other"])
    assert rewards == [0.5] * 5
    assert route.call_count == 2


async def test_batch_concurrency_is_bounded_by_client(api: respx.MockRouter, fake_sleep: Any) -> None:
    client = OpenAIClient(
        "m", base_url=BASE, max_concurrency=3, retry_policy=RetryPolicy(sleep=fake_sleep)
    )
    judge = RubricJudge(client, criteria=CRITERIA)
    state = {"now": 0, "peak": 0}

    async def respond(request: httpx.Request) -> httpx.Response:
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(0.01)
        state["now"] -= 1
        return reply({"correctness": 5, "tone": 5})

    api.post(CHAT).mock(side_effect=respond)
    rewards = await judge.areward_batch(["q"] * 12, [f"a{i}" for i in range(12)])
    assert rewards == [1.0] * 12
    assert state["peak"] == 3


def test_mismatched_lengths_are_clear(judge: RubricJudge) -> None:
    with pytest.raises(ConfigurationError, match="differ in length"):
        judge.reward_batch(["q", "q"], ["a"])
    with pytest.raises(ConfigurationError, match="references"):
        judge.reward_batch(["q"], ["a"], references=["r", "s"])
    with pytest.raises(ConfigurationError, match="must be a list"):
        judge.reward_batch("q", "a")
