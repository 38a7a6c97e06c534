"""Several judges as one: ensembles (mean, median, majority) and cheap-first cascades.

Judges of different model families err differently (self-enhancement bias, blind spots a policy
learns to exploit), so averaging them makes a reward harder to game. Their *disagreement* is
information too: it is reported per sample and logged, so a drift between judges is visible.

A cascade asks a cheap judge first and escalates to an expensive one only when the cheap verdict
is uncertain (inside ``band``) or failed — most samples are clear-cut, so most of the cost is saved.

Per-row rubrics reach the members that read them: both composites take ``rubric=`` / ``rubrics=``
like a :class:`~rftjudge.RubricJudge`, and their ``rubric_column`` is the one their rubric-reading
members share, so trainer adapters, ``as_reward_func()`` and ``rftjudge score`` pass the row's
rubric in; members that take no rubric get the bare reference and are judged as before.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from .._errors import ConfigurationError, JudgeError
from .._types import Usage
from ._rubric_rows import RubricKeywords, member_reference, members_column, with_rubric
from .base import OnError, RewardBase

__all__ = ["CascadeJudge", "CascadeResult", "EnsembleJudge", "EnsembleResult"]

Aggregate = Literal["mean", "median", "majority"]


class EnsembleResult(BaseModel):
    """``scores`` per member (None where it failed), the aggregate, and the members' disagreement
    (population standard deviation of their scores; for majority, the share outvoted)."""

    score: float
    scores: dict[str, float | None]
    disagreement: float
    usage: Usage = Field(default_factory=Usage)
    results: dict[str, Any] = Field(default_factory=dict)


class EnsembleJudge(RubricKeywords[EnsembleResult]):
    """Judge with every member concurrently and aggregate.

    ``min_judges`` (default: a majority of members) must succeed, otherwise the sample fails.
    ``majority`` votes pass/fail at ``threshold`` and returns the share of passing votes' side
    (1.0 or 0.0; ties → 0.5).
    """

    default_name = "ensemble"

    def __init__(
        self,
        judges: Sequence[RewardBase[Any]] | Mapping[str, RewardBase[Any]],
        *,
        aggregate: Aggregate = "mean",
        weights: Sequence[float] | None = None,
        min_judges: int | None = None,
        threshold: float = 0.5,
        on_error: OnError = "abstain",
        name: str | None = None,
    ) -> None:
        super().__init__(on_error=on_error, name=name)
        members = dict(judges) if isinstance(judges, Mapping) else _named(judges)
        if len(members) < 2:
            raise ConfigurationError("an ensemble needs at least two judges")
        if aggregate not in ("mean", "median", "majority"):
            raise ConfigurationError(
                f'aggregate must be "mean", "median" or "majority"; got {aggregate!r}'
            )
        if weights is not None and (
            len(weights) != len(members) or min(weights) < 0 or sum(weights) <= 0
        ):
            raise ConfigurationError(
                "weights must give one value >= 0 per judge, with a positive sum"
            )
        self.members = members
        self.aggregate: Aggregate = aggregate
        self.weights = dict(zip(members, weights or [1.0] * len(members), strict=True))
        self.min_judges = min_judges if min_judges is not None else len(members) // 2 + 1
        if not 1 <= self.min_judges <= len(members):
            raise ConfigurationError(f"min_judges must be between 1 and {len(members)}")
        self.threshold = threshold
        self.member_failures: Counter[str] = Counter()
        self.rubric_column = members_column(list(members.values()))

    async def ajudge(
        self, prompt: Any, response: Any, reference: Any = None, *, rubric: Any = None
    ) -> EnsembleResult:
        """Every member's judgment, combined (``rubric``: this row's rubric, for the members that
        read rubrics)."""
        reference = with_rubric(reference, rubric)
        outcomes = await asyncio.gather(
            *(
                j.ajudge(prompt, response, member_reference(j, reference))
                for j in self.members.values()
            ),
            return_exceptions=True,
        )
        scores: dict[str, float | None] = {}
        results: dict[str, Any] = {}
        usage = Usage()
        errors: list[BaseException] = []
        for key, outcome in zip(self.members, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome  # cancellation and interrupts are not judge failures
                errors.append(outcome)
                scores[key] = None
                kind = outcome.kind if isinstance(outcome, JudgeError) else "internal"
                self.member_failures[f"{key}/{kind}"] += 1
                continue
            score = self.members[key].score_of(outcome)
            scores[key] = score if math.isfinite(score) else None
            results[key] = outcome
            usage = usage + getattr(outcome, "usage", Usage())
        ok = {k: v for k, v in scores.items() if v is not None}
        if len(ok) < self.min_judges:
            raise errors[0] if errors else JudgeError("too few ensemble members succeeded")
        score, disagreement = self._combine(ok)
        return EnsembleResult(
            score=score, scores=scores, disagreement=disagreement, usage=usage, results=results
        )

    def _combine(self, ok: Mapping[str, float]) -> tuple[float, float]:
        values = list(ok.values())
        spread = statistics.pstdev(values) if len(values) > 1 else 0.0
        if self.aggregate == "median":
            return statistics.median(values), spread
        if self.aggregate == "majority":
            votes = [v >= self.threshold for v in values]
            passed = sum(votes)
            if passed * 2 == len(votes):
                return 0.5, 0.5
            winner = passed * 2 > len(votes)
            return (1.0 if winner else 0.0), sum(v != winner for v in votes) / len(votes)
        total = sum(self.weights[k] for k in ok)
        if total <= 0:
            return sum(values) / len(values), spread
        return sum(self.weights[k] * v for k, v in ok.items()) / total, spread

    def score_of(self, result: EnsembleResult) -> float:
        return result.score

    def metrics_of(self, outcomes: Any) -> dict[str, float]:
        metrics = super().metrics_of(outcomes)
        done = [o for o in outcomes if isinstance(o, EnsembleResult)]
        if done:
            metrics["disagreement"] = sum(o.disagreement for o in done) / len(done)
            for key in self.members:
                values = [o.scores[key] for o in done if o.scores.get(key) is not None]
                if values:
                    metrics[f"judge/{key}"] = sum(v for v in values if v is not None) / len(values)
        return metrics


class CascadeResult(BaseModel):
    score: float
    escalated: bool
    cheap_score: float | None
    strong_score: float | None = None
    usage: Usage = Field(default_factory=Usage)


class CascadeJudge(RubricKeywords[CascadeResult]):
    """Cheap judge first; the strong judge only when the cheap score lies in ``band`` or failed."""

    default_name = "cascade"

    def __init__(
        self,
        cheap: RewardBase[Any],
        strong: RewardBase[Any],
        *,
        band: tuple[float, float] = (0.25, 0.75),
        on_error: OnError = "abstain",
        name: str | None = None,
    ) -> None:
        super().__init__(on_error=on_error, name=name)
        low, high = band
        if not 0.0 <= low <= high <= 1.0:
            raise ConfigurationError(f"band must satisfy 0 <= low <= high <= 1; got {band!r}")
        self.cheap = cheap
        self.strong = strong
        self.band = (low, high)
        self.escalations = 0
        self.rubric_column = members_column([cheap, strong])

    async def ajudge(
        self, prompt: Any, response: Any, reference: Any = None, *, rubric: Any = None
    ) -> CascadeResult:
        """The cheap judgment, or the strong one when it is uncertain (``rubric``: this row's
        rubric, for the judges that read rubrics)."""
        reference = with_rubric(reference, rubric)
        cheap_score: float | None = None
        usage = Usage()
        try:
            first = await self.cheap.ajudge(
                prompt, response, member_reference(self.cheap, reference)
            )
        except JudgeError:
            first = None
        if first is not None:
            cheap_score = self.cheap.score_of(first)
            usage = usage + getattr(first, "usage", Usage())
            low, high = self.band
            if not (low < cheap_score < high):
                return CascadeResult(
                    score=cheap_score, escalated=False, cheap_score=cheap_score, usage=usage
                )
        self.escalations += 1
        second = await self.strong.ajudge(
            prompt, response, member_reference(self.strong, reference)
        )
        strong_score = self.strong.score_of(second)
        usage = usage + getattr(second, "usage", Usage())
        return CascadeResult(
            score=strong_score,
            escalated=True,
            cheap_score=cheap_score,
            strong_score=strong_score,
            usage=usage,
        )

    def score_of(self, result: CascadeResult) -> float:
        return result.score

    def metrics_of(self, outcomes: Any) -> dict[str, float]:
        metrics = super().metrics_of(outcomes)
        done = [o for o in outcomes if isinstance(o, CascadeResult)]
        if done:
            metrics["escalation_rate"] = sum(o.escalated for o in done) / len(done)
        return metrics


def _named(judges: Sequence[RewardBase[Any]]) -> dict[str, RewardBase[Any]]:
    """Members keyed by name; repeated names get a numeric suffix."""
    members: dict[str, RewardBase[Any]] = {}
    for judge in judges:
        if not isinstance(judge, RewardBase):
            raise ConfigurationError(f"ensemble members must be judges; got {type(judge).__name__}")
        key, n = judge.name, 2
        while key in members:
            key, n = f"{judge.name}_{n}", n + 1
        members[key] = judge
    return members
