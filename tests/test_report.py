"""Calibration analysis: judge records joined with human labels, the Markdown report, the plots."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from rftjudge import ConfigurationError, Criterion
from rftjudge.app.config import JudgeConfig, Price
from rftjudge.app.report import calibrate_records, kappa_band, parse_label, write_report
from rftjudge.judges.rubric import Scale

ONE = JudgeConfig(
    criteria=(Criterion(name="q", description="quality"),), price=Price(input=1, output=2)
)
TWO = JudgeConfig(
    criteria=(
        Criterion(name="a", description="first", weight=1),
        Criterion(name="b", description="second", weight=1),
    )
)
PREF = JudgeConfig(type="preference")
LIKERT = Scale(low=1, high=5)


def rubric_record(raw: int, expected: float | None = None) -> dict[str, Any]:
    return {
        "ok": True,
        "score": ((expected if expected is not None else raw) - 1) / 4,
        "criteria": {"q": float(raw)},
        "expected": {"q": expected} if expected is not None else None,
        "usage": {"input_tokens": 100, "output_tokens": 10, "requests": 1},
    }


def test_parse_label() -> None:
    assert parse_label(4, "rubric", LIKERT) == 4
    assert parse_label("5", "rubric", LIKERT) == 5
    assert parse_label(" 3.0 ", "rubric", LIKERT) == 3
    assert parse_label(2.5, "rubric", LIKERT) is None
    assert parse_label(9, "rubric", LIKERT) is None
    assert parse_label("good", "rubric", LIKERT) is None
    assert parse_label("", "rubric", LIKERT) is None
    binary = Scale.parse("pass_fail")
    assert parse_label("Pass", "rubric", binary) == 1
    assert parse_label(False, "rubric", binary) == 0
    assert parse_label("maybe", "rubric", binary) is None
    assert parse_label("a", "preference", LIKERT) == "A"
    assert parse_label("Draw", "preference", LIKERT) == "tie"
    assert parse_label("C", "preference", LIKERT) is None


def test_single_criterion_rubric_agreement() -> None:
    records = {
        0: rubric_record(1, 1.2),
        1: rubric_record(2, 2.4),
        2: rubric_record(3, 2.9),
        3: rubric_record(5, 4.6),
        4: {"ok": False, "error": {"kind": "parse"}},
        5: {"ok": False, "error": {"kind": "timeout"}},
        6: rubric_record(4),
    }
    labels = {0: 1, 1: 2, 2: 4, 3: 5, 4: 3, 5: 2, 6: "n/a", 7: None, 8: 3}
    result = calibrate_records(ONE, records, labels)
    assert result.target == "q"
    assert (result.rows, result.labelled, result.invalid_labels) == (9, 7, 1)
    assert (result.judged, result.failed) == (4, 2)  # row 8 has no judgment yet
    assert result.failures == {"parse": 1, "timeout": 1}
    assert result.failure_rate == pytest.approx(2 / 6)
    assert result.parse_failure_rate == pytest.approx(1 / 6)
    a = result.agreement
    assert a.n == 4
    assert a.accuracy == pytest.approx(3 / 4)
    assert a.adjacent_accuracy == pytest.approx(1.0)
    assert result.scores == (1.2, 2.4, 2.9, 4.6)  # expected scores where present
    assert a.spearman == pytest.approx(1.0)
    assert a.confusion[3] == (0, 0, 1, 0, 0)  # human 4, judge 3
    assert a.weighted_kappa is not None and a.weighted_kappa > a.kappa  # type: ignore[operator]
    assert (result.input_tokens, result.output_tokens) == (400, 40)
    assert result.cost == pytest.approx((400 * 1 + 40 * 2) / 1e6)


def test_overall_score_maps_back_onto_the_scale() -> None:
    records = {
        0: {"ok": True, "score": 0.0, "criteria": {"a": 1, "b": 1}},
        1: {"ok": True, "score": 0.625, "criteria": {"a": 3, "b": 4}},  # 3.5 rounds up to 4
        2: {"ok": True, "score": 1.0, "criteria": {"a": 5, "b": 5}},
    }
    result = calibrate_records(TWO, records, {0: 1, 1: 4, 2: 5})
    assert result.target == "overall score"
    assert result.pred == (1, 4, 5)
    assert result.scores == (1.0, 3.5, 5.0)
    by_criterion = calibrate_records(TWO, records, {0: 1, 1: 4, 2: 5}, criterion="a")
    assert by_criterion.pred == (1, 3, 5)
    with pytest.raises(ConfigurationError, match=r"--criterion 'c' is not a criterion .*a, b"):
        calibrate_records(TWO, records, {}, criterion="c")


def test_preference_agreement_and_consistency() -> None:
    records = {
        0: {"ok": True, "winner": "A", "prob_a": 0.9, "consistent": True},
        1: {"ok": True, "winner": "B", "prob_a": 0.2, "consistent": True},
        2: {"ok": True, "winner": "tie", "prob_a": 0.5, "consistent": False},
        3: {"ok": True, "winner": "A", "prob_a": 0.6, "consistent": True},
    }
    result = calibrate_records(PREF, records, {0: "A", 1: "B", 2: "A", 3: "B"})
    assert result.target == "winner"
    assert result.agreement.accuracy == pytest.approx(0.5)
    assert result.agreement.labels == ("A", "B", "tie")
    assert result.consistency == pytest.approx(0.75)
    assert result.agreement.spearman is not None
    assert result.agreement.weighted_kappa is None


def test_nothing_comparable_is_noted() -> None:
    result = calibrate_records(ONE, {}, {0: 3})
    assert result.agreement.n == 0 and result.agreement.kappa is None
    assert result.notes == ("no row has both a usable label and a successful judgment",)


def test_kappa_bands() -> None:
    assert kappa_band(None) == ""
    assert kappa_band(-0.1) == "poor"
    assert kappa_band(0.5) == "moderate"
    assert kappa_band(0.9) == "almost perfect"


def sample_result() -> Any:
    records = {i: rubric_record(1 + i % 5, 1 + i % 5 + 0.1) for i in range(10)}
    labels = {i: 1 + (i + i // 5) % 5 for i in range(10)}
    return calibrate_records(ONE, records, labels)


def test_report_with_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    written = write_report(sample_result(), tmp_path / "rep", details=[("data", "x.jsonl")])
    for name in ("confusion", "scores"):
        assert written[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = written["report"].read_text()
    assert "![confusion matrix](confusion.png)" in text
    assert "| quadratic-weighted kappa |" in text and "- **data**: x.jsonl" in text
    assert "| human \\ judge | 1 | 2 | 3 | 4 | 5 |" in text
    metrics = json.loads(written["metrics"].read_text())
    assert metrics["agreement"]["n"] == 10 and "truth" not in metrics


def test_report_without_matplotlib_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # import now raises ImportError
    written = write_report(sample_result(), tmp_path)
    assert set(written) == {"metrics", "report"}
    assert not list(tmp_path.glob("*.png"))
    assert 'Plots skipped: matplotlib is not installed (pip install "rftjudge[plot]")' in (
        written["report"].read_text()
    )


def test_verdict_is_the_sampled_integer_and_the_weighted_value_is_correlated() -> None:
    record = {
        "ok": True,
        "score": 0.6,
        "criteria": {"q": 3.4},  # weighted: what the score is made of
        "criteria_sampled": {"q": 4},  # what the judge wrote
        "expected": {"q": 3.4},
    }
    result = calibrate_records(ONE, {0: record}, {0: 4})
    assert result.pred == (4,) and result.scores == (3.4,)


def test_disagreements_name_the_rows(tmp_path: Path) -> None:
    records = {
        i: {**rubric_record(judge), "id": f"s{i}", "rationale": f"why {i} | with a pipe\nand more"}
        for i, judge in enumerate([1, 2, 5, 4, 3])
    }
    labels = {0: 1, 1: 4, 2: 4, 3: 4, 4: 1}
    result = calibrate_records(ONE, records, labels)
    assert [(d["index"], d["id"], d["judge"], d["human"]) for d in result.disagreements] == [
        (1, "s1", 2, 4),  # a difference of 2 first
        (4, "s4", 3, 1),
        (2, "s2", 5, 4),
    ]
    assert result.disagreements[0]["rationale"] == "why 1 | with a pipe\nand more"
    written = write_report(result, tmp_path, plots=False)
    metrics = json.loads(written["metrics"].read_text())
    assert metrics["disagreements"][0] == {
        "index": 1,
        "id": "s1",
        "judge": 2,
        "human": 4,
        "rationale": "why 1 | with a pipe\nand more",
    }
    text = written["report"].read_text()
    assert "## Disagreements" in text
    assert "3 of 5 compared rows, largest difference first" in text
    assert "| 1 | s1 | 2 | 4 | why 1 \\| with a pipe and more |" in text
    agreeing = calibrate_records(ONE, {0: rubric_record(3)}, {0: 3})
    assert agreeing.disagreements == ()
    assert (
        "agrees with every compared label"
        in write_report(agreeing, tmp_path / "b", plots=False)["report"].read_text()
    )


def test_preference_disagreements_without_ids() -> None:
    records = {
        0: {"ok": True, "winner": "A", "prob_a": 0.9, "rationale": "A is right"},
        1: {"ok": True, "winner": "tie", "prob_a": 0.5, "rationale": "same"},
    }
    result = calibrate_records(PREF, records, {0: "A", 1: "B"})
    assert result.disagreements == (
        {"index": 1, "judge": "tie", "human": "B", "rationale": "same"},
    )
