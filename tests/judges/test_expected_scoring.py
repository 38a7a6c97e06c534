"""Probability-weighted criterion scores from crafted logprob payloads."""

from __future__ import annotations

import json
import math
from typing import Any, cast

import pytest
import respx

from rftjudge import (
    ChatResponse,
    ConfigurationError,
    Criterion,
    FunctionClient,
    OpenAIClient,
    RubricJudge,
    TokenLogprob,
)
from rftjudge.clients import Capabilities
from rftjudge.parsing import score_distribution

from support.payloads import BASE, CHAT, completion

CRITERIA = [
    Criterion(name="quality", description="good?"),
    Criterion(name="tone", description="kind?"),
]
LP = Capabilities(structured_output=True, logprobs=True, max_top_logprobs=20)


def tokens_for(pieces: list[tuple[str, dict[str, float] | None]]) -> tuple[TokenLogprob, ...]:
    """Tokens from (text, {alternative: probability}) pieces; None = a certain token."""
    out = []
    for text, alts in pieces:
        if alts is None:
            out.append(TokenLogprob(text, 0.0))
        else:
            top = tuple((t, math.log(p)) for t, p in alts.items())
            out.append(TokenLogprob(text, dict(top).get(text, math.log(1e-9)), top))
    return tuple(out)


def lp_response(pieces: list[tuple[str, dict[str, float] | None]]) -> ChatResponse:
    tokens = tokens_for(pieces)
    return ChatResponse(
        text="".join(t.token for t in tokens), finish_reason="stop", logprobs=tokens
    )


def judge_with(response: ChatResponse, **kwargs: Any) -> RubricJudge:
    client = FunctionClient(lambda r: response, capabilities=LP)
    return RubricJudge(client, criteria=CRITERIA, scale=(1, 5), **kwargs)


def test_expected_value_with_forbidden_tokens_renormalised() -> None:
    response = lp_response(
        [
            ('{"rationale": "fine", "scores": {"quality": ', None),
            ("4", {"4": 0.5, "5": 0.25, "3": 0.05, "9": 0.15, "x": 0.05}),  # 9 and x are off-scale
            (', "tone": ', None),
            ("2", {"2": 0.6, "1": 0.4}),
            ("}}", None),
        ]
    )
    judge = judge_with(response)
    assert judge.scoring == "expected"
    result = judge.judge("q", "a")
    q = (4 * 0.5 + 5 * 0.25 + 3 * 0.05) / 0.8
    assert result.expected == pytest.approx({"quality": q, "tone": 1.6})
    # criteria: the weighted values the score is made of; criteria_sampled: what was written
    assert result.criteria == pytest.approx({"quality": q, "tone": 1.6})
    assert result.criteria_sampled == {"quality": 4, "tone": 2}
    assert result.normalized["quality"] == pytest.approx((q - 1) / 4)
    weighted = (result.normalized["quality"] + result.normalized["tone"]) / 2
    assert result.score == pytest.approx(weighted)
    assert result.scoring == "expected"
    assert judge.stats.expected_fallbacks == 0


def test_score_not_first_and_leading_space_tokens() -> None:
    response = lp_response(
        [
            ('{"rationale": "the \\"quality\\": 1 claim is wrong", "scores": {"quality":', None),
            (" 5", {" 5": 0.9, " 4": 0.1}),
            (', "tone":', None),
            (" 3", {" 3": 1.0}),
            ("}}", None),
        ]
    )
    result = judge_with(response).judge("q", "a")
    assert result.expected == pytest.approx({"quality": 4.9, "tone": 3.0})


def test_multi_token_numbers_on_a_ten_point_scale() -> None:
    client_response = lp_response(
        [
            ('{"rationale": "r", "scores": {"quality": ', None),
            ("1", {"1": 0.6, "9": 0.4}),  # "1" may start 1 or 10
            ("0", {"0": 0.75, ",": 0.25}),  # 75 %: it continues to 10; 25 %: it was 1
            (', "tone": 7}}', None),
        ]
    )
    client = FunctionClient(lambda r: client_response, capabilities=LP)
    judge = RubricJudge(client, criteria=CRITERIA, scale=(0, 10))
    result = judge.judge("q", "a")
    expected_quality = 0.6 * (0.75 * 10 + 0.25 * 1) + 0.4 * 9
    assert result.expected is not None
    assert result.expected["quality"] == pytest.approx(expected_quality)
    assert result.criteria["quality"] == pytest.approx(expected_quality)
    assert result.criteria_sampled["quality"] == 10


def test_missing_logprobs_fall_back_to_sampled_and_are_counted() -> None:
    text = json.dumps({"rationale": "r", "scores": {"quality": 5, "tone": 1}})
    judge = judge_with(ChatResponse(text=text, finish_reason="stop"))
    result = judge.judge("q", "a")
    assert result.normalized == {"quality": 1.0, "tone": 0.0}
    assert result.scoring == "sampled"
    assert judge.stats.expected_fallbacks == 2
    assert judge.metrics_of([result])["sampled_fallback_rate"] == 1.0


def test_binary_expected_is_probability_of_true() -> None:
    response = lp_response(
        [
            ('{"rationale": "r", "scores": {"quality": ', None),
            ("true", {"true": 0.7, "false": 0.3}),
            (', "tone": ', None),
            ("false", {"false": 0.9, "true": 0.1}),
            ("}}", None),
        ]
    )
    client = FunctionClient(lambda r: response, capabilities=LP)
    result = RubricJudge(client, criteria=CRITERIA, scale="pass_fail").judge("q", "a")
    assert result.normalized == pytest.approx({"quality": 0.7, "tone": 0.1})
    assert result.score == pytest.approx(0.4)


