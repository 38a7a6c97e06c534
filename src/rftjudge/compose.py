"""Composed rewards: judges and deterministic checks in one reward function.

::

    reward = CompositeReward(
        terms={"quality": judge, "format": JSONSchemaCheck(schema)},
        weights={"quality": 0.8, "format": 0.2},
        gates={"valid_json": JSONSchemaCheck(schema), "safe": CriterionGate("quality", "safety")},
        penalties={"overlong": (LengthPenalty(2000, soft=500), 0.5), "repetition": RepetitionPenalty()},
    )
    trainer = GRPOTrainer(..., reward_funcs=[reward.as_reward_func()])

reward = clamp(weighted mean of terms − Σ weight × penalty, 0, 1), or 0 when a gate fails.

Order of work per sample: deterministic gates first — a failed gate decides the reward and no judge
is called (counted in ``stats.skipped_judge_calls``) — then all terms concurrently, then criterion
gates (a criterion of a judge term that must pass, e.g. safety), then penalties. A judge term that
fails makes the whole sample fail (abstain / neutral per ``on_error``): a reward computed from the
remaining parts would be a different, wrong number. Each component is logged separately in TRL.

Per-row rubrics reach the judge terms that read them, as in an ensemble: ``rubric=`` / ``rubrics=``
like a :class:`~rftjudge.RubricJudge`, and the composite's ``rubric_column`` is the one its
rubric-reading terms share, so trainer adapters, ``as_reward_func()`` and ``rftjudge score`` pass
the row's rubric in. The other terms, checks and gates get the reference text, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from ._errors import ConfigurationError
from ._text import as_text, reference_text
from ._types import Usage
from .checks import Check
from .judges._rubric_rows import (
    RowInput,
    RubricKeywords,
    member_reference,
    members_column,
    with_rubric,
)
from .judges.base import OnError, RewardBase

__all__ = ["CompositeResult", "CompositeReward", "CriterionGate"]


@dataclass(frozen=True)
class CriterionGate:
    """Gate on a criterion of a judge term: passes when its normalised score ≥ ``threshold``."""

    term: str
    criterion: str
    threshold: float = 0.5


class CompositeResult(BaseModel):
    """One composed reward: the total, every component's value, and what decided it."""

    score: float
    components: dict[str, float] = Field(default_factory=dict)
    gated_by: str | None = None
    judgments: dict[str, Any] = Field(default_factory=dict)
    usage: Usage = Field(default_factory=Usage)


Component = RewardBase[Any] | Check


