"""The ``rftjudge`` command, end to end in-process (judge HTTP mocked with respx)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from click.testing import CliRunner, Result

from rftjudge.app.cli import app, main
from rftjudge.calibration import cohen_kappa, spearman

from support.payloads import BASE, CHAT, completion

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "data" / "sample.jsonl"
LABELLED = ROOT / "examples" / "data" / "labelled.jsonl"
PAIRS = ROOT / "examples" / "data" / "pairs.jsonl"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def judge_file(tmp_path: Path) -> Path:
    path = tmp_path / "judge.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            provider: openai
            model: test-judge
            base_url: {BASE}
            criteria: [{{name: helpfulness, description: 'Does it help?'}}]
            price: {{input: 1.0, output: 2.0}}
            """
        )
    )
    return path


@pytest.fixture
def preference_file(tmp_path: Path) -> Path:
    path = tmp_path / "pref.yaml"
    path.write_text(f"type: preference\nmodel: test-judge\nbase_url: {BASE}\n")
    return path


def fenced(body: dict[str, Any], label: str) -> str:
    text = body["messages"][-1]["content"]
    match = re.search(rf"<<<{label} \w+>>>\n(.*?)\n<<<END {label}", text, re.S)
    assert match is not None
    return match.group(1)


def rubric_reply(request: httpx.Request) -> httpx.Response:
    """A judge that likes long answers: 1 + len // 20, capped at 5."""
    response = fenced(json.loads(request.content), "RESPONSE")
    score = min(5, 1 + len(response) // 20)
    return httpx.Response(
        200, json=completion({"rationale": "length", "scores": {"helpfulness": score}})
    )


def preference_reply(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    a, b = fenced(body, "RESPONSE_A"), fenced(body, "RESPONSE_B")
    winner = "A" if len(a) > len(b) else "B" if len(b) > len(a) else "tie"
    return httpx.Response(200, json=completion({"rationale": "longer", "winner": winner}))


@pytest.fixture
def rubric_api(api: respx.MockRouter) -> respx.MockRouter:
    api.post(CHAT).mock(side_effect=rubric_reply)
    return api


@pytest.fixture
def chdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A copy of the sample data in a folder of its own: results default to next to the data."""
    folder = tmp_path / "data"
    folder.mkdir()
    copy = folder / SAMPLE.name
    copy.write_bytes(SAMPLE.read_bytes())
    return copy


def test_help_and_version() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("score", "compare", "calibrate", "local", "serve"):
        assert command in result.output
    assert "0.1.0" in run("--version").output
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0


def test_console_script_is_declared() -> None:
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("rftjudge") == "rftjudge.app.cli:main"


def test_import_rftjudge_does_not_load_cli_dependencies() -> None:
    """(click and rich are left out: httpx imports them for its own CLI when they are installed.)"""
    code = (
        "import sys, rftjudge, rftjudge.app.config, rftjudge.app.scoring, rftjudge.calibration;"
        "print([m for m in ('yaml', 'matplotlib', 'rftjudge.app.cli', 'llama_cpp', 'pyarrow', "
        "'datasets') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_score_writes_resumes_and_summarises(
    rubric_api: respx.MockRouter, judge_file: Path, chdir: Path, sample: Path
) -> None:
    result = run("score", sample, "--judge", judge_file)
    assert result.exit_code == 0, result.output
    out = sample.parent / "sample.scores.jsonl"  # next to the data, not in the working directory
    assert f"results: {out}" in result.stdout
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["index"] for r in records) == list(range(8))
    assert {r["id"] for r in records} == {f"s{i}" for i in range(1, 9)}
    assert all(r["ok"] for r in records)
    assert "rows: 8  judged: 8  failed: 0" in result.stdout
    calls = rubric_api.calls.call_count  # 7: a content-free answer is failed without asking
    assert calls >= 7
    assert f"tokens: {50 * calls} in, {10 * calls} out ({calls} requests)" in result.stdout
    assert f"cost: ${(50 * calls * 1.0 + 10 * calls * 2.0) / 1e6:.4f}" in result.stdout

    again = run("score", sample, "--judge", judge_file, "--sorted", "--json")
    assert again.exit_code == 0
    assert rubric_api.calls.call_count == calls  # nothing judged twice
    assert "8 rows already judged (skipped)" in again.stderr
    summary = json.loads(again.stdout)
    assert summary["judged"] == 8 and summary["failed"] == 0
    assert summary["results"] == str(out)
    assert [json.loads(line)["index"] for line in out.read_text().splitlines()] == list(range(8))


def test_score_with_custom_columns_output_and_limit(
    rubric_api: respx.MockRouter, judge_file: Path, tmp_path: Path
) -> None:
    data = tmp_path / "d.csv"
    data.write_text("q,a\nWhat?,An answer that is long enough to score well\nWhy?,No\n")
    out = tmp_path / "o" / "res.jsonl"
    result = run(
        "score", data, "--judge", judge_file, "--prompt-column", "q", "--response-column", "a",
        "-o", out, "--limit", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["criteria"] == {"helpfulness": 3.0}


def test_score_errors_are_one_clear_line(judge_file: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["score", str(SAMPLE), "--judge", str(judge_file), "--response-column", "answer"]
    )
    assert result.exit_code == 1
    assert "Error: the data has no column 'answer'" in result.stderr
    assert "Traceback" not in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("criteria: [{name: q, description: d, weight: 0}]\n")
    result = CliRunner().invoke(app, ["score", str(SAMPLE), "--judge", str(bad)])
    assert result.exit_code == 1
    assert f"Error: {bad}: field `criteria.0.weight`" in result.stderr


def test_run_level_failure_stops_and_keeps_rows_unrecorded(
    api: respx.MockRouter, judge_file: Path, tmp_path: Path
) -> None:
    api.post(CHAT).mock(
        return_value=httpx.Response(401, json={"error": {"message": "invalid key"}})
    )
    out = tmp_path / "o.jsonl"
    result = CliRunner().invoke(
        app, ["score", str(SAMPLE), "--judge", str(judge_file), "-o", str(out)]
    )
    assert result.exit_code == 1
    assert "invalid key" in result.stderr and "run the same command again" in result.stderr
    recorded = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    assert all(r["ok"] for r in recorded)  # only rows that needed no request (the guarded one)
    assert len(recorded) < 8


def test_interrupt_exits_130_with_resume_hint(
    judge_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("rftjudge.app._cli_run.judge_plan", interrupted)
    result = CliRunner().invoke(
        app, ["score", str(SAMPLE), "--judge", str(judge_file), "-o", str(tmp_path / "o.jsonl")]
    )
    assert result.exit_code == 130
    assert "interrupted: 0 of 8 rows" in result.stderr and "to resume" in result.stderr


class FakeLocalServer:
    """Replaces LocalJudgeServer: 'serves' at the respx-mocked BASE."""

    instances: list[FakeLocalServer] = []  # noqa: RUF012 - test bookkeeping

    def __init__(self, model: Path | None = None, **kwargs: Any) -> None:
        self.model = model
        self.kwargs = kwargs
        self.base_url = BASE
        self.alias = "local-judge"
        self.api_key = kwargs.get("api_key")
        self.port = httpx.URL(BASE).port
        self.model_path = model or Path("SmolLM2-135M-Instruct.Q4_1.gguf")
        self.n_parallel = kwargs.get("n_parallel", 2)  # the real server's default
        self.stopped = False
        FakeLocalServer.instances.append(self)

    def __enter__(self) -> FakeLocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped = True

    def wait(self) -> int:
        return 0


@pytest.fixture
def fake_local(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeLocalServer]]:
    FakeLocalServer.instances = []
    monkeypatch.setattr("rftjudge.app.local.LocalJudgeServer", FakeLocalServer)
    yield FakeLocalServer


PROBE = "http://127.0.0.1:8089/v1/models"  # where `rftjudge local` would be serving


def test_score_without_provider_uses_the_local_judge(
    rubric_api: respx.MockRouter, fake_local: type[FakeLocalServer], chdir: Path, sample: Path
) -> None:
    rubric_api.get(PROBE).mock(side_effect=httpx.ConnectError("nothing there"))
    result = run("score", sample, "--judge", ROOT / "examples" / "judges" / "helpfulness.yaml")
    assert result.exit_code == 0, result.output
    assert "no judge provider configured: using the offline local judge" in result.stderr
    (server,) = fake_local.instances
    assert server.stopped
    posts = [c.request for c in rubric_api.calls if c.request.method == "POST"]
    body = json.loads(posts[0].content)
    assert body["response_format"]["type"] == "json_schema"  # llama.cpp's server
    assert "max_tokens" in body
    # the server this command started has a per-launch key, and every request sends it
    assert server.kwargs["api_key"] and len(server.kwargs["api_key"]) >= 24
    assert {
        c.request.headers["authorization"] for c in rubric_api.calls if c.request.method == "POST"
    } == {f"Bearer {server.kwargs['api_key']}"}
    # no --judge at all: the bundled default rubric, on the local judge too
    result = run("score", SAMPLE, "-o", chdir / "default.jsonl")
    assert result.exit_code == 0 and len(fake_local.instances) == 2


def test_a_running_rftjudge_local_is_reused(
    rubric_api: respx.MockRouter, fake_local: type[FakeLocalServer], chdir: Path, sample: Path
) -> None:
    rubric_api.get(PROBE).mock(
        return_value=httpx.Response(200, json={"data": [{"id": "local-judge"}]})
    )
    rubric_api.post("http://127.0.0.1:8089/v1/chat/completions").mock(side_effect=rubric_reply)
    result = run("score", sample, "--limit", "2")
    assert result.exit_code == 0, result.output
    assert "using the local judge at http://127.0.0.1:8089/v1" in result.stderr
    assert fake_local.instances == []  # no second server started


def test_compare(api: respx.MockRouter, preference_file: Path, tmp_path: Path) -> None:
    api.post(CHAT).mock(side_effect=preference_reply)
    out = tmp_path / "prefs.jsonl"
    result = run("compare", PAIRS, "--judge", preference_file, "-o", out, "--sorted")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in records] == list(range(6))
    assert records[0]["winner"] == "B"  # "Rome." vs "Milan.": the longer one
    assert all(r["consistent"] for r in records)  # a length judge has no position bias
    assert "position consistency: 100.0%" in result.stdout
    assert api.calls.call_count == 12  # both orders of each pair


def test_compare_refuses_a_rubric_judge(
    rubric_api: respx.MockRouter, judge_file: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app, ["compare", str(PAIRS), "--judge", str(judge_file), "-o", str(tmp_path / "o.jsonl")]
    )
    assert result.exit_code == 1 and "use `rftjudge score`" in result.stderr


def test_calibrate_writes_report_and_metrics(
    rubric_api: respx.MockRouter, judge_file: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "cal"
    result = run(
        "calibrate", LABELLED, "--judge", judge_file, "--label", "human", "--report-dir", folder
    )
    assert result.exit_code == 0, result.output
    assert f"report: {folder / 'report.md'}" in result.stdout
    assert "compared: 24 of 24 rows" in result.stdout
    for name in ("accuracy", "cohen_kappa", "weighted_kappa", "spearman", "pearson"):
        assert re.search(rf"^{name}: -?\d\.\d{{3}}$", result.stdout, re.M), name
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["agreement"]["n"] == 24 and metrics["judged"] == 24
    # the report joins each judgment with its own row's label
    labels = [json.loads(line)["human"] for line in LABELLED.read_text().splitlines()]
    judged = {
        r["index"]: r["criteria"]["helpfulness"]
        for r in map(json.loads, (folder / "judgments.jsonl").read_text().splitlines())
    }
    preds = [judged[i] for i in range(24)]
    assert metrics["agreement"]["spearman"] == pytest.approx(spearman(labels, preds))
    assert metrics["agreement"]["kappa"] == pytest.approx(
        cohen_kappa(labels, preds, [1, 2, 3, 4, 5])
    )
    assert metrics["agreement"]["spearman"] > 0  # longer answers are the better ones here
    assert (folder / "confusion.png").exists() and (folder / "scores.png").exists()
    assert "## Confusion matrix" in (folder / "report.md").read_text()
    calls = rubric_api.calls.call_count
    assert run("calibrate", LABELLED, "--judge", judge_file, "--label", "human",
               "--report-dir", folder).exit_code == 0  # fmt: skip
    assert rubric_api.calls.call_count == calls  # judgments are reused


def test_calibrate_preference_and_errors(
    api: respx.MockRouter, preference_file: Path, judge_file: Path, tmp_path: Path
) -> None:
    api.post(CHAT).mock(side_effect=preference_reply)
    result = run("calibrate", PAIRS, "--judge", preference_file, "--label", "human",
                 "--report-dir", tmp_path / "p", "--no-plots")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "position_consistency: 1.000" in result.stdout
    assert not (tmp_path / "p" / "confusion.png").exists()
    missing = CliRunner().invoke(
        app, ["calibrate", str(LABELLED), "--judge", str(judge_file), "--label", "stars"]
    )
    assert missing.exit_code == 1 and "no label column 'stars'" in missing.stderr


def test_serve_openrlhf_wires_the_judge(judge_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, str, int]] = []

    def fake_serve(judge: Any, host: str, port: int, **kwargs: Any) -> None:
        calls.append((judge, host, port))

    monkeypatch.setattr("rftjudge.integrations.openrlhf.serve", fake_serve)
    result = run(
        "serve", "openrlhf", "--judge", judge_file, "--host", "127.0.0.1", "--port", "5123"
    )
    assert result.exit_code == 0, result.output
    ((judge, host, port),) = calls
    assert (host, port) == ("127.0.0.1", 5123)
    assert [c.name for c in judge.criteria] == ["helpfulness"]


def test_local_prints_the_base_url(fake_local: type[FakeLocalServer], tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    result = run(
        "local", "--model", model, "--port", "0", "--n-ctx", "2048", "--repeat-penalty", "1.05"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == BASE
    (server,) = fake_local.instances
    assert server.model == model
    assert server.kwargs == {
        "host": "127.0.0.1",
        "port": None,
        "any_port_if_taken": True,
        "n_ctx": 2048,
        "repeat_penalty": 1.05,
    }
    assert f'rftjudge.client("llamacpp:local-judge@{BASE}")' in result.stderr
    assert "provider: llamacpp" in result.stderr


# -- errors a user can cause: one line, a traceback only with --debug ------------------------------


def one_error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ")
    return line


def test_a_missing_data_path_is_one_line_naming_it(
    judge_file: Path, chdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # a Hub lookup would be another error
    line = one_error_line(
        CliRunner().invoke(app, ["score", "sampel.jsonl", "--judge", str(judge_file)])
    )
    assert line == "Error: sampel.jsonl: no such file or directory"
    line = one_error_line(
        CliRunner().invoke(app, ["score", "org/data", "--judge", str(judge_file)])
    )
    assert (
        "org/data: no such file or directory (a Hugging Face Hub dataset is written hf:org/data)"
        in line
    )
    line = one_error_line(
        CliRunner().invoke(
            app, ["calibrate", "nope.csv", "--judge", str(judge_file), "--label", "h"]
        )
    )
    assert line == "Error: nope.csv: no such file or directory"
    assert [p.name for p in chdir.iterdir()] == ["judge.yaml"]  # nothing written


def test_unexpected_errors_are_one_line_unless_debug(
    judge_file: Path, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom\nand a second line")

    monkeypatch.setattr("rftjudge.app._cli_run.plan_run", broken)
    args = ["score", str(sample), "--judge", str(judge_file)]
    line = one_error_line(CliRunner().invoke(app, args))
    assert line == (
        "Error: RuntimeError: boom and a second line "
        "(rerun as `rftjudge --debug ...` for the traceback)"
    )
    debug = CliRunner().invoke(app, ["--debug", *args])
    assert isinstance(debug.exception, RuntimeError)
    monkeypatch.setenv("RFTJUDGE_DEBUG", "1")
    assert isinstance(CliRunner().invoke(app, args).exception, RuntimeError)


def test_run_level_failure_is_one_line(
    api: respx.MockRouter, judge_file: Path, sample: Path
) -> None:
    api.post(CHAT).mock(
        return_value=httpx.Response(401, json={"error": {"message": "invalid key"}})
    )
    line = one_error_line(
        CliRunner().invoke(app, ["score", str(sample), "--judge", str(judge_file)])
    )
    assert "invalid key" in line and "run the same command again to resume" in line


def test_a_full_disk_keeps_records_and_stops_with_one_line(
    rubric_api: respx.MockRouter, judge_file: Path, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    real_write = os.write
    written = 0

    def full_after_three(fd: int, data: Any) -> int:
        nonlocal written
        if bytes(data[:10]) == b'{"index": ':
            written += 1
            if written > 3:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_after_three)
    line = one_error_line(
        CliRunner().invoke(app, ["score", str(sample), "--judge", str(judge_file)])
    )
    assert "No space left on device" in line and "results written before are kept" in line
    monkeypatch.setattr(os, "write", real_write)
    out = sample.parent / "sample.scores.jsonl"
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(kept) == 3 and all(r["ok"] for r in kept)
    again = run("score", sample, "--judge", judge_file)
    assert again.exit_code == 0 and "3 rows already judged (skipped)" in again.stderr


# -- data handling -------------------------------------------------------------------------------


def test_bad_jsonl_lines_and_csv_rows_are_error_records_not_the_end_of_the_run(
    rubric_api: respx.MockRouter, judge_file: Path, tmp_path: Path
) -> None:
    data = tmp_path / "d.jsonl"
    lines = SAMPLE.read_text().splitlines()
    data.write_text("\n".join([lines[0], '{"prompt": "cut', *lines[1:3]]) + "\n")
    result = run("score", data, "--judge", judge_file, "--sorted")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "d.scores.jsonl").read_text().splitlines()]
    assert [r["index"] for r in records] == [0, 1, 2, 3]
    assert records[1]["error"]["message"].startswith("d.jsonl: line 2: invalid JSON")
    assert [r["id"] for r in records if r["ok"]] == ["s1", "s2", "s3"]
    assert "failed: 1" in result.stdout and "failures by kind: input 1" in result.stdout

    csv = tmp_path / "c.csv"
    csv.write_text("prompt,response\nWhat?,A long enough answer to score\nWhy?,No,extra\n")
    result = run("score", csv, "--judge", judge_file, "--sorted")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "c.scores.jsonl").read_text().splitlines()]
    assert (
        records[1]["error"]["message"] == "c.csv: row 2 (line 3): 3 fields where the header has 2"
    )


def test_score_record_says_which_values_are_sampled_and_which_weighted(
    api: respx.MockRouter, judge_file: Path, sample: Path
) -> None:
    """A judge that wrote 5 while its probabilities say ~1.7: score and criteria agree."""
    prefix = '{"rationale": "r", "scores": {"helpfulness": '
    logprobs = {
        "content": [
            {"token": prefix, "logprob": 0.0, "top_logprobs": []},
            {
                "token": "5",
                "logprob": math.log(0.1),
                "top_logprobs": [
                    {"token": "1", "logprob": math.log(0.6)},
                    {"token": "2", "logprob": math.log(0.2)},
                    {"token": "5", "logprob": math.log(0.1)},
                    {"token": "3", "logprob": math.log(0.1)},
                ],
            },
            {"token": "}}", "logprob": 0.0, "top_logprobs": []},
        ]
    }
    api.post(CHAT).mock(
        return_value=httpx.Response(200, json=completion(prefix + "5}}", logprobs=logprobs))
    )
    config = judge_file.read_text() + "logprobs: true\nscoring: expected\n"
    judge_file.write_text(config)
    result = run("score", sample, "--judge", judge_file, "--limit", "1", "--json")
    assert result.exit_code == 0, result.output
    (record,) = map(json.loads, (sample.parent / "sample.scores.jsonl").read_text().splitlines())
    weighted = 0.6 * 1 + 0.2 * 2 + 0.1 * 5 + 0.1 * 3
    assert record["criteria"] == {"helpfulness": pytest.approx(weighted)}
    assert record["criteria_sampled"] == {"helpfulness": 5}
    assert record["score"] == pytest.approx((weighted - 1) / 4)


def listwise_reply(request: httpx.Request) -> httpx.Response:
    """Scores each candidate by its length (0..10), answering by id."""
    text = json.loads(request.content)["messages"][-1]["content"]
    found = re.findall(
        r"Candidate (C\w+):\n<<<CANDIDATE \1 \w+>>>\n(.*?)\n<<<END CANDIDATE", text, re.S
    )
    scores = [{"id": cid, "score": min(10, len(body) // 10)} for cid, body in found]
    return httpx.Response(200, json=completion({"rationale": "by length", "scores": scores}))


def test_score_group_mode_with_a_listwise_judge(api: respx.MockRouter, tmp_path: Path) -> None:
    api.post(CHAT).mock(side_effect=listwise_reply)
    judge = tmp_path / "listwise.yaml"
    judge.write_text(f"type: listwise\nmodel: test-judge\nbase_url: {BASE}\npermutations: 1\n")
    data = tmp_path / "g.jsonl"
    rows = [
        {"id": "a", "prompt": "p", "response": "short"},
        {"id": "b", "prompt": "p", "response": "a much longer answer to the question asked"},
        {"id": "c", "prompt": "q", "response": "another answer of middling size"},
        {"id": "d", "prompt": "q", "response": "tiny"},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run("score", data, "--judge", judge, "--sorted")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "g.scores.jsonl").read_text().splitlines()]
    assert [r["group"] for r in records] == ["1", "1", "2", "2"]
    assert records[1]["score"] > records[0]["score"] and records[2]["score"] > records[3]["score"]
    assert api.calls.call_count == 2  # one request per group
    assert "rows: 4  judged: 4  failed: 0" in result.stdout
    by_column = run(
        "score", data, "--judge", judge, "--group-column", "id", "-o", tmp_path / "o.jsonl"
    )
    assert by_column.exit_code == 0 and api.calls.call_count == 6  # four groups of one
    rubric = tmp_path / "r.yaml"
    rubric.write_text(
        f"model: test-judge\nbase_url: {BASE}\ncriteria: [{{name: q, description: d}}]\n"
    )
    line = one_error_line(
        CliRunner().invoke(
            app, ["score", str(data), "--judge", str(rubric), "--group-column", "id"]
        )
    )
    assert "group mode needs a group judge" in line


def test_calibrate_names_the_disagreeing_rows(
    rubric_api: respx.MockRouter, judge_file: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "cal"
    result = run("calibrate", LABELLED, "--judge", judge_file, "--label", "human",
                 "--report-dir", folder, "--no-plots")  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((folder / "metrics.json").read_text())
    found = metrics["disagreements"]
    assert found and f"disagreements: {len(found)} rows" in result.stdout
    labels = [json.loads(line) for line in LABELLED.read_text().splitlines()]
    for item in found:
        row = labels[item["index"]]
        assert item["human"] == row["human"] and item["judge"] != item["human"]
        if "id" in row:
            assert item["id"] == row["id"]
    assert "## Disagreements" in (folder / "report.md").read_text()


def test_usage_errors_are_one_line_with_exit_code_2() -> None:
    result = CliRunner().invoke(app, ["score", "d.jsonl", "--limit", "0"], prog_name="rftjudge")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "Error: Invalid value for '--limit': 0 is not in the range x>=1. "
        "(see `rftjudge score --help`)"
    )
