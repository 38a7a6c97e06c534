"""score_model and label_model on a FunctionClient: requests, OpenAI's reading of the answer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rftjudge import ChatRequest, ChatResponse, ConfigurationError, FunctionClient, Usage
from rftjudge.graders import load_openai_grader

SCORE = {
    "type": "score_model",
    "name": "quality",
    "model": "gpt-4.1",
    "input": [
        {"role": "developer", "content": "Score the answer to {{ item.question }} from 1 to 7."},
        {"role": "user", "content": [{"type": "input_text", "text": "{{ sample.output_text }}"}]},
    ],
    "range": [1, 7],
    "pass_threshold": 5,
    "sampling_params": {"temperature": 0.2, "seed": 3, "top_p": 0.9, "max_completions_tokens": 99},
}
LABEL = {
    "type": "label_model",
    "name": "sentiment",
    "model": "o3-mini",
    "input": [{"role": "user", "content": "Label: {{ sample.output_text }}"}],
    "labels": ["positive", "neutral", "negative"],
    "passing_labels": ["positive", "neutral"],
}


def _answer(result: Any) -> FunctionClient:
    body = json.dumps({"steps": [{"description": "d", "conclusion": "fine"}], "result": result})
    return FunctionClient(
        lambda r: ChatResponse(
            text=body,
            finish_reason="stop",
            usage=Usage(input_tokens=10, output_tokens=5, requests=1),
        )
    )


def test_score_model_request_and_score() -> None:
    client = _answer(6)
    grader = load_openai_grader(SCORE, models={"gpt-4.1": client})
    result = grader.run("Because of gravity.", {"question": "why do apples fall"})
    assert result["reward"] == 6.0  # the model's number, in the config's range, not rescaled
    request: ChatRequest = client.calls[0]
    assert [m.role for m in request.messages] == ["system", "user"]  # developer -> system
    assert request.messages[0].content == "Score the answer to why do apples fall from 1 to 7."
    assert request.messages[1].content == "Because of gravity."
    assert request.output_schema is not None
    assert request.output_schema["required"] == ["steps", "result"]
    assert (request.temperature, request.seed, request.max_tokens) == (0.2, 3, 99)
    assert request.extra_body == {"top_p": 0.9}
    assert result["model_grader_token_usage_per_model"] == {
        "gpt-4.1": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    }
    assert grader.judge("", "x", {"question": "q"}).passed is True  # 6 >= pass_threshold 5


@pytest.mark.parametrize(("given", "expected"), [(12, 7.0), (-3, 1.0), ("4.5", 4.5)])
def test_score_outside_range_is_clipped(given: Any, expected: float) -> None:
    grader = load_openai_grader(SCORE, models=_answer(given))
    assert grader.reward("", "x", {"question": "q"}) == expected


def test_non_numeric_score_is_zero_with_parse_error_by_default() -> None:
    grader = load_openai_grader(SCORE, models=_answer("excellent"))
    result = grader.run("x", {"question": "q"})
    assert result["reward"] == 0.0
    assert result["metadata"]["errors"]["model_grader_parse_error"] is True
    assert grader.reward("", "x", {"question": "q"}) == 0.0
    assert grader.stats.failures["model_grader_parse_error"] >= 1


def test_abstain_gives_none_for_training() -> None:
    grader = load_openai_grader(SCORE, models=_answer("excellent"), on_error="abstain")
    assert grader.reward("", "x", {"question": "q"}) is None
    assert grader.stats.failures["model_grader_parse_error"] == 1


def test_refusal_and_server_errors_are_flagged() -> None:
    refusing = FunctionClient(
        lambda r: ChatResponse(text="", refusal="no", finish_reason="refusal")
    )
    result = load_openai_grader(SCORE, models=refusing).run("x", {"question": "q"})
    assert result["metadata"]["errors"]["model_grader_refusal_error"] is True

    from rftjudge import ServerError

    def fail(request: ChatRequest) -> str:
        raise ServerError("overloaded", status_code=529)

    result = load_openai_grader(SCORE, models=FunctionClient(fail)).run("x", {"question": "q"})
    errors = result["metadata"]["errors"]
    assert errors["model_grader_server_error"] is True
    assert "overloaded" in errors["model_grader_server_error_details"]


@pytest.mark.parametrize(
    ("label", "expected", "flag"),
    [
        ("positive", 1.0, None),
        ("neutral", 1.0, None),
        ("negative", 0.0, None),
        ("meh", 0.0, "model_grader_parse_error"),
    ],
)
def test_label_model(label: str, expected: float, flag: str | None) -> None:
    client = _answer(label)
    result = load_openai_grader(LABEL, models={"*": client}).run("I love it", {})
    assert result["reward"] == expected
    assert result["metadata"]["errors"].get(flag or "other_error") is (flag is not None)
    schema = client.calls[0].output_schema
    assert schema is not None and schema["properties"]["result"]["enum"] == LABEL["labels"]


def test_model_mapping_errors_at_load() -> None:
    with pytest.raises(ConfigurationError, match=r"gpt-4\.1"):
        load_openai_grader(SCORE)
    with pytest.raises(ConfigurationError, match=r"no client for grader model 'gpt-4\.1'"):
        load_openai_grader(SCORE, models={"o3": _answer(1)})


def test_images_are_rejected_at_load() -> None:
    config = {
        **SCORE,
        "input": [
            {"role": "user", "content": [{"type": "input_image", "image_url": "{{ item.url }}"}]}
        ],
    }
    with pytest.raises(ConfigurationError, match="input_image"):
        load_openai_grader(config, models=_answer(1))


def _lp_answer(pieces: list[tuple[str, dict[str, float] | None]]) -> FunctionClient:
    import math

    from rftjudge import TokenLogprob
    from rftjudge.clients import Capabilities

    tokens = []
    for text, alternatives in pieces:
        if alternatives is None:
            tokens.append(TokenLogprob(text, 0.0))
        else:
            top = tuple((t, math.log(p)) for t, p in alternatives.items())
            tokens.append(TokenLogprob(text, dict(top)[text], top))
    response = ChatResponse(
        text="".join(t.token for t in tokens), finish_reason="stop", logprobs=tuple(tokens)
    )
    return FunctionClient(
        lambda r: response, capabilities=Capabilities(logprobs=True, max_top_logprobs=20)
    )


def test_distribution_is_opt_in_and_reads_the_expected_score() -> None:
    config = {**SCORE, "range": [1, 5]}
    client = _lp_answer(
        [('{"steps": [], "result": ', None), ("4", {"4": 0.5, "2": 0.5}), ("}", None)]
    )
    assert load_openai_grader(config, models=client).reward("", "x", {"question": "q"}) == 4.0
    expected = load_openai_grader(config, models=client, distribution=True)
    assert expected.reward("", "x", {"question": "q"}) == pytest.approx(3.0)
    assert client.calls[-1].logprobs is True
    assert expected.distribution_fallbacks == 0


def test_distribution_gives_the_passing_probability_of_labels() -> None:
    client = _lp_answer(
        [
            ('{"steps": [], "result": "', None),
            ("negative", {"negative": 0.6, "positive": 0.3, "neutral": 0.1}),
            ('"}', None),
        ]
    )
    grader = load_openai_grader(LABEL, models=client, distribution=True)
    assert grader.reward("", "x", {}) == pytest.approx(0.4)


def test_distribution_needs_a_logprobs_client_and_integer_range() -> None:
    with pytest.raises(ConfigurationError, match="logprobs"):
        load_openai_grader(SCORE, models=_answer(1), distribution=True)
    client = _lp_answer([("{}", None)])
    with pytest.raises(ConfigurationError, match="integer ends"):
        load_openai_grader({**SCORE, "range": [0, 1.5]}, models=client, distribution=True)


def test_non_finite_score_is_a_parse_error() -> None:
    client = FunctionClient(lambda r: '{"steps": [], "result": NaN}')
    result = load_openai_grader(SCORE, models=client).run("x", {"question": "q"})
    assert result["reward"] == 0.0
    assert result["metadata"]["errors"]["model_grader_parse_error"] is True


def test_authentication_errors_concern_the_run_not_the_sample() -> None:
    from rftjudge import AuthenticationError

    def fail(request: ChatRequest) -> str:
        raise AuthenticationError("bad key", status_code=401)

    grader = load_openai_grader(SCORE, models=FunctionClient(fail), on_error="abstain")
    with pytest.raises(AuthenticationError):
        grader.run("x", {"question": "q"})
    assert grader.reward("", "x", {"question": "q"}) is None  # a reward never crashes training
    assert grader.stats.failures["authentication"] == 1
