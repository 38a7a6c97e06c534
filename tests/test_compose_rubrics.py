"""Per-row rubrics through a CompositeReward: forwarded to the judge terms that read them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rftjudge import CompositeReward, ConfigurationError, Criterion, EnsembleJudge
from rftjudge.app.scoring import plan_run, run_plan

from support.rubric_rows import RUBRIC, Recorder, Scripted, reader_and_fixed, rubric_judge


class SeenCheck:
    """A check (term or gate) that passes; records the reference it was given."""

    name = "seen"

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def __call__(self, prompt: str, response: str, reference: str | None) -> float:
        self.seen.append(reference)
        return 1.0


def test_a_composite_forwards_row_rubrics_to_the_terms_that_read_them() -> None:
    (reader_model, reader), (fixed_model, fixed) = reader_and_fixed()
    plain = Recorder(0.5, "plain")
    check = SeenCheck()
    composite = CompositeReward(
        terms={"reader": reader, "fixed": fixed, "plain": plain, "format": check},
        gates={"valid": check},
    )
    assert composite.rubric_column == "rubric"
    rewards = composite.reward_batch(["2+2?"], ["It is 4."], [{"answer": 4}], rubrics=[RUBRIC])
    assert rewards == [pytest.approx((0.25 + 1.0 + 0.5 + 1.0) / 4)]
    assert reader_model.asked == [["c1", "polite"]]
    assert fixed_model.asked == [["quality"]]  # judged as alone: its own criteria only
    # the reference as text, as before: never the rubric wrapper
    assert plain.seen == ['{"answer": 4}']
    assert check.seen == ['{"answer": 4}', '{"answer": 4}']  # the gate, then the term


async def test_a_composites_reward_function_passes_the_rubric_column() -> None:
    model = Scripted({"polite": 1})
    check = SeenCheck()
    composite = CompositeReward(
        terms={"reader": rubric_judge(model, name="reader", rubric_column="checklist")},
        gates={"valid": check},
    )
    assert composite.rubric_column == "checklist"
    rows = {"checklist": [RUBRIC, json.dumps(["says four"])], "reference": ["4", "four"]}
    func = composite.as_reward_func()
    rewards = await func(prompts=["2+2?"] * 2, completions=["It is 4.", "Four."], **rows)
    assert rewards == [pytest.approx(0.25), pytest.approx(1.0)]
    assert sorted(model.asked) == [["c1"], ["c1", "polite"]]
    assert sorted(check.seen) == ["4", "four"]  # the gate: the reference column's text


def test_single_row_keyword_and_a_bad_rubric_fail_that_sample_not_the_batch() -> None:
    model = Scripted()
    reader = rubric_judge(model, name="reader")
    composite = CompositeReward(terms={"reader": reader, "plain": Recorder(0.0, "plain")})
    result = composite.judge("p", "r", rubric=["one item"])
    assert result.components == {"reader": 1.0, "plain": 0.0}
    outcomes = composite.reward_batch(["p", "p"], ["r", "r"], rubrics=["[broken", ["fine"]])
    assert outcomes == [None, 0.5]  # a failing judge term fails its sample (abstains)
    assert composite.stats.failures["invalid_rubric"] == 1


def test_without_a_rubric_the_terms_are_judged_as_before() -> None:
    model = Scripted()
    fixed = rubric_judge(model, criteria=[Criterion(name="quality", description="good?")])
    plain = Recorder(1.0, "plain")
    composite = CompositeReward(terms={"fixed": fixed, "plain": plain})
    assert composite.reward("p", "r", ["a", "list"]) == 1.0
    assert model.asked == [["quality"]] and plain.seen == ['["a", "list"]']


def test_no_reader_means_no_rubric_column_and_different_columns_are_refused() -> None:
    plain = CompositeReward(terms={"a": Recorder(1.0, "a"), "check": SeenCheck()})
    assert plain.rubric_column is None
    a = rubric_judge(Scripted(), name="a", rubric_column="rubric")
    b = rubric_judge(Scripted(), name="b", rubric_column="checklist")
    with pytest.raises(ConfigurationError, match="different columns"):
        CompositeReward(terms={"a": a, "b": b})


def test_nested_composites_forward_the_rubric_to_the_innermost_reader() -> None:
    model = Scripted()
    inner = CompositeReward(terms={"reader": rubric_judge(model, name="reader")})
    outer = EnsembleJudge([inner, Recorder(1.0, "plain")])
    assert outer.rubric_column == "rubric"
    assert outer.reward("p", "r", rubric=["item one", "item two"]) == 1.0
    assert model.asked == [["c1", "c2"]]
    other = Scripted({"c2": 1})
    ensemble = EnsembleJudge([rubric_judge(other, name="reader"), Recorder(1.0, "plain")])
    composite = CompositeReward(terms={"ensemble": ensemble, "format": SeenCheck()})
    assert composite.rubric_column == "rubric"
    assert composite.reward("p", "r", rubric=["item one", "item two"]) == pytest.approx(
        ((0.5 + 1.0) / 2 + 1.0) / 2
    )
    assert other.asked == [["c1", "c2"]]


async def test_rftjudge_score_rows_reach_a_composites_reader(tmp_path: Path) -> None:
    model = Scripted({"polite": 1})
    composite = CompositeReward(
        terms={"reader": rubric_judge(model, name="reader"), "plain": Recorder(1.0, "plain")}
    )
    rows = [{"id": "a", "prompt": "2+2?", "response": "It is 4.", "rubric": json.dumps(RUBRIC)}]
    plan = plan_run(rows, tmp_path / "out.jsonl", judge_id="j")
    stats = await run_plan(composite, plan, window=4)  # type: ignore[arg-type]
    assert (stats.judged, stats.failed) == (1, 0)
    record = json.loads((tmp_path / "out.jsonl").read_text())
    assert record["score"] == pytest.approx((0.25 + 1.0) / 2)
    assert model.asked == [["c1", "polite"]]
