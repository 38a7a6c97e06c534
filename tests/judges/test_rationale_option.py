"""Where the rationale goes (before / after / none) and its bound in the verdict schema."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rftjudge import (
    ChatRequest,
    ConfigurationError,
    Criterion,
    FunctionClient,
    Message,
    OpenAIClient,
    RubricJudge,
)
from rftjudge.clients._schema import anthropic_schema, gemini_schema, openai_schema

CRITERIA = [Criterion(name="quality", description="Is it good?")]


def _judge(**options: Any) -> tuple[RubricJudge, list[ChatRequest]]:
    seen: list[ChatRequest] = []

    def handler(request: ChatRequest) -> str:
        seen.append(request)
        order = list(request.output_schema["properties"])  # type: ignore[index]
        verdict = {"scores": {"quality": 4}, "rationale": "fine"}
        return json.dumps({k: verdict[k] for k in order})

    return RubricJudge(FunctionClient(handler), CRITERIA, **options), seen


@pytest.mark.parametrize(
    ("where", "order", "instruction"),
    [
        ("before", ["rationale", "scores"], 'Think briefly in "rationale" first'),
        ("after", ["scores", "rationale"], 'then explain them briefly in "rationale"'),
        ("none", ["scores"], "Give one score per criterion, nothing else."),
    ],
)
def test_the_schema_order_and_the_prompt_follow_the_option(
    where: str, order: list[str], instruction: str
) -> None:
    judge, seen = _judge(rationale=where)
    judgment = judge.judge("p", "an answer")
    schema = seen[0].output_schema
    assert schema is not None
    assert list(schema["properties"]) == order and schema["required"] == order
    assert instruction in seen[0].messages[0].content
    assert judgment.criteria_sampled == {"quality": 4}
    assert judgment.rationale == ("" if where == "none" else "fine")


def test_the_rationale_is_bounded_and_the_bound_is_optional() -> None:
    judge, _ = _judge()
    assert judge.rationale == "before"
    assert judge.output_schema["properties"]["rationale"]["maxLength"] == 800
    unbounded, _ = _judge(rationale_max_chars=None)
    assert "maxLength" not in unbounded.output_schema["properties"]["rationale"]


def test_a_longer_rationale_than_the_bound_is_still_a_valid_verdict() -> None:
    # Servers that do not enforce maxLength may write more: no re-ask for that.
    judge = RubricJudge(
        FunctionClient(lambda r: json.dumps({"rationale": "x" * 50, "scores": {"quality": 5}})),
        CRITERIA,
        rationale_max_chars=10,
    )
    judgment = judge.judge("p", "an answer")
    assert judgment.reasks == 0 and judgment.score == 1.0


@pytest.mark.parametrize(
    ("options", "message"),
    [({"rationale": "first"}, "rationale must be"), ({"rationale_max_chars": 0}, "positive int")],
)
def test_bad_values_fail_at_construction(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RubricJudge(FunctionClient(lambda r: ""), CRITERIA, **options)


def test_each_dialect_strips_or_keeps_the_length_bound() -> None:
    schema = RubricJudge(FunctionClient(lambda r: ""), CRITERIA).output_schema
    text = openai_schema(schema)["properties"]["rationale"]
    assert "maxLength" not in text and "maxLength: 800" in text["description"]
    assert "maxLength" not in anthropic_schema(schema)["properties"]["rationale"]
    assert "maxLength" not in gemini_schema(schema)["properties"]["rationale"]


def test_openai_itself_gets_no_max_length_but_local_servers_do() -> None:
    schema = RubricJudge(FunctionClient(lambda r: ""), CRITERIA).output_schema
    request = ChatRequest(messages=(Message("user", "u"),), output_schema=schema)

    def sent(client: OpenAIClient) -> dict[str, Any]:
        body = client.build_request(request)[2]
        return body["response_format"]["json_schema"]["schema"]["properties"]["rationale"]  # type: ignore[no-any-return]

    assert "maxLength" not in sent(OpenAIClient("gpt-4.1-mini", api_key="sk-test"))
    assert sent(OpenAIClient("m", base_url="http://localhost:8080/v1"))["maxLength"] == 800
    assert schema["properties"]["rationale"]["maxLength"] == 800  # the judge's own is untouched
