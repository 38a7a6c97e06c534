from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from rftjudge import (
    ChatRequest,
    ChatResponse,
    ConfigurationError,
    Criterion,
    FunctionClient,
    OpenAIClient,
    Preference,
    PreferenceJudge,
    TokenLogprob,
)
from rftjudge._content import content_text
from rftjudge.judges._schedules import all_pairs, circular_pairs

from support.payloads import CHAT, completion


def shown(request: ChatRequest) -> tuple[str, str]:
    """The texts shown as A and B in a rendered preference prompt."""
    user = content_text(request.messages[-1].content)
    a = re.search(r"<<<RESPONSE_A \w+>>>\n(.*?)\n<<<END RESPONSE_A", user, re.DOTALL)
    b = re.search(r"<<<RESPONSE_B \w+>>>\n(.*?)\n<<<END RESPONSE_B", user, re.DOTALL)
    assert a and b
    return a.group(1), b.group(1)


def answer(winner: str) -> str:
    return json.dumps({"rationale": f"picked {winner}", "winner": winner})


def by_quality(quality: dict[str, int], *, first_bias: bool = False) -> Callable[[ChatRequest], str]:
    """A deterministic fake judge: the higher-quality text wins; optionally always picks A."""

    def handler(request: ChatRequest) -> str:
        a, b = shown(request)
        if first_bias:
            return answer("A")
        if quality[a] == quality[b]:
            return answer("tie")
        return answer("A" if quality[a] > quality[b] else "B")

    return handler


# -- reconciliation ----------------------------------------------------------------------------


def test_agreeing_orders_give_the_winner() -> None:
    client = FunctionClient(by_quality({"good": 5, "bad": 1}))
    pj = PreferenceJudge(client)
    result = pj.compare("q", "good", "bad")
    assert isinstance(result, Preference)
    assert result.winner == "A" and result.prob_a == 1.0 and result.consistent is True
    assert result.orders == ("A", "A")
    assert len(client.calls) == 2  # both orders
    assert {shown(c) for c in client.calls} == {("good", "bad"), ("bad", "good")}
    assert pj.compare("q", "bad", "good").winner == "B"


def test_disagreeing_orders_give_a_tie_and_count_as_inconsistent() -> None:
    client = FunctionClient(by_quality({}, first_bias=True))
    pj = PreferenceJudge(client)
    result = pj.compare("q", "x", "y")
    assert result.winner == "tie" and result.prob_a == 0.5 and result.consistent is False
    assert pj.inconsistency_rate == 1.0


def test_both_orders_tie() -> None:
    pj = PreferenceJudge(FunctionClient(by_quality({"x": 3, "y": 3})))
    result = pj.compare("q", "x", "y")
    assert result.winner == "tie" and result.consistent is True and result.prob_a == 0.5


def test_no_swap_is_one_request() -> None:
    client = FunctionClient(by_quality({}, first_bias=True))
    pj = PreferenceJudge(client, swap=False)
    result = pj.compare("q", "x", "y")
    assert result.winner == "A" and result.consistent is None and len(client.calls) == 1


def test_disallowing_ties_restricts_the_schema() -> None:
    pj = PreferenceJudge(FunctionClient(lambda r: answer("tie")), allow_ties=False, max_reasks=0)
    assert pj.output_schema["properties"]["winner"]["enum"] == ["A", "B"]
    assert pj.reward("q", "x", "y") is None  # "tie" does not validate: abstain
    assert pj.stats.failures["parse"] == 1


def test_criteria_reach_the_prompt() -> None:
    client = FunctionClient(lambda r: answer("A"))
    pj = PreferenceJudge(client, criteria=[Criterion(name="tone", description="Is it kind?")])
    pj.compare("q", "x", "y")
    assert "tone: Is it kind?" in client.calls[0].messages[-1].content


# -- logprob-derived probabilities ---------------------------------------------------------------


def logprob_response(p_a: float, p_b: float, p_tie: float, noise: float = 0.0) -> ChatResponse:
    """A verdict whose label token carries the given probabilities (plus a forbidden token)."""
    label = max({"A": p_a, "B": p_b, "tie": p_tie}.items(), key=lambda kv: kv[1])[0]
    prefix = '{"rationale": "r", "winner": "'
    tokens = [TokenLogprob(prefix, 0.0)]
    top = [("A", math.log(p_a)), ("B", math.log(p_b)), ("tie", math.log(p_tie))]
    if noise:
        top.append(("C", math.log(noise)))  # pre-grammar logprobs list forbidden tokens
    tokens.append(TokenLogprob(label, dict(top)[label], tuple(top)))
    tokens.append(TokenLogprob('"}', 0.0))
    return ChatResponse(text=prefix + label + '"}', finish_reason="stop", logprobs=tuple(tokens))


def test_prob_a_from_label_logprobs_averaged_over_orders() -> None:
    replies = {
        ("x", "y"): logprob_response(0.7, 0.2, 0.1, noise=0.3),
        ("y", "x"): logprob_response(0.4, 0.5, 0.1),
    }
    client = FunctionClient(lambda r: replies[shown(r)])
    pj = PreferenceJudge(client, scoring="expected")
    result = pj.compare("q", "x", "y")
    # order 1: P(x) = 0.7 + 0.05 (renormalised over A/B/tie, the forbidden "C" dropped)
    # order 2 (x shown as B): P(x) = 0.5 + 0.05
    assert result.from_logprobs
    assert result.prob_a == pytest.approx((0.75 + 0.55) / 2)
    assert client.calls[0].logprobs and client.calls[0].top_logprobs == 5


