"""A preference judge's group mode: which pairs a group's completions play, and their rewards.

A tournament follows a fixed schedule, or (``schedule="adaptive"``) Swiss rounds paired by the
Bradley-Terry strengths fitted so far; each distinct completion's reward is then its win rate or
its fitted strength. The comparisons themselves are the judge's (:mod:`.preference`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from .._errors import VerdictError
from .._types import Usage
from ._bradley_terry import fit_bradley_terry
from ._group import GroupInfo, GroupReward, seeded_order
from ._preference_verdict import Preference
from ._schedules import Schedule, first_round, schedule_pairs, swiss_round

__all__ = ["GroupRewardMode", "group_values", "tournament"]

GroupRewardMode = Literal["win_rate", "bradley_terry"]
_ADAPTIVE_ROUNDS = 3


async def tournament(
    play: Callable[[Sequence[tuple[int, int]]], Awaitable[list[Any]]],
    schedule: Schedule,
    unique: Sequence[str],
    *,
    comparisons_per_completion: int | None,
    seed: Any,
    prior_sd: float,
) -> list[tuple[int, int, Preference | BaseException]]:
    """Run the schedule with ``play`` (which judges a list of pairs): every comparison made,
    as (i, j, outcome)."""
    n = len(unique)
    if schedule != "adaptive":
        pairs = schedule_pairs(schedule, n, comparisons_per_completion)
        return [(i, j, r) for (i, j), r in zip(pairs, await play(pairs), strict=True)]
    rounds = comparisons_per_completion or _ADAPTIVE_ROUNDS
    made: list[tuple[int, int, Preference | BaseException]] = []
    done: set[tuple[int, int]] = set()
    order = seeded_order(n, "adaptive", seed, *unique)
    for round_no in range(rounds):
        if round_no == 0:
            pairs = first_round(order)
        else:
            fit = fit_bradley_terry(n, _outcomes(made), prior_sd=prior_sd)
            ranking = sorted(order, key=lambda k: -fit.strengths[k])
            pairs = swiss_round(ranking, done)
        if not pairs:
            break
        done.update(pairs)
        made += [(i, j, r) for (i, j), r in zip(pairs, await play(pairs), strict=True)]
    return made


def group_values(
    texts: Sequence[str],
    unique: Sequence[str],
    results: Sequence[tuple[int, int, Preference | BaseException]],
    *,
    group_reward: GroupRewardMode,
    prior_sd: float,
) -> list[float | BaseException]:
    """Each distinct completion's group reward from the comparisons made (``group_reward``:
    win rate or Bradley-Terry strength); the error where none of its comparisons succeeded."""
    n = len(unique)
    games = [0] * n
    last_error: BaseException | None = None
    for i, j, result in results:
        if isinstance(result, BaseException):
            last_error = result
            continue
        games[i] += 1
        games[j] += 1
    judged = [r for _, _, r in results if isinstance(r, Preference)]
    usage = Usage()
    for r in judged:
        usage = usage + r.usage
    swapped = [r for r in judged if r.consistent is not None]
    info = GroupInfo(
        size=len(texts),
        distinct=n,
        requests=usage.requests,
        usage=usage,
        comparisons=len(swapped),
        inconsistent=sum(r.consistent is False for r in swapped),
    )
    if group_reward == "bradley_terry":
        fit = fit_bradley_terry(n, _outcomes(results), prior_sd=prior_sd)
        values = fit.rewards()
    else:
        wins = [0.0] * n
        for i, j, result in results:
            if isinstance(result, Preference):
                wins[i] += result.prob_a
                wins[j] += 1.0 - result.prob_a
        values = [wins[k] / games[k] if games[k] else 0.0 for k in range(n)]
    rationale = (
        f"{group_reward} over {len(judged)} comparisons of {n} distinct completions; "
        f"{info.inconsistent} of {info.comparisons} swapped pairs disagreed"
    )
    return [
        GroupReward(values[k], info, rationale)
        if games[k]
        else (last_error or VerdictError("no comparison"))
        for k in range(n)
    ]


def _outcomes(
    results: Sequence[tuple[int, int, Preference | BaseException]],
) -> list[tuple[int, int, float]]:
    return [(i, j, r.prob_a) for i, j, r in results if isinstance(r, Preference)]
