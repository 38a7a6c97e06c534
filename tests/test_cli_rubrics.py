"""``rftjudge score`` / ``calibrate --rubric-column``: per-row rubrics named on the command line
(judge HTTP mocked with respx)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from click.testing import CliRunner, Result

from rftjudge.app._cli_run import _judge_config
from rftjudge.app.cli import app

from support.payloads import BASE, CHAT, completion

CRITERIA = "criteria: [{name: helpfulness, description: 'Does it help?'}]\n"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def judge_file(tmp_path: Path, extra: str = "", name: str = "judge.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"provider: openai\nmodel: test-judge\nbase_url: {BASE}\n{extra}")
    return path


def item_reply(request: httpx.Request) -> httpx.Response:
    """Every asked item id scores 5, except ids starting with ``no`` (1)."""
    body = json.loads(request.content)
    schema = body["response_format"]["json_schema"]["schema"]
    ids = schema["properties"]["scores"]["required"]
    scores = {i: 1 if i.startswith("no") else 5 for i in ids}
    return httpx.Response(200, json=completion({"rationale": "items", "scores": scores}))


@pytest.fixture
def items_api(api: respx.MockRouter) -> respx.MockRouter:
    api.post(CHAT).mock(side_effect=item_reply)
    return api


def asked_ids(api: respx.MockRouter) -> list[list[str]]:
    bodies = [json.loads(call.request.content) for call in api.calls]
    return sorted(
        b["response_format"]["json_schema"]["schema"]["properties"]["scores"]["required"]
        for b in bodies
    )


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def records(path: Path) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in map(json.loads, path.read_text().splitlines())}


ROWS: list[dict[str, Any]] = [
    {"id": "a", "prompt": "2+2?", "response": "4", "checklist": ["says 4", "is short"]},
    {"id": "b", "prompt": "2+2?", "response": "4", "checklist": {"yes": "says 4", "no": "rude"}},
    {"id": "c", "prompt": "2+2?", "response": "4"},  # no rubric in this row
    {"id": "d", "prompt": "2+2?", "response": "4", "checklist": "[broken"},
]


def test_rubric_column_needs_no_criteria_and_fails_only_rows_without_a_usable_rubric(
    items_api: respx.MockRouter, tmp_path: Path
) -> None:
    judge = judge_file(tmp_path)  # neither criteria nor rubric_column
    data = write_jsonl(tmp_path / "d.jsonl", ROWS)
    out = tmp_path / "out.jsonl"
    refused = run("score", data, "--judge", judge, "-o", out)
    assert refused.exit_code == 1 and "--rubric-column" in refused.stderr
    result = run("score", data, "--judge", judge, "-o", out, "--rubric-column", "checklist")
    assert result.exit_code == 0, result.output
    got = records(out)
    assert got["a"]["ok"] and got["a"]["score"] == 1.0 and got["a"]["items"] == 2
    assert got["b"]["ok"] and got["b"]["score"] == 0.5 and got["b"]["items_passed"] == 1
    for key, problem in (("c", "row 2 has no rubric"), ("d", "row 3: rubric is not valid JSON")):
        assert got[key]["ok"] is False
        assert got[key]["error"]["kind"] == "invalid_rubric"
        assert problem in got[key]["error"]["message"]
    assert asked_ids(items_api) == [["c1", "c2"], ["yes", "no"]]


def test_rubric_column_adds_row_items_to_the_judge_wide_criteria(
    items_api: respx.MockRouter, tmp_path: Path
) -> None:
    rows = [
        {"id": "a", "prompt": "p", "response": "r", "checks": "says 4"},
        {"id": "b", "prompt": "p", "response": "r", "checks": ""},  # empty cell: no rubric
    ]
    data = tmp_path / "d.csv"
    with data.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "out.jsonl"
    judge = judge_file(tmp_path, CRITERIA)
    result = run("score", data, "--judge", judge, "-o", out, "--rubric-column", "checks")
    assert result.exit_code == 0, result.output
    got = records(out)
    assert got["a"]["ok"] and got["a"]["items"] == 2  # helpfulness + the row's item
    assert got["b"]["ok"] and got["b"]["criteria"] == {"helpfulness": 5.0}
    assert asked_ids(items_api) == [["helpfulness"], ["helpfulness", "c1"]]


def test_the_config_rubric_column_names_the_data_column(
    items_api: respx.MockRouter, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", ROWS[:1])
    judge = judge_file(tmp_path, "rubric_column: checklist\n")
    result = run("score", data, "--judge", judge, "-o", tmp_path / "out.jsonl")
    assert result.exit_code == 0, result.output
    assert records(tmp_path / "out.jsonl")["a"]["items"] == 2


def test_a_rubric_column_no_row_has_and_a_judge_without_rubrics_are_one_line_errors(
    api: respx.MockRouter, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", ROWS)
    judge = judge_file(tmp_path, CRITERIA)
    typo = run("score", data, "--judge", judge, "--rubric-column", "chekclist")
    assert typo.exit_code == 1
    assert "no row of the data has the rubric column 'chekclist'" in typo.stderr
    listwise = judge_file(tmp_path, "type: listwise\n", name="listwise.yaml")
    wrong = run("score", data, "--judge", listwise, "--rubric-column", "checklist")
    assert wrong.exit_code == 1 and "need a rubric judge (type: rubric)" in wrong.stderr
    preference = judge_file(tmp_path, "type: preference\n", name="pref.yaml")
    calibrated = run("calibrate", data, "--judge", preference, "--label", "id",
                     "--rubric-column", "checklist")  # fmt: skip
    assert calibrated.exit_code == 1 and "this is a preference judge" in calibrated.stderr
    assert not api.calls  # nothing was judged


def test_calibrate_judges_with_the_rubric_column(
    items_api: respx.MockRouter, tmp_path: Path
) -> None:
    rows = [
        {"id": "a", "prompt": "p", "response": "r", "rubric_x": ["says 4"], "human": 5},
        {"id": "b", "prompt": "p", "response": "r", "rubric_x": ["no: rude"], "human": 1},
    ]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    folder = tmp_path / "cal"
    result = run("calibrate", data, "--judge", judge_file(tmp_path), "--label", "human",
                 "--report-dir", folder, "--no-plots", "--rubric-column", "rubric_x")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "compared: 2 of 2 rows" in result.stdout
    judged = [json.loads(line) for line in (folder / "judgments.jsonl").read_text().splitlines()]
    assert sorted(r["items"] for r in judged) == [1, 1]


def test_the_default_judge_takes_a_rubric_column() -> None:
    assert _judge_config(None, "score", rubric_column="checks").rubric_column == "checks"
