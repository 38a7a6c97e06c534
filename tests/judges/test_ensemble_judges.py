from __future__ import annotations

import json
from typing import Any

import pytest

from rftjudge import (
    CascadeJudge,
    ConfigurationError,
    Criterion,
    EnsembleJudge,
    FunctionClient,
    RubricJudge,
)
from rftjudge.clients import Capabilities

CRITERIA = [Criterion(name="quality", description="good?")]


def rubric(score: int | None, name: str) -> tuple[RubricJudge, FunctionClient]:
    def handler(request: Any) -> str:
        if score is None:
            return "garbage"
        return json.dumps({"rationale": name, "scores": {"quality": score}})

    client = FunctionClient(handler, capabilities=Capabilities(logprobs=False))
    return RubricJudge(client, criteria=CRITERIA, max_reasks=0, name=name), client


def test_mean_and_disagreement() -> None:
    (a, _), (b, _), (c, _) = rubric(5, "a"), rubric(3, "b"), rubric(1, "c")
    ens = EnsembleJudge([a, b, c])
    result = ens.judge("p", "r")
    assert result.score == pytest.approx(0.5)
    assert result.scores == {"a": 1.0, "b": 0.5, "c": 0.0}
    assert result.disagreement == pytest.approx(0.4082, abs=1e-3)
    assert ens.metrics_of([result])["disagreement"] == pytest.approx(result.disagreement)


def test_majority_and_median() -> None:
    judges = [rubric(5, "a")[0], rubric(4, "b")[0], rubric(1, "c")[0]]
    majority = EnsembleJudge(judges, aggregate="majority").judge("p", "r")
    assert majority.score == 1.0 and majority.disagreement == pytest.approx(1 / 3)
    assert EnsembleJudge(judges, aggregate="median").reward("p", "r") == pytest.approx(0.75)


def test_member_failures_tolerated_up_to_min_judges() -> None:
    judges = [rubric(5, "a")[0], rubric(None, "b")[0], rubric(3, "c")[0]]
    ens = EnsembleJudge(judges)  # default min_judges = 2 of 3
    result = ens.judge("p", "r")
    assert result.scores["b"] is None and result.score == pytest.approx(0.75)
    assert ens.member_failures["b/parse"] == 1
    strict = EnsembleJudge(judges, min_judges=3)
    assert strict.reward("p", "r") is None


def test_duplicate_names_and_validation() -> None:
    a1, a2 = rubric(5, "same")[0], rubric(1, "same")[0]
    assert set(EnsembleJudge([a1, a2]).members) == {"same", "same_2"}
    with pytest.raises(ConfigurationError, match="at least two"):
        EnsembleJudge([a1])
    with pytest.raises(ConfigurationError, match="aggregate"):
        EnsembleJudge([a1, a2], aggregate="max")  # type: ignore[arg-type]


def test_cascade_escalates_only_when_uncertain() -> None:
    cheap_sure, _cheap_calls = rubric(5, "cheap")
    strong, strong_calls = rubric(1, "strong")
    cascade = CascadeJudge(cheap_sure, strong)
    assert cascade.reward("p", "r") == 1.0 and strong_calls.calls == []
    cheap_unsure, _ = rubric(3, "cheap2")
    cascade2 = CascadeJudge(cheap_unsure, strong)
    result = cascade2.judge("p", "r")
    assert result.escalated and result.score == 0.0 and result.cheap_score == 0.5
    broken, _ = rubric(None, "broken")
    assert CascadeJudge(broken, strong).reward("p", "r") == 0.0  # cheap failed: escalated
