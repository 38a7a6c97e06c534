"""The grader as a reward (TRL signature, run shape checked against openai-python's type) and the
``rftjudge grade`` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rftjudge import FunctionClient
from rftjudge.graders import load_openai_grader

CHECK = {
    "type": "string_check",
    "name": "exact",
    "input": "{{ sample.output_text }}",
    "reference": "{{ item.answer }}",
    "operation": "eq",
}


def test_run_matches_openai_python_grader_run_response() -> None:
    types = pytest.importorskip("openai.types.fine_tuning.alpha.grader_run_response")
    grader = load_openai_grader(CHECK)
    for result in (grader.run("4", {"answer": "4"}), grader.run("4", {})):
        parsed = types.GraderRunResponse.model_validate(result)
        assert parsed.reward == result["reward"]
    assert grader.run("4", {})["metadata"]["errors"]["invalid_variable_error"] is True


async def test_trl_reward_func_passes_the_row_as_item() -> None:
    grader = load_openai_grader(
        {
            **CHECK,
            "input": "{{ sample.output_text }}|{{ item.prompt }}",
            "reference": "{{ item.answer }}|q",
        }
    )
    reward_func = grader.as_reward_func(name="exact")
    metrics: dict[str, float] = {}
    rewards = await reward_func(
        prompts=["q", "q"],
        completions=[
            [{"role": "assistant", "content": "4"}],
            [{"role": "assistant", "content": "5"}],
        ],
        answer=["4", "4"],
        completion_ids=[[1], [2]],
        log_metric=metrics.__setitem__,
    )
    assert rewards == [1.0, 0.0]
    assert reward_func.__name__ == "exact"
    assert metrics["exact/pass_rate"] == 0.5
    assert metrics["exact/failure_rate"] == 0.0


def test_batch_and_sync_twins() -> None:
    grader = load_openai_grader(CHECK)
    assert grader.reward_batch(["", ""], ["4", "5"], [{"answer": "4"}, {"answer": "4"}]) == [
        1.0,
        0.0,
    ]
    assert grader.reward("", "4", "4") == 0.0  # a non-dict reference becomes item.reference


def test_cli_grade_is_resumable_and_validates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from rftjudge.app.cli import app

    grader_file = tmp_path / "grader.json"
    grader_file.write_text(
        json.dumps(
            {
                "type": "multi",
                "name": "m",
                "graders": {
                    "exact": CHECK,
                    "judge": {
                        "type": "score_model",
                        "name": "j",
                        "model": "gpt-4.1",
                        "input": [{"role": "user", "content": "{{ sample.output_text }}"}],
                    },
                },
                "calculate_output": "0.5 * exact + 0.5 * judge",
                "pass_threshold": 0.75,
            }
        )
    )
    runner = CliRunner()
    validated = runner.invoke(app, ["grade", "--validate", str(grader_file)])
    assert validated.exit_code == 0, validated.output
    assert "valid multi grader 'm'" in validated.output

    data = tmp_path / "data.jsonl"
    rows = [{"id": i, "answer": "4", "response": "4" if i % 2 else "5"} for i in range(4)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"

    from rftjudge.app import grade as grade_module

    calls: list[Any] = []

    def handler(request: Any) -> str:
        calls.append(request)
        return json.dumps({"steps": [], "result": 1.0})

    monkeypatch.setattr(grade_module, "_client", lambda spec: FunctionClient(handler))
    args = ["grade", str(data), "--openai-grader", str(grader_file), "--model", "gpt-4.1=x:y"]
    first = runner.invoke(app, [*args, "-o", str(out), "--sorted", "--json"])
    assert first.exit_code == 0, first.output
    summary = json.loads(first.output)
    assert summary["graded"] == 4
    assert summary["mean_reward"] == pytest.approx(0.75)
    assert summary["pass_rate"] == 0.5
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in records] == [0, 1, 2, 3]
    assert records[1]["sub_rewards"] == {"exact": 1.0, "judge": 1.0}
    assert records[1]["id"] == 1
    again = runner.invoke(app, [*args, "-o", str(out)])
    assert again.exit_code == 0, again.output
    assert len(calls) == 4  # nothing graded twice
    assert "mean reward: 0.7500" in again.output

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**CHECK, "operation": "contains"}))
    failed = runner.invoke(app, ["grade", "--validate", str(bad)])
    assert failed.exit_code != 0
    assert "grader.operation" in failed.output


def test_the_example_runs_offline() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(root / "examples/openai_grader/grade_offline.py"), "--offline"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[0].startswith("q1: reward 0.97")
    assert "invalid_variable_error" in lines[2]  # q3's output is not JSON: no output_json


async def test_verl_compute_score_hands_ground_truth_over_as_the_item() -> None:
    from rftjudge.integrations.verl import make_compute_score

    compute_score = make_compute_score(load_openai_grader(CHECK), question_key=None)
    good = await compute_score("gsm8k", "4", {"answer": "4"}, {})
    bad = await compute_score("gsm8k", "5", {"answer": "4"}, {})
    assert (good["score"], bad["score"]) == (1.0, 0.0)
    assert good["judge_failed"] == 0.0


def test_model_specs() -> None:
    from rftjudge import ConfigurationError
    from rftjudge.app.grade import parse_model_specs

    assert parse_model_specs(
        ["gpt-4.1=vllm:Qwen/Qwen3-8B@http://h:8000/v1", "ollama:qwen3:8b"]
    ) == {
        "gpt-4.1": "vllm:Qwen/Qwen3-8B@http://h:8000/v1",
        "*": "ollama:qwen3:8b",
    }
    with pytest.raises(ConfigurationError, match="NAME=SPEC"):
        parse_model_specs(["gpt-4.1="])


async def test_grade_rows_abstain_records_the_flag_as_the_failure(tmp_path: Path) -> None:
    from rftjudge.app.grade import grade_rows, summarize_grades
    from rftjudge.app.scoring import current_results

    rows = [{"answer": "4", "response": "4"}, {"response": "4"}]
    plan = await grade_rows(CHECK, rows, tmp_path / "out.jsonl", on_error="abstain")
    summary = summarize_grades(current_results(plan).values(), plan.total)
    assert (summary["graded"], summary["failed"]) == (1, 1)
    assert summary["errors"] == {"invalid_variable_error": 1}
    changed = await grade_rows({**CHECK, "operation": "ne"}, rows, tmp_path / "out.jsonl")
    assert len(changed.pending) == 2  # another grader: every row graded again
