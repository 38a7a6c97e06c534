"""Bradley–Terry fits, comparison schedules, and PreferenceJudge's group rewards built on them."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest

from rftjudge import (
    ChatRequest,
    ChatResponse,
    ConfigurationError,
    FunctionClient,
    PreferenceJudge,
    TokenLogprob,
)
from rftjudge._content import content_text
from rftjudge.judges._bradley_terry import (
    fit_bradley_terry,
    mean_win_probabilities,
    sigmoid,
)
from rftjudge.judges._group import GroupReward
from rftjudge.judges._schedules import circular_pairs, first_round, schedule_pairs, swiss_round

from support.judges import rewards

# -- the fit -------------------------------------------------------------------------------------


def centred(values: Any) -> list[float]:
    values = list(values)
    return [v - sum(values) / len(values) for v in values]


def test_fit_recovers_known_strengths_from_fractional_outcomes() -> None:
    truth = [1.2, 0.4, 0.0, -0.5, -1.1]
    outcomes = [
        (i, j, sigmoid(truth[i] - truth[j]), 50.0) for i in range(5) for j in range(5) if i < j
    ]
    fit = fit_bradley_terry(5, outcomes, prior_sd=100.0)
    assert fit.converged
    assert centred(fit.strengths) == pytest.approx(centred(truth), abs=1e-3)
    assert fit.win_probability(0, 4) == pytest.approx(sigmoid(2.3), abs=1e-3)


def test_a_sparse_ring_of_comparisons_still_orders_everything() -> None:
    truth = [2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -1.5]
    pairs = circular_pairs(8, 2)
    fit = fit_bradley_terry(8, [(i, j, sigmoid(truth[i] - truth[j]), 20.0) for i, j in pairs])
    assert sorted(range(8), key=lambda k: -fit.strengths[k]) == list(range(8))


def test_all_wins_give_finite_graded_strengths() -> None:
    # 0 beats everyone, 1 beats everyone but 0, ...: the maximum-likelihood estimate is infinite
    outcomes = [(i, j, 1.0) for i in range(4) for j in range(i + 1, 4)]
    fit = fit_bradley_terry(4, outcomes)
    assert all(math.isfinite(s) for s in fit.strengths)
    assert list(fit.strengths) == sorted(fit.strengths, reverse=True)
    rewards = fit.rewards()
    assert rewards == sorted(rewards, reverse=True) and len(set(rewards)) == 4


def test_a_disconnected_graph_is_centred_per_part() -> None:
    fit = fit_bradley_terry(4, [(0, 1, 1.0), (2, 3, 0.25)])
    a, b, c, d = fit.strengths
    assert a > 0 > b and a == pytest.approx(-b)
    assert d > 0 > c and c == pytest.approx(-d)


def test_reversed_pairs_and_repeats_add_up() -> None:
    one = fit_bradley_terry(2, [(0, 1, 0.75, 4.0)])
    split = fit_bradley_terry(2, [(0, 1, 1.0), (1, 0, 0.0), (0, 1, 0.5), (1, 0, 0.5)])
    assert one.strengths == pytest.approx(split.strengths)


def test_a_tie_or_no_data_gives_equal_strengths() -> None:
    assert fit_bradley_terry(3, [(0, 1, 0.5), (1, 2, 0.5)]).strengths == pytest.approx([0, 0, 0])
    assert fit_bradley_terry(3, []).rewards() == pytest.approx([0.5, 0.5, 0.5])
    assert mean_win_probabilities([0.0]) == [0.5]


def test_mean_win_probability_reads_as_a_chance_to_beat_the_group() -> None:
    rewards = mean_win_probabilities([1.0, 0.0, -1.0])
    assert rewards[1] == pytest.approx(0.5)
    assert rewards[0] == pytest.approx((sigmoid(1) + sigmoid(2)) / 2)
    assert sum(rewards) == pytest.approx(1.5)  # each pair's two probabilities sum to one


@pytest.mark.parametrize(
    ("n", "outcomes", "options"),
    [
        (2, [(0, 0, 1.0)], {}),
        (2, [(0, 2, 1.0)], {}),
        (2, [(0, 1, 1.5)], {}),
        (2, [(0, 1, 0.5, -1.0)], {}),
        (2, [], {"prior_sd": 0}),
        (-1, [], {}),
    ],
)
def test_bad_input_is_rejected(n: int, outcomes: Any, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        fit_bradley_terry(n, outcomes, **options)


# -- schedules -----------------------------------------------------------------------------------


def test_static_schedules_and_their_cost() -> None:
    assert len(schedule_pairs("all_pairs", 8, None)) == 28
    assert len(schedule_pairs("circular", 8, None)) == 16  # k = 4
    assert len(schedule_pairs("circular", 8, 2)) == 8
    assert schedule_pairs("auto", 4, None) == schedule_pairs("all_pairs", 4, None)
    assert schedule_pairs("auto", 8, None) == schedule_pairs("circular", 8, 4)
    with pytest.raises(ConfigurationError):
        schedule_pairs("adaptive", 8, 3)


def test_swiss_rounds_pair_neighbours_that_have_not_met() -> None:
    assert first_round([5, 2, 7, 0, 1]) == [(2, 5), (0, 7)]
    assert swiss_round([0, 1, 2, 3], {(0, 1), (2, 3)}) == [(0, 2), (1, 3)]
    assert swiss_round([0, 1], {(0, 1)}) == []


# -- PreferenceJudge group rewards ----------------------------------------------------------------

TEXTS = [f"answer {i}" for i in range(8)]
QUALITY = {t: 8 - i for i, t in enumerate(TEXTS)}


def shown(request: ChatRequest) -> tuple[str, str]:
    user = content_text(request.messages[-1].content)
    a = re.search(r"<<<RESPONSE_A \w+>>>\n(.*?)\n<<<END RESPONSE_A", user, re.DOTALL)
    b = re.search(r"<<<RESPONSE_B \w+>>>\n(.*?)\n<<<END RESPONSE_B", user, re.DOTALL)
    assert a and b
    return a.group(1), b.group(1)


def probable(first_bias: float = 0.0, scale: float = 2.0) -> Any:
    """A fake pairwise judge with label logprobs: P(A) = σ((qA − qB + bias) / scale)."""

    def handler(request: ChatRequest) -> ChatResponse:
        a, b = shown(request)
        p_a = sigmoid((QUALITY[a] - QUALITY[b] + first_bias) / scale)
        label = "A" if p_a >= 0.5 else "B"
        prefix = '{"rationale": "r", "winner": "'
        top = (("A", math.log(p_a)), ("B", math.log(1 - p_a)))
        tokens = (
            TokenLogprob(prefix, 0.0),
            TokenLogprob(label, dict(top)[label], top),
            TokenLogprob('"}', 0.0),
        )
        return ChatResponse(text=prefix + label + '"}', finish_reason="stop", logprobs=tokens)

    return handler


def hard(first_bias: bool = False) -> Any:
    def handler(request: ChatRequest) -> str:
        a, b = shown(request)
        winner = "A" if first_bias or QUALITY[a] > QUALITY[b] else "B"
        return json.dumps({"rationale": "r", "winner": winner})

    return handler


@pytest.mark.parametrize(
    ("schedule", "k", "requests"),
    [("all_pairs", None, 56), ("circular", None, 32), ("circular", 2, 16), ("auto", None, 32)],
)
async def test_request_counts_per_schedule(schedule: Any, k: int | None, requests: int) -> None:
    client = FunctionClient(hard())
    judge = PreferenceJudge(client, schedule=schedule, comparisons_per_completion=k)
    out = await judge.ajudge_group("q", TEXTS)
    assert len(client.calls) == requests
    assert all(isinstance(o, GroupReward) for o in out)
    assert judge.metrics_of(out)["requests_per_group"] == float(requests)


async def test_adaptive_tournament_rounds_and_cost() -> None:
    client = FunctionClient(probable())
    judge = PreferenceJudge(
        client,
        schedule="adaptive",
        comparisons_per_completion=3,
        group_reward="bradley_terry",
        scoring="expected",
    )
    out = await judge.ajudge_group("q", TEXTS)
    assert len(client.calls) <= 3 * 4 * 2  # ⌊8/2⌋ pairs × 3 rounds × 2 orders
    pairs = {frozenset(shown(c)) for c in client.calls}
    assert len(pairs) == len(client.calls) // 2  # no pair asked twice
    assert sorted(range(8), key=lambda i: -rewards(out)[i]) == list(range(8))


async def test_bradley_terry_group_rewards_are_graded_and_ordered() -> None:
    judge = PreferenceJudge(
        FunctionClient(probable()),
        group_reward="bradley_terry",
        schedule="circular",
        comparisons_per_completion=2,
        scoring="expected",
    )
    out = await judge.ajudge_group("q", TEXTS)
    values = rewards(out)
    assert values == sorted(values, reverse=True) and len(set(values)) == 8
    assert all(0 < v < 1 for v in values)
    assert sum(values) == pytest.approx(4.0)  # mean win probabilities of 8 items sum to 8/2


async def test_swapping_removes_a_first_position_bias_from_probabilities() -> None:
    biased = PreferenceJudge(
        FunctionClient(probable(first_bias=3.0)),
        group_reward="bradley_terry",
        schedule="all_pairs",
        scoring="expected",
    )
    out = await biased.ajudge_group("q", TEXTS)
    assert sorted(range(8), key=lambda i: -rewards(out)[i]) == list(range(8))


async def test_swap_consistency_is_logged_per_step_and_disagreements_count_as_ties() -> None:
    judge = PreferenceJudge(FunctionClient(hard(first_bias=True)), name="pw")
    reward = judge.as_reward_func(mode="group")
    logged: dict[str, float] = {}
    rewards = await reward(
        prompts=["q"] * 4,
        completions=TEXTS[:4],
        log_metric=lambda k, v: logged.__setitem__(k, v),
    )
    assert rewards == [0.5, 0.5, 0.5, 0.5]  # every pair disagreed: ties, none skipped
    assert logged["pw/swap_consistency"] == 0.0
    assert logged["pw/requests_per_group"] == 12.0

    fair = PreferenceJudge(FunctionClient(hard()), name="pw", group_reward="win_rate")
    logged.clear()
    rewards = await fair.as_reward_func(mode="group")(
        prompts=["q"] * 4,
        completions=TEXTS[:4],
        log_metric=lambda k, v: logged.__setitem__(k, v),
    )
    assert rewards == pytest.approx([1, 2 / 3, 1 / 3, 0])
    assert logged["pw/swap_consistency"] == 1.0


def test_bad_group_options_are_rejected() -> None:
    client = FunctionClient(hard())
    with pytest.raises(ConfigurationError, match="group_reward"):
        PreferenceJudge(client, group_reward="elo")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="schedule"):
        PreferenceJudge(client, schedule="random")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="bt_prior_sd"):
        PreferenceJudge(client, bt_prior_sd=0)
