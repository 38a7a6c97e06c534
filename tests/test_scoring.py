"""Resumable data set judging: readers, plans, append-as-done, interruption, summaries."""

from __future__ import annotations

import asyncio
import csv
import errno
import json
import os
import re
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rftjudge import (
    AuthenticationError,
    ChatRequest,
    ConfigurationError,
    Criterion,
    FunctionClient,
    PreferenceJudge,
    RubricJudge,
)
from rftjudge.config import DEFAULT_PREFERENCE_JUDGE, JudgeConfig, Price
from rftjudge.scoring import (
    BadRow,
    Columns,
    OutputFailed,
    RunAborted,
    current_results,
    judge_plan,
    latest_results,
    plan_run,
    read_rows,
    run_plan,
    sort_results,
    summarize,
)

ROWS = [
    {"id": f"r{i}", "prompt": f"question {i}", "response": f"answer {i}", "reference": None}
    for i in range(6)
]


def response_of(request: ChatRequest) -> str:
    text = "\n".join(m.content for m in request.messages)  # re-asks append messages
    match = re.search(r"<<<RESPONSE \w+>>>\n(.*?)\n<<<END RESPONSE", text, re.S)
    assert match is not None
    return match.group(1)


def verdict(score: int) -> str:
    return json.dumps({"rationale": f"gave {score}", "scores": {"q": score}})


def rubric(handler: Callable[[ChatRequest], Any]) -> RubricJudge:
    return RubricJudge(
        FunctionClient(handler), criteria=[Criterion(name="q", description="quality")]
    )


def by_number(request: ChatRequest) -> str:
    """Score = 1 + (the row's number mod 5), so every row gets a known score."""
    number = int(response_of(request).split()[-1])
    return verdict(1 + number % 5)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- readers -------------------------------------------------------------------------------------


def test_jsonl_json_csv_tsv_readers(tmp_path: Path) -> None:
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"prompt": "p", "response": "r"}\n\n{"prompt": "q", "response": "s"}\n')
    assert [r["prompt"] for r in read_rows(jsonl)] == ["p", "q"]
    js = tmp_path / "d.json"
    js.write_text(json.dumps([{"prompt": "p"}]))
    assert list(read_rows(js)) == [{"prompt": "p"}]
    for suffix, delimiter in ((".csv", ","), (".tsv", "\t")):
        path = tmp_path / f"d{suffix}"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle, delimiter=delimiter)
            writer.writerows([["prompt", "response", "reference"], ["p, with comma", "r", ""]])
        assert list(read_rows(path)) == [
            {"prompt": "p, with comma", "response": "r", "reference": ""}
        ]


def test_reader_errors_name_the_place(tmp_path: Path) -> None:
    odd = tmp_path / "data.xlsx"
    odd.write_text("x")
    with pytest.raises(ConfigurationError, match=r"unknown data format '\.xlsx'"):
        list(read_rows(odd))
    notjson = tmp_path / "l.json"
    notjson.write_text('{"a": 1}')
    with pytest.raises(ConfigurationError, match="expected a JSON list of objects"):
        list(read_rows(notjson))
    latin1 = tmp_path / "l.csv"
    latin1.write_bytes("prompt,response\ncaf\xe9,r\n".encode("latin-1"))
    with pytest.raises(ConfigurationError, match=r"l.csv: not UTF-8"):
        list(read_rows(latin1))


def test_a_missing_path_is_an_error_naming_it_not_a_hub_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # any Hub attempt would fail differently
    with pytest.raises(ConfigurationError, match=r"^\S*nope.jsonl: no such file or directory$"):
        read_rows(tmp_path / "nope.jsonl")
    with pytest.raises(ConfigurationError, match=r"org/name: no such .* written hf:org/name"):
        read_rows("org/name")
    with pytest.raises(ImportError, match="hf:org/name: .*needs the datasets package"):
        list(read_rows("hf:org/name"))  # the Hub only for an explicit hf: prefix