class CompositeReward(RubricKeywords[CompositeResult]):
    """Weighted terms, gates and penalties combined into one reward (see the module docstring)."""

    default_name = "composite"

    def __init__(
        self,
        terms: Mapping[str, Component],
        *,
        weights: Mapping[str, float] | None = None,
        gates: Mapping[str, Check | CriterionGate] | None = None,
        penalties: Mapping[str, Check | tuple[Check, float]] | None = None,
        gate_threshold: float = 1.0,
        on_error: OnError = "abstain",
        name: str | None = None,
    ) -> None:
        super().__init__(on_error=on_error, name=name)
        if not terms:
            raise ConfigurationError("CompositeReward needs at least one term")
        for key, term in terms.items():
            if not isinstance(term, RewardBase) and not callable(term):
                raise ConfigurationError(f"term {key!r} is neither a judge nor a check")
        self.terms = dict(terms)
        self.weights = {k: float((weights or {}).get(k, 1.0)) for k in self.terms}
        unknown = set(weights or {}) - set(self.terms)
        if unknown:
            raise ConfigurationError(f"weights for unknown terms: {sorted(unknown)}")
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ConfigurationError("term weights must be >= 0 with a positive sum")
        self.gates = dict(gates or {})
        for key, gate in self.gates.items():
            if isinstance(gate, CriterionGate) and gate.term not in self.terms:
                raise ConfigurationError(f"gate {key!r} refers to unknown term {gate.term!r}")
        self.penalties: dict[str, tuple[Check, float]] = {
            k: (v if isinstance(v, tuple) else (v, 1.0)) for k, v in (penalties or {}).items()
        }
        self.gate_threshold = gate_threshold
        self._judge_terms = sum(isinstance(t, RewardBase) for t in self.terms.values())
        self.rubric_column = members_column(
            [t for t in self.terms.values() if isinstance(t, RewardBase)]
        )

    async def ajudge(
        self, prompt: Any, response: Any, reference: Any = None, *, rubric: Any = None
    ) -> CompositeResult:
        """The composed reward of one sample (``rubric``: this row's rubric, for the judge terms
        that read rubrics)."""
        p = as_text(prompt, what="prompt")
        r = as_text(response, what="response")
        attached = with_rubric(reference, rubric)
        if isinstance(attached, RowInput):  # judge terms that read rubrics get the row's
            ref = reference_text(attached.reference)
            judged: Any = RowInput(ref, attached.rubric, attached.row)
        else:
            ref = judged = reference_text(reference)
        components: dict[str, float] = {}
        for key, gate in self.gates.items():
            if isinstance(gate, CriterionGate):
                continue
            value = float(gate(p, r, ref))
            components[f"gate/{key}"] = value
            if value < self.gate_threshold:
                self.stats.skipped_judge_calls += self._judge_terms
                return CompositeResult(score=0.0, components=components, gated_by=key)
        judges = {k: t for k, t in self.terms.items() if isinstance(t, RewardBase)}
        results = await asyncio.gather(
            *(t.ajudge(p, r, member_reference(t, judged)) for t in judges.values())
        )
        judgments = dict(zip(judges, results, strict=True))
        usage = Usage()
        for key, term in self.terms.items():
            if isinstance(term, RewardBase):
                components[key] = term.score_of(judgments[key])
                usage = usage + getattr(judgments[key], "usage", Usage())
            else:
                components[key] = float(term(p, r, ref))
        for key, gate in self.gates.items():
            if isinstance(gate, CriterionGate):
                normalized = getattr(judgments[gate.term], "normalized", {})
                if gate.criterion not in normalized:
                    raise ConfigurationError(
                        f"gate {key!r}: term {gate.term!r} has no criterion {gate.criterion!r}"
                    )
                value = float(normalized[gate.criterion])
                components[f"gate/{key}"] = value
                if value < gate.threshold:
                    return CompositeResult(
                        score=0.0,
                        components=components,
                        gated_by=key,
                        judgments=judgments,
                        usage=usage,
                    )
        total_weight = sum(self.weights.values())
        score = sum(self.weights[k] * components[k] for k in self.terms) / total_weight
        for key, (check, weight) in self.penalties.items():
            value = float(check(p, r, ref))
            components[f"penalty/{key}"] = value
            score -= weight * value
        return CompositeResult(
            score=min(1.0, max(0.0, score)), components=components, judgments=judgments, usage=usage
        )

    def score_of(self, result: CompositeResult) -> float:
        return result.score

    def metrics_of(self, outcomes: Any) -> dict[str, float]:
        metrics = super().metrics_of(outcomes)
        done = [o for o in outcomes if isinstance(o, CompositeResult)]
        if done:
            keys = sorted({k for o in done for k in o.components})
            for key in keys:
                values = [o.components[key] for o in done if key in o.components]
                metrics[key] = sum(values) / len(values)
            metrics["gated_rate"] = sum(o.gated_by is not None for o in done) / len(done)
        return metrics

    def rationale_of(self, outcome: Any) -> str:
        if isinstance(outcome, CompositeResult) and outcome.gated_by:
            return f"[gated by {outcome.gated_by}]"
        if isinstance(outcome, CompositeResult):
            parts = [str(getattr(j, "rationale", "")) for j in outcome.judgments.values()]
            return " | ".join(p for p in parts if p)
        return super().rationale_of(outcome)