def test_sampled_scoring_does_not_ask_for_logprobs() -> None:
    text = json.dumps({"rationale": "r", "scores": {"quality": 5, "tone": 1}})
    client = FunctionClient(lambda r: text, capabilities=LP)
    RubricJudge(client, criteria=CRITERIA, scoring="sampled").judge("q", "a")
    assert client.calls[0].logprobs is False


def test_auto_scoring_follows_capabilities() -> None:
    no_lp = FunctionClient(lambda r: "", capabilities=Capabilities(logprobs=False))
    assert RubricJudge(no_lp, criteria=CRITERIA).scoring == "sampled"
    assert RubricJudge(OpenAIClient("m", base_url=BASE), criteria=CRITERIA).scoring == "expected"
    no_lp_openai = OpenAIClient("o3", base_url=BASE, logprobs=False)
    assert RubricJudge(no_lp_openai, criteria=CRITERIA).scoring == "sampled"


async def test_expected_scoring_over_http(api: respx.MockRouter, client: OpenAIClient) -> None:
    prefix = '{"rationale": "r", "scores": {"quality": '
    content = [
        {"token": prefix, "logprob": 0.0, "top_logprobs": []},
        {
            "token": "3",
            "logprob": math.log(0.5),
            "top_logprobs": [
                {"token": "3", "logprob": math.log(0.5)},
                {"token": "4", "logprob": math.log(0.5)},
            ],
        },
        {"token": ', "tone": 5}}', "logprob": 0.0, "top_logprobs": []},
    ]
    text = prefix + '3, "tone": 5}}'
    route = api.post(CHAT).respond(200, json=completion(text, logprobs={"content": content}))
    result = await RubricJudge(client, criteria=CRITERIA).ajudge("q", "a")
    assert result.expected == pytest.approx({"quality": 3.5, "tone": 5.0})
    body = json.loads(route.calls[0].request.content)
    assert body["logprobs"] is True and body["top_logprobs"] == 10  # twice the 5 labels


@pytest.mark.parametrize(
    ("scale", "top"), [((1, 5), 10), ((1, 10), 20), ((0, 100), 20), ("pass_fail", 10), ((1, 3), 10)]
)
def test_alternatives_asked_for_follow_the_labels(scale: Any, top: int) -> None:
    """Twice the labels (at least 10, at most 20): the reply shrinks where a scale is short, and
    a score position's mass sits on its labels (the local judge: top-10 gave top-20's expected
    scores on a 1-5 scale, 32 of 32)."""
    judge = RubricJudge(
        FunctionClient(lambda r: "", capabilities=LP), criteria=CRITERIA, scale=scale
    )
    assert judge.top_logprobs == top
    chosen = RubricJudge(
        FunctionClient(lambda r: "", capabilities=LP), criteria=CRITERIA, top_logprobs=20
    )
    assert chosen.top_logprobs == 20


def test_samples_average_distinct_seeds() -> None:
    scores = iter([5, 3, 1])

    def handler(request: Any) -> str:
        s = next(scores)
        return json.dumps({"rationale": "r", "scores": {"quality": s, "tone": s}})

    client = FunctionClient(handler, capabilities=Capabilities(logprobs=False))
    judge = RubricJudge(client, criteria=CRITERIA, samples=3, temperature=0.7, seed=10)
    result = judge.judge("q", "a")
    assert result.samples == 3 and result.score == pytest.approx(0.5)
    assert result.criteria == pytest.approx({"quality": 3.0, "tone": 3.0})  # the mean of 5, 3, 1
    assert result.criteria_sampled["quality"] in {5, 3, 1}  # one sample's verdict
    assert sorted(cast("list[int]", [c.seed for c in client.calls])) == [10, 11, 12]


def test_samples_need_temperature() -> None:
    with pytest.raises(ConfigurationError, match="temperature"):
        RubricJudge(FunctionClient(lambda r: ""), criteria=CRITERIA, samples=3)
    with pytest.raises(ConfigurationError, match="scoring"):
        RubricJudge(FunctionClient(lambda r: ""), criteria=CRITERIA, scoring="mean")  # type: ignore[arg-type]


def test_score_distribution_ignores_non_finite_and_empty() -> None:
    tokens = tokens_for([("x", {"x": 1.0})])
    assert score_distribution(tokens, 0, {"1": 1.0}) is None


def test_ignore_length_reaches_the_prompt() -> None:
    client = FunctionClient(
        lambda r: json.dumps({"rationale": "", "scores": {"quality": 1, "tone": 1}})
    )
    RubricJudge(client, criteria=CRITERIA, ignore_length=True).judge("q", "a")
    assert "Length is not a merit" in client.calls[0].messages[0].content


def test_a_ten_written_after_a_prefilled_space_is_still_a_ten() -> None:
    """A read continuing the judge's tokens stops before its " 1" (the space is in the token) and
    is constrained to write "1" then "0": the alternative " 1" is that same "1", to be resolved
    with the next position — not the value 1."""
    valid = {str(v): float(v) for v in range(1, 11)}
    first = TokenLogprob(
        token="1",
        logprob=math.log(0.001),
        top=((" 1", math.log(0.9)), (" 9", math.log(0.09))),
    )
    second = TokenLogprob(token="0", logprob=math.log(0.95), top=(("0", math.log(0.95)),))
    dist = score_distribution([first, second], 0, valid)
    assert dist is not None
    assert dist[10.0] == pytest.approx((0.9 + 0.001) / 0.991, abs=1e-3)
    assert 1.0 not in dist or dist[1.0] < 0.01
