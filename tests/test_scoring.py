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
    ListwiseJudge,
    PreferenceJudge,
    RubricJudge,
)
from rftjudge._content import content_text
from rftjudge.app.config import DEFAULT_PREFERENCE_JUDGE, JudgeConfig, Price
from rftjudge.app.scoring import (
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

from support.listwise import ListwiseScript

ROWS = [
    {"id": f"r{i}", "prompt": f"question {i}", "response": f"answer {i}", "reference": None}
    for i in range(6)
]


def response_of(request: ChatRequest) -> str:
    text = "\n".join(content_text(m.content) for m in request.messages)  # re-asks append messages
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
    with pytest.raises(ImportError, match=r"hf:org/name: .*needs the datasets package"):
        list(read_rows("hf:org/name"))  # the Hub only for an explicit hf: prefix
    with pytest.raises(ConfigurationError, match="hf: needs a dataset name"):
        read_rows("hf:")


def test_unreadable_jsonl_lines_become_error_records_at_their_index(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    good = [json.dumps({"prompt": f"question {i}", "response": f"answer {i}"}) for i in range(4)]
    data.write_bytes(
        "\n".join([good[0], "{oops", good[1], "[1, 2]", good[2], "", good[3]]).encode()
        + b'\n{"prompt": "\xff"}\n'  # not UTF-8
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

    monkeypatch.setattr("rftjudge.app.scoring.ajudge_session", no_session)
    done = plan_run([], out)
    assert (await judge_plan(DEFAULT_PREFERENCE_JUDGE, done)).judged == 0


async def test_judge_plan_runs_a_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib

    @contextlib.asynccontextmanager
    async def session(config: JudgeConfig, **kwargs: Any) -> Any:
        yield rubric(by_number)

    monkeypatch.setattr("rftjudge.app.scoring.ajudge_session", session)
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


# -- the results file: nothing paid for is lost -----------------------------------------------------


async def test_a_line_cut_inside_a_multibyte_character_does_not_stop_the_resume(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.jsonl"
    await run_plan(rubric(lambda r: verdict(3).replace("gave", "gave é →")), plan_run(ROWS, out))
    written = out.read_bytes()
    assert written.isascii()  # ensure_ascii: a cut can never split a character again
    assert latest_results(out)[0]["rationale"] == "gave é → 3"
    # a file written by another tool (or an older rftjudge) whose last line was cut mid-character
    cut = '{"index": 5, "ok": true, "rationale": "é'.encode()[:-1]
    out.write_bytes(
        b"".join(line for line in written.splitlines(True) if b'"index": 5' not in line) + cut
    )
    resumed = plan_run(ROWS, out)  # the old code raised UnicodeDecodeError here
    assert [i for i, _ in resumed.pending] == [5]
    await run_plan(rubric(by_number), resumed)
    assert sorted(current_results(resumed)) == list(range(6))


async def test_a_full_disk_keeps_the_finished_records_and_stops_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.jsonl"
    real_write = os.write
    records_written = 0

    def full_after_two(fd: int, data: Any) -> int:
        nonlocal records_written
        if bytes(data[:10]) == b'{"index": ':  # a results line, not pytest's own output
            records_written += 1
            if records_written > 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_after_two)
    with pytest.raises(OutputFailed, match=r"cannot write .*out.jsonl: No space left on device"):
        await run_plan(rubric(by_number), plan_run(ROWS, out, judge_id="j"), window=1)
    monkeypatch.setattr(os, "write", real_write)
    kept = latest_results(out)
    assert sorted(kept) == [0, 1] and all(r["ok"] for r in kept.values())
    resumed = plan_run(ROWS, out, judge_id="j")
    assert resumed.skipped == 2 and [i for i, _ in resumed.pending] == [2, 3, 4, 5]


@pytest.mark.parametrize("mode", [0o644, 0o640])
async def test_sorted_keeps_the_file_mode(tmp_path: Path, mode: int) -> None:
    out = tmp_path / "out.jsonl"
    plan = plan_run(ROWS, out)
    await run_plan(rubric(by_number), plan)
    os.chmod(out, mode)
    assert sort_results(plan) == 6
    assert stat.S_IMODE(out.stat().st_mode) == mode  # mkstemp's 0600 before
    assert [r["index"] for r in lines(out)] == list(range(6))
    assert sorted(os.listdir(tmp_path)) == ["out.jsonl"]  # no temporary file left


# -- group mode ------------------------------------------------------------------------------------


GROUPED = [
    {"id": "a1", "prompt": "p1", "response": "bad"},
    {"id": "a2", "prompt": "p1", "response": "good"},
    {"id": "a3", "prompt": "p1", "response": "fine"},
    {"id": "b1", "prompt": "p2", "response": "good"},
    {"id": "b2", "prompt": "p2", "response": "bad"},
    {"id": "c1", "prompt": "p1", "response": "good"},  # p1 again, not consecutive: a new group
]


def listwise(script: ListwiseScript) -> ListwiseJudge:
    return ListwiseJudge(FunctionClient(script), permutations=1)


async def test_group_mode_judges_consecutive_rows_of_a_prompt_together(tmp_path: Path) -> None:
    script = ListwiseScript({"bad": 1, "fine": 5, "good": 9})
    out = tmp_path / "out.jsonl"
    plan = plan_run(GROUPED, out, grouped=True, judge_id="j")
    assert plan.groups == [("1", [0, 1, 2]), ("2", [3, 4]), ("3", [5])]
    stats = await run_plan(listwise(script), plan)
    assert (stats.judged, stats.failed) == (6, 0)
    assert sorted(len(items) for items in script.seen) == [1, 2, 3]  # one request per group
    records = latest_results(out)
    assert [records[i]["group"] for i in range(6)] == ["1", "1", "1", "2", "2", "3"]
    assert [records[i]["score"] for i in range(5)] == pytest.approx([0.1, 0.9, 0.5, 0.9, 0.1])
    assert records[1]["id"] == "a2" and records[0]["group_size"] == 3
    assert sum("usage" in records[i] for i in range(3)) == 1  # the group's tokens, once
    summary = summarize(records.values(), 6)
    assert summary.requests == 3 and "0.9-1.0" in summary.distribution

    assert plan_run(GROUPED, out, grouped=True, judge_id="j").pending == []
    edited = [dict(r) for r in GROUPED]
    edited[4]["response"] = "fine"  # one row changed: its whole group is judged again
    again = plan_run(edited, out, grouped=True, judge_id="j")
    assert again.groups == [("2", [3, 4])]
    assert (again.skipped, again.changed) == (4, 2)


async def test_group_mode_by_column_and_rows_that_cannot_join(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        {"g": "x", "prompt": "p", "response": "bad"},
        {"g": "y", "prompt": "q", "response": "good"},
        {"g": "x", "prompt": "p", "response": "good"},
        {"g": "x", "prompt": "p", "response": None},
        BadRow("d.jsonl: line 5: invalid JSON", "{oops"),
        {"g": "y", "prompt": "other", "response": "fine"},
    ]
    out = tmp_path / "out.jsonl"
    plan = plan_run(rows, out, grouped=True, columns=Columns(group="g"))
    assert plan.groups == [("x", [0, 2, 3]), ("y", [1, 5]), ("row 4", [4])]
    await run_plan(listwise(ListwiseScript({"bad": 1, "fine": 5, "good": 9})), plan)
    records = latest_results(out)
    assert (records[0]["score"], records[2]["score"]) == pytest.approx((0.1, 0.9))
    assert records[3]["error"]["type"] == "MissingColumn"
    assert records[4]["error"]["message"] == "d.jsonl: line 5: invalid JSON"
    assert {records[i]["error"]["type"] for i in (1, 5)} == {"MixedPrompts"}


def test_group_mode_needs_a_group_judge() -> None:
    from rftjudge.app.scoring import check_judge_type

    listwise_config = JudgeConfig(type="listwise")
    check_judge_type(listwise_config, "score", grouped=True)
    with pytest.raises(ConfigurationError, match="group mode needs a group judge"):
        check_judge_type(
            JudgeConfig(criteria=(Criterion(name="q", description="d"),)), "score", grouped=True
        )
    with pytest.raises(ConfigurationError, match="score groups of rows with `rftjudge score`"):
        check_judge_type(listwise_config, "compare")


def test_summary_bins_probability_weighted_scores_instead_of_listing_each() -> None:
    scores = [0.17, 0.1725, 0.81, 0.8125, 0.83, 0.5, 0.52, 0.9999]
    records = [{"ok": True, "score": s, "scoring": "expected", "samples": 1} for s in scores]
    assert summarize(records, rows=8).distribution == {
        "0.1-0.2": 2,
        "0.5-0.6": 2,
        "0.8-0.9": 3,
        "0.9-1.0": 1,
    }  # not eight decimals with a count of 1 each
    sampled = [{"ok": True, "score": s, "scoring": "sampled"} for s in (0.0, 0.25, 0.25, 1.0)]
    assert summarize(sampled, rows=4).distribution == {"0": 1, "0.25": 2, "1": 1}