def test_unreadable_jsonl_lines_become_error_records_at_their_index(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    good = [json.dumps({"prompt": f"question {i}", "response": f"answer {i}"}) for i in range(4)]
    data.write_bytes(
        "\n".join([good[0], "{oops", good[1], "[1, 2]", good[2], "", good[3]]).encode()
        + b"\n{\"prompt\": \"\xff\"}\n"  # not UTF-8
    )
    rows = list(read_rows(data))
    assert len(rows) == 7 and [isinstance(r, BadRow) for r in rows] == [
        False, True, False, True, False, False, True,
    ]  # fmt: skip
    out = tmp_path / "out.jsonl"
    stats = asyncio.run(run_plan(rubric(by_number), plan_run(rows, out)))
    assert (stats.judged, stats.failed) == (7, 3)
    records = latest_results(out)
    assert sorted(records) == list(range(7))  # no row lost, none shifted
    assert records[1]["error"] == {
        "kind": "input",
        "type": "UnreadableRow",
        "message": records[1]["error"]["message"],
    }
    assert records[1]["error"]["message"].startswith("d.jsonl: line 2: invalid JSON")
    assert records[3]["error"]["message"] == "d.jsonl: line 4: expected a JSON object, got list"
    assert records[6]["error"]["message"].startswith("d.jsonl: line 8: invalid JSON")
    for index, number in ((0, 0), (2, 1), (4, 2), (5, 3)):  # each good row judged as itself
        assert records[index]["criteria"] == {"q": float(1 + number % 5)}
    assert plan_run(read_rows(data), out).pending == []  # resumes like any failed row
    data.write_bytes(data.read_bytes().replace(b"{oops", good[3].encode()))  # line 2 fixed
    assert [i for i, _ in plan_run(read_rows(data), out).pending] == [1]  # only that row


def test_csv_rows_with_the_wrong_field_count_are_error_records(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text(
        "prompt,response\nquestion 0,answer 0\nquestion 1,answer 1,extra\n\n"
        "question 2\nquestion 3,answer 3\n"
    )
    out = tmp_path / "out.jsonl"
    asyncio.run(run_plan(rubric(by_number), plan_run(read_rows(data), out)))
    records = latest_results(out)
    assert sorted(records) == [0, 1, 2, 3]
    assert records[1]["error"]["message"] == (
        "d.csv: row 2 (line 3): 3 fields where the header has 2"
    )
    assert records[2]["error"]["message"] == (
        "d.csv: row 3 (line 5): 1 fields where the header has 2"
    )
    assert records[3]["ok"] and records[3]["criteria"] == {"q": 4.0}  # not shifted


def test_parquet_reader(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"prompt": ["p1", "p2"], "response": ["r1", "r2"]}), path)
    assert list(read_rows(path)) == [
        {"prompt": "p1", "response": "r1"},
        {"prompt": "p2", "response": "r2"},
    ]


def test_saved_and_hub_datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    data = datasets.Dataset.from_list([{"prompt": "p", "response": "r"}])
    data.save_to_disk(str(tmp_path / "saved"))
    assert list(read_rows(tmp_path / "saved")) == [{"prompt": "p", "response": "r"}]
    datasets.DatasetDict({"test": data}).save_to_disk(str(tmp_path / "dict"))
    with pytest.raises(ConfigurationError, match=r"choose a split with --split \(splits: test\)"):
        list(read_rows(tmp_path / "dict"))
    assert list(read_rows(tmp_path / "dict", split="test")) == [{"prompt": "p", "response": "r"}]

    calls: list[tuple[str, str]] = []

    def fake_load(name: str, split: str) -> Any:  # no network in tests
        calls.append((name, split))
        return data

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    assert list(read_rows("hf:org/set", split="validation")) == [{"prompt": "p", "response": "r"}]
    assert list(read_rows("hf:org/other")) == [{"prompt": "p", "response": "r"}]
    with pytest.raises(ConfigurationError, match="no such file"):
        read_rows("org/unprefixed")
    assert calls == [("org/set", "validation"), ("org/other", "train")]


# -- plans and runs --------------------------------------------------------------------------------