def test_missing_logprobs_fall_back_to_the_label() -> None:
    pj = PreferenceJudge(FunctionClient(by_quality({"x": 2, "y": 1})), scoring="expected")
    result = pj.compare("q", "x", "y")
    assert result.prob_a == 1.0 and not result.from_logprobs


async def test_logprobs_over_http(api: respx.MockRouter, client: OpenAIClient) -> None:
    text = '{"rationale": "r", "winner": "A"}'
    lp = {
        "content": [
            {"token": '{"rationale": "r", "winner": "', "logprob": 0.0, "top_logprobs": []},
            {
                "token": "A",
                "logprob": math.log(0.6),
                "top_logprobs": [
                    {"token": "A", "logprob": math.log(0.6)},
                    {"token": "B", "logprob": math.log(0.4)},
                ],
            },
            {"token": '"}', "logprob": 0.0, "top_logprobs": []},
        ]
    }
    route = api.post(CHAT).respond(200, json=completion(text, logprobs=lp))
    pj = PreferenceJudge(client, swap=False)
    assert pj.scoring == "expected"  # OpenAI-compatible clients advertise logprobs
    result = await pj.acompare("q", "x", "y")
    assert result.prob_a == pytest.approx(0.6)
    sent = json.loads(route.calls[0].request.content)
    assert sent["logprobs"] is True
    assert sent["response_format"]["json_schema"]["schema"]["properties"]["winner"]["enum"] == [
        "A",
        "B",
        "tie",
    ]


# -- rewards ---------------------------------------------------------------------------------


def test_reward_against_reference() -> None:
    pj = PreferenceJudge(FunctionClient(by_quality({"great": 5, "ref": 3, "poor": 1, "same": 3})))
    assert pj.reward("q", "great", "ref") == 1.0
    assert pj.reward("q", "poor", "ref") == 0.0
    assert pj.reward("q", "same", "ref") == 0.5
    assert pj.reward_batch(["q", "q"], ["great", "poor"], ["ref", "ref"]) == [1.0, 0.0]


def test_reward_without_reference_abstains() -> None:
    pj = PreferenceJudge(FunctionClient(lambda r: answer("A")))
    assert pj.reward("q", "x", None) is None
    assert pj.stats.failures["no_reference"] == 1


@pytest.mark.parametrize(("on_error", "expected"), [("abstain", None), (0.5, 0.5)])
def test_failure_policies(on_error: Any, expected: Any) -> None:
    def broken(request: ChatRequest) -> str:
        raise httpx.ConnectError("down")  # an unexpected error inside a client

    pj = PreferenceJudge(FunctionClient(broken), on_error=on_error)
    assert pj.reward("q", "x", "ref") == expected


async def test_group_mode_win_rates_two_prompts_four_completions() -> None:
    quality = {
        "p1-a": 4,
        "p1-b": 3,
        "p1-c": 2,
        "p1-d": 1,
        "p2-a": 1,
        "p2-b": 2,
        "p2-c": 3,
        "p2-d": 4,
    }
    client = FunctionClient(by_quality(quality))
    pj = PreferenceJudge(client, group_reward="win_rate")
    reward = pj.as_reward_func(mode="group", name="pref")
    assert reward.__name__ == "pref"
    prompts = ["p1"] * 4 + ["p2"] * 4
    completions = [f"p1-{c}" for c in "abcd"] + [f"p2-{c}" for c in "abcd"]
    logged: dict[str, float] = {}
    rewards = await reward(
        prompts=prompts, completions=completions, log_metric=lambda k, v: logged.__setitem__(k, v)
    )
    third = 1 / 3
    assert rewards == pytest.approx([1, 2 * third, third, 0, 0, third, 2 * third, 1])
    assert len(client.calls) == 2 * 2 * 6  # 2 prompts × 6 pairs × 2 orders
    assert logged["pref/failure_rate"] == 0.0


async def test_group_mode_single_completion_falls_back_to_reference_or_abstains() -> None:
    pj = PreferenceJudge(
        FunctionClient(by_quality({"x": 5, "ref": 1, "y": 1, "z": 3})), group_reward="win_rate"
    )
    reward = pj.as_reward_func(mode="group")
    out = await reward(prompts=["p", "q", "q"], completions=["x", "y", "z"], reference=["ref"] * 3)
    assert out == [1.0, 0.0, 1.0]
    out = await reward(prompts=["p"], completions=["x"])
    assert out == [None]


async def test_group_identical_completions_share_one_result() -> None:
    client = FunctionClient(by_quality({"x": 5, "y": 1}))
    pj = PreferenceJudge(client, group_reward="win_rate")
    out = await pj.areward_group("p", ["x", "y", "x", "x"])
    assert out == [1.0, 0.0, 1.0, 1.0]
    assert len(client.calls) == 2  # one pair, both orders


def test_large_groups_use_a_bounded_schedule() -> None:
    assert len(all_pairs(8)) == 28
    pairs = circular_pairs(8, 4)
    assert len(pairs) == 16
    counts = [sum(i in p for p in pairs) for i in range(8)]
    assert counts == [4] * 8
    odd = circular_pairs(8, 3)
    assert [sum(i in p for p in odd) for i in range(8)] == [3] * 8


def test_bad_mode_is_rejected() -> None:
    pj = PreferenceJudge(FunctionClient(lambda r: answer("A")))
    with pytest.raises(ConfigurationError, match="mode"):
        pj.as_reward_func(mode="pairs")  # type: ignore[arg-type]
