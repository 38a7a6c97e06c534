"""Per-row rubrics through ensembles and cascades: forwarded to the members that read them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rftjudge import CascadeJudge, ConfigurationError, EnsembleJudge
from rftjudge.app.scoring import plan_run, run_plan

from support.rubric_rows import RUBRIC, Recorder, Scripted, reader_and_fixed, rubric_judge


def test_an_ensemble_forwards_row_rubrics_to_the_members_that_read_them() -> None:
    (reader_model, reader), (fixed_model, fixed) = reader_and_fixed()
    plain = Recorder(0.5, "plain")
    ensemble = EnsembleJudge([reader, fixed, plain], min_judges=3)
    assert ensemble.rubric_column == "rubric"
    rewards = ensemble.reward_batch(["2+2?"], ["It is 4."], ["4"], rubrics=[RUBRIC])
    assert rewards == [pytest.approx((0.25 + 1.0 + 0.5) / 3)]
    assert reader_model.asked == [["c1", "polite"]]
    assert fixed_model.asked == [["quality"]]  # judged as alone: its own criteria only
    assert plain.seen == ["4"]  # the bare reference, not the rubric wrapper


async def test_an_ensembles_reward_function_passes_the_rubric_column() -> None:
    model = Scripted({"polite": 1})
    reader = rubric_judge(model, name="reader", rubric_column="checklist")
    ensemble = EnsembleJudge([reader, Recorder(1.0, "plain")])
    func = ensemble.as_reward_func()
    rewards = await func(
        prompts=["2+2?", "2+2?"],
        completions=["It is 4.", "Four."],
        checklist=[RUBRIC, json.dumps(["says four"])],
    )
    assert rewards == [pytest.approx((0.25 + 1.0) / 2), pytest.approx(1.0)]
    assert sorted(model.asked) == [["c1"], ["c1", "polite"]]


def test_single_row_keyword_and_a_bad_rubric_fail_the_member_not_the_batch() -> None:
    model = Scripted()
    reader = rubric_judge(model, name="reader")
    ensemble = EnsembleJudge([reader, Recorder(0.0, "plain")], min_judges=1)
    assert ensemble.judge("p", "r", rubric=["one item"]).scores == {"reader": 1.0, "plain": 0.0}
    outcomes = ensemble.reward_batch(["p", "p"], ["r", "r"], rubrics=["[broken", ["fine"]])
    assert outcomes == [0.0, 0.5]  # the broken rubric failed that row's reader only
    assert ensemble.member_failures["reader/invalid_rubric"] == 1


def test_a_cascade_forwards_the_rubric_to_each_stage_that_reads_it() -> None:
    cheap = Recorder(0.5, "cheap")  # uncertain: always escalates
    model = Scripted({"polite": 1})
    strong = rubric_judge(model, name="strong")
    cascade = CascadeJudge(cheap, strong)
    assert cascade.rubric_column == "rubric"
    result = cascade.judge("2+2?", "It is 4.", "4", rubric=RUBRIC)
    assert result.escalated and result.score == pytest.approx(0.25)
    assert cheap.seen == ["4"] and model.asked == [["c1", "polite"]]
    sure_model = Scripted()
    sure = CascadeJudge(rubric_judge(sure_model, name="cheap"), Recorder(0.0, "strong"))
    assert sure.reward_batch(["p"], ["r"], rubrics=[["says hi"]]) == [1.0]
    assert sure_model.asked == [["c1"]]


def test_no_reader_means_no_rubric_column_and_different_columns_are_refused() -> None:
    assert EnsembleJudge([Recorder(1.0, "a"), Recorder(0.0, "b")]).rubric_column is None
    a = rubric_judge(Scripted(), name="a", rubric_column="rubric")
    b = rubric_judge(Scripted(), name="b", rubric_column="checklist")
    with pytest.raises(ConfigurationError, match="different columns"):
        EnsembleJudge([a, b])
    with pytest.raises(ConfigurationError, match="different columns"):
        CascadeJudge(a, b)


def test_nested_composites_forward_the_rubric_to_the_innermost_reader() -> None:
    model = Scripted()
    inner = CascadeJudge(Recorder(0.5, "cheap"), rubric_judge(model, name="reader"))
    outer = EnsembleJudge([inner, Recorder(1.0, "plain")])
    assert outer.rubric_column == "rubric"
    assert outer.reward("p", "r", rubric=["item one", "item two"]) == 1.0
    assert model.asked == [["c1", "c2"]]


async def test_rftjudge_score_rows_reach_an_ensembles_reader(tmp_path: Path) -> None:
    model = Scripted({"polite": 1})
    ensemble = EnsembleJudge([rubric_judge(model, name="reader"), Recorder(1.0, "plain")])
    rows = [{"id": "a", "prompt": "2+2?", "response": "It is 4.", "rubric": json.dumps(RUBRIC)}]
    plan = plan_run(rows, tmp_path / "out.jsonl", judge_id="j")
    stats = await run_plan(ensemble, plan, window=4)  # type: ignore[arg-type]
    assert (stats.judged, stats.failed) == (1, 0)
    record = json.loads((tmp_path / "out.jsonl").read_text())
    assert record["scores"] == {"reader": 0.25, "plain": 1.0}