async def test_run_writes_one_line_per_row_then_resume_skips(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    plan = plan_run(ROWS, out, judge_id="j1")
    assert (plan.total, len(plan.pending), plan.skipped) == (6, 6, 0)
    stats = await run_plan(rubric(by_number), plan)
    assert (stats.judged, stats.failed) == (6, 0)
    records = lines(out)
    assert sorted(r["index"] for r in records) == list(range(6))
    for record in records:
        assert record["ok"] is True
        assert record["id"] == f"r{record['index']}"
        assert record["criteria"] == {"q": float(1 + record["index"] % 5)}
        assert record["usage"]["requests"] == 1
        assert "raw" not in record
        assert len(record["input_hash"]) == 16

    again = plan_run(ROWS, out, judge_id="j1")
    assert (again.skipped, again.pending, again.changed) == (6, [], 0)

    edited = [dict(r) for r in ROWS]
    edited[2]["response"] = "answer 7"
    changed = plan_run(edited, out, judge_id="j1")
    assert (changed.skipped, changed.changed, [i for i, _ in changed.pending]) == (5, 1, [2])
    other_judge = plan_run(ROWS, out, judge_id="j2")
    assert len(other_judge.pending) == 6  # a different judge re-judges everything


async def test_lines_are_written_as_rows_finish(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    first_done = asyncio.Event()
    seen_in_file: list[list[int]] = []

    async def handler(request: ChatRequest) -> str:
        number = int(response_of(request).split()[-1])
        if number == 0:
            await first_done.wait()  # row 0 finishes last
        return verdict(3)

    def on_record(record: dict[str, Any]) -> None:
        seen_in_file.append([r["index"] for r in lines(out)])  # already on disk, flushed
        first_done.set()

    await run_plan(rubric(handler), plan_run(ROWS[:3], out), on_record=on_record)
    order = [r["index"] for r in lines(out)]
    assert order[-1] == 0 and sorted(order) == [0, 1, 2]
    assert seen_in_file == [order[:1], order[:2], order[:3]]


async def test_interruption_keeps_finished_lines_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    never = asyncio.Event()

    async def handler(request: ChatRequest) -> str:
        if response_of(request) == "answer 4":
            await never.wait()  # in flight when the run is interrupted
        return verdict(2)

    five_written = asyncio.Event()

    def on_record(record: dict[str, Any]) -> None:
        if len(latest_results(out)) == 5:
            five_written.set()

    plan = plan_run(ROWS, out)
    run = asyncio.create_task(run_plan(rubric(handler), plan, window=6, on_record=on_record))
    await five_written.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert sorted(latest_results(out)) == [0, 1, 2, 3, 5]
    with out.open("a") as handle:
        handle.write('{"index": 4, "input_ha')  # a kill in the middle of a write
    resumed = plan_run(ROWS, out)
    assert [i for i, _ in resumed.pending] == [4] and resumed.skipped == 5
    await run_plan(rubric(by_number), resumed)
    assert sorted(current_results(resumed)) == list(range(6))
    assert all(json.loads(line) for line in out.read_text().splitlines()[-1:])


async def test_row_failures_are_recorded_and_retried_on_request(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    rows = [*ROWS[:3], {"id": "x", "prompt": "p", "response": None}]

    def handler(request: ChatRequest) -> str:
        return "not json at all" if response_of(request) == "answer 1" else verdict(4)

    stats = await run_plan(rubric(handler), plan_run(rows, out))
    assert (stats.judged, stats.failed) == (4, 2)
    records = latest_results(out)
    assert records[1]["ok"] is False
    assert records[1]["error"]["kind"] == "parse"
    assert records[1]["error"]["type"] == "ParseError"
    assert records[3]["error"]["kind"] == "input"
    assert plan_run(rows, out).pending == []
    retry = plan_run(rows, out, retry_failed=True)
    assert ([i for i, _ in retry.pending], retry.retried) == ([1, 3], 2)
    await run_plan(rubric(lambda r: verdict(5)), retry)
    assert latest_results(out)[1]["ok"] is True  # the newest line per index wins


async def test_run_level_errors_stop_without_recording(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"

    def handler(request: ChatRequest) -> str:
        raise AuthenticationError("bad key", status_code=401, provider="openai", model="m")

    with pytest.raises(RunAborted, match="bad key"):
        await run_plan(rubric(handler), plan_run(ROWS, out))
    assert latest_results(out) == {}
    assert len(plan_run(ROWS, out).pending) == 6  # fix the key, rerun: everything is judged


def test_missing_column_is_named_with_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"no column 'answer' .*--response-column"):
        plan_run(ROWS, tmp_path / "o.jsonl", columns=Columns(response="answer"))
    with pytest.raises(ConfigurationError, match="--a-column"):
        plan_run(ROWS, tmp_path / "o.jsonl", mode="compare")


def test_limit(tmp_path: Path) -> None:
    plan = plan_run(ROWS, tmp_path / "o.jsonl", limit=2)
    assert plan.total == 2 and len(plan.pending) == 2


async def test_sort_results_orders_and_drops_stale_lines(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    await run_plan(rubric(by_number), plan_run(ROWS, out))
    edited = [dict(r) for r in ROWS]
    edited[0]["response"] = "answer 10"
    plan = plan_run(edited, out)
    await run_plan(rubric(by_number), plan)
    assert len(out.read_text().splitlines()) == 7
    assert sort_results(plan) == 6
    records = lines(out)
    assert [r["index"] for r in records] == list(range(6))
    assert records[0]["criteria"] == {"q": 1.0}  # 1 + 10 % 5: the new line, not the stale one


async def test_compare_mode_records_preferences(tmp_path: Path) -> None:
    out = tmp_path / "pairs.jsonl"
    rows = [{"prompt": "p", "response_a": "good", "response_b": "bad"}] * 2

    def handler(request: ChatRequest) -> str:
        text = request.messages[-1].content
        first = text.index("<<<RESPONSE_A")
        winner = "A" if "good" in text[first : text.index("<<<END RESPONSE_A")] else "B"
        return json.dumps({"rationale": "good beats bad", "winner": winner})

    judge = PreferenceJudge(FunctionClient(handler))
    stats = await run_plan(judge, plan_run(rows, out, mode="compare"))
    assert stats.judged == 2
    record = latest_results(out)[0]
    assert (record["winner"], record["prob_a"], record["consistent"]) == ("A", 1.0, True)
    summary = summarize(latest_results(out).values(), 2)
    assert summary.distribution == {"A": 2}
    assert summary.consistency == pytest.approx(1.0)


async def test_judge_plan_checks_the_mode_and_starts_nothing_when_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "o.jsonl"
    with pytest.raises(ConfigurationError, match="rftjudge compare"):
        await judge_plan(DEFAULT_PREFERENCE_JUDGE, plan_run(ROWS, out))

    def no_session(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no judge may be opened for a finished plan")

    monkeypatch.setattr("rftjudge.scoring.ajudge_session", no_session)
    done = plan_run([], out)
    assert (await judge_plan(DEFAULT_PREFERENCE_JUDGE, done)).judged == 0


async def test_judge_plan_runs_a_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib

    @contextlib.asynccontextmanager
    async def session(config: JudgeConfig, **kwargs: Any) -> Any:
        yield rubric(by_number)

    monkeypatch.setattr("rftjudge.scoring.ajudge_session", session)
    config = JudgeConfig(criteria=(Criterion(name="q", description="quality"),))
    stats = await judge_plan(config, plan_run(ROWS, tmp_path / "o.jsonl"), announce=print)
    assert stats.judged == 6


# -- summaries -------------------------------------------------------------------------------------


def test_summary_of_scores_failures_tokens_and_cost() -> None:
    usage = {"input_tokens": 1000, "output_tokens": 100, "requests": 1}
    records = [
        {"index": 0, "ok": True, "score": 0.0, "normalized": {"q": 0.0}, "usage": usage},
        {"index": 1, "ok": True, "score": 0.5, "normalized": {"q": 0.5}, "usage": usage},
        {"index": 2, "ok": True, "score": 1.0, "normalized": {"q": 1.0}, "usage": usage},
        {"index": 3, "ok": False, "error": {"kind": "parse"}},
        {"index": 4, "ok": False, "error": {"kind": "timeout"}},
    ]
    summary = summarize(records, rows=6, price=Price(input=2.0, output=10.0))
    assert (summary.judged, summary.failed, summary.missing) == (3, 2, 1)
    assert summary.mean == pytest.approx(0.5)
    assert summary.distribution == {"0": 1, "0.5": 1, "1": 1}
    assert summary.criteria_means == {"q": pytest.approx(0.5)}
    assert summary.failures == {"parse": 1, "timeout": 1}
    assert summary.parse_failure_rate == pytest.approx(1 / 5)
    assert (summary.input_tokens, summary.output_tokens, summary.requests) == (3000, 300, 3)
    assert summary.cost == pytest.approx((3000 * 2.0 + 300 * 10.0) / 1e6)
    text = "\n".join(summary.lines())
    assert "mean score: 0.5000" in text and "failures by kind: parse 1, timeout 1" in text
    assert "cost: $0.0090" in text and "not judged yet: 1" in text


def test_summary_bins_continuous_scores() -> None:
    records = [{"ok": True, "score": i / 20} for i in range(20)]
    distribution = summarize(records, rows=20).distribution
    assert sum(distribution.values()) == 20
    assert next(iter(distribution)) == "0.0-0.1" and distribution["0.9-1.0"] == 2
