"""``rftjudge score`` with a rubric column: per-row rubrics from JSONL, CSV and Parquet."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rftjudge import ChatRequest, FunctionClient, RubricJudge
from rftjudge.app.scoring import Columns, plan_run, read_rows, run_plan


def handler(request: ChatRequest) -> str:
    ids = request.output_schema["properties"]["scores"]["required"]  # type: ignore[index]
    return json.dumps({"rationale": "", "scores": {i: 5 if i == "c1" else 1 for i in ids}})


ROWS = [
    {"id": "a", "prompt": "2+2?", "response": "It is 4.", "rubric": "says 4\nis polite"},
    {"id": "b", "prompt": "2+2?", "response": "It is 4.", "rubric": json.dumps(["says 4"])},
    {"id": "c", "prompt": "2+2?", "response": "It is 4.", "rubric": "[broken"},
]


def records(path: Path) -> dict[str, dict[str, object]]:
    return {r["id"]: r for r in map(json.loads, path.read_text().splitlines())}


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
async def test_score_reads_the_rubric_column(tmp_path: Path, fmt: str) -> None:
    data = tmp_path / f"d.{fmt}"
    if fmt == "jsonl":
        data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    elif fmt == "csv":
        with data.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(ROWS[0]))
            writer.writeheader()
            writer.writerows(ROWS)
    else:
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(ROWS), data)
    out = tmp_path / "out.jsonl"
    judge = RubricJudge(FunctionClient(handler))
    plan = plan_run(read_rows(data), out, judge_id="j")
    stats = await run_plan(judge, plan)
    assert (stats.judged, stats.failed) == (3, 1)
    got = records(out)
    assert got["a"]["score"] == 0.5 and got["a"]["items_passed"] == 1
    assert got["b"]["score"] == 1.0
    assert got["c"]["ok"] is False
    assert got["c"]["error"]["kind"] == "invalid_rubric"  # type: ignore[index]
    assert "row 2: rubric is not valid JSON" in got["c"]["error"]["message"]  # type: ignore[index]


def test_an_edited_rubric_rescores_its_row_and_data_without_rubrics_keeps_its_hashes(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.jsonl"
    first = plan_run(ROWS, out, judge_id="j")
    edited = [dict(r) for r in ROWS]
    edited[0]["rubric"] = "says four"
    assert first.hashes[0] != plan_run(edited, out, judge_id="j").hashes[0]
    without = [{k: v for k, v in r.items() if k != "rubric"} for r in ROWS]
    unaware = plan_run(without, out, judge_id="j", columns=Columns(rubric=None))
    assert plan_run(without, out, judge_id="j").hashes == unaware.hashes
