"""Scoring on a local Ray cluster (``ray.init(num_cpus=2)``) against a loopback judge: the output is
identical, line for line, to the single-process ``rftjudge score``; an interrupted run resumes
without judging finished rows again; ``--ray`` on the command line does the same."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rftjudge import ConfigurationError
from rftjudge.app.cli import app
from rftjudge.app.config import JudgeConfig

from support.server import LoopbackServer, Reply, chat_reply

pytestmark = pytest.mark.integration

ROWS = 3000


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield ray
    finally:
        ray.shutdown()


def _grade(payload: dict[str, Any]) -> Reply:
    """Row N's answer gets 1 + N mod 5 on "q" and 5 - N mod 5 on "style": every row is known."""
    found = re.search(r"answer (\d+)", payload["messages"][-1]["content"])
    n = int(found.group(1)) if found else 0
    verdict = {"rationale": f"row {n}", "scores": {"q": 1 + n % 5, "style": 5 - n % 5}}
    return Reply(body=chat_reply(json.dumps(verdict)))


@pytest.fixture(scope="module")
def judge_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(_grade) as server:
        yield server


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "rows.jsonl"
    with path.open("w") as handle:
        for i in range(ROWS):
            row = {"id": f"r{i}", "prompt": f"question {i % 7}", "response": f"answer {i}"}
            handle.write(json.dumps(row) + "\n")
    return path


@pytest.fixture
def judge_file(tmp_path: Path, judge_server: LoopbackServer) -> Path:
    config = {
        "provider": "openai",
        "model": "test-judge",
        "base_url": judge_server.base_url,
        "max_concurrency": 16,
        "criteria": [
            {"name": "q", "description": "quality", "weight": 2},
            {"name": "style", "description": "style"},
        ],
        "scale": [1, 5],
    }
    path = tmp_path / "judge.json"
    path.write_text(json.dumps(config))
    return path


def _rows_asked(requests: list[dict[str, Any]]) -> set[int]:
    found = (re.search(r"answer (\d+)", p["messages"][-1]["content"]) for p in requests)
    return {int(m.group(1)) for m in found if m}


def _cli(*args: str | Path) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.timeout(600)
def test_ray_output_is_identical_to_the_single_process_cli_and_resumes(
    ray_cluster: Any, judge_server: LoopbackServer, data: Path, judge_file: Path, tmp_path: Path
) -> None:
    from rftjudge.app.ray import score

    single = tmp_path / "single.jsonl"
    _cli("score", data, "--judge", judge_file, "-o", single, "--sorted", "-q")
    expected = single.read_text().splitlines()
    assert len(expected) == ROWS

    # An interrupted run: stop the driver after 700 rows have been written.
    distributed = tmp_path / "ray.jsonl"
    seen = {"n": 0}

    def stop_early(record: dict[str, Any]) -> None:
        seen["n"] += 1
        if seen["n"] == 700:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score(data, judge_file, distributed, actors=2, batch_size=64, on_record=stop_early)
    finished = len(distributed.read_text().splitlines())
    assert finished == 700

    done = {json.loads(line)["index"] for line in distributed.read_text().splitlines()}
    before = len(judge_server.requests)
    summary = score(data, judge_file, distributed, actors=2, batch_size=64)
    # Count rows, not requests: the interrupted run's actors may still have had requests in
    # flight when it stopped, and those can reach the server after ``before`` was read.
    asked_now = _rows_asked(judge_server.requests[before:])
    assert not asked_now & done  # finished rows were not judged again
    assert asked_now == set(range(ROWS)) - done  # and every unfinished row was
    assert distributed.read_text().splitlines() == expected  # same lines, same order
    assert summary.rows == ROWS and summary.judged == ROWS and summary.failed == 0

    # Nothing left: a third run judges nothing and leaves the file as it is.
    before = len(judge_server.requests)
    score(data, judge_file, distributed, actors=2)
    assert len(judge_server.requests) == before
    assert distributed.read_text().splitlines() == expected


@pytest.mark.timeout(300)
def test_cli_ray_flag_and_parquet_export(
    ray_cluster: Any, data: Path, judge_file: Path, tmp_path: Path
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    subset = tmp_path / "subset.jsonl"
    subset.write_text("".join(data.read_text().splitlines(keepends=True)[:300]))
    single, distributed = tmp_path / "one.jsonl", tmp_path / "many.jsonl"
    _cli("score", subset, "--judge", judge_file, "-o", single, "--sorted", "-q")
    output = _cli(
        "score", subset, "--judge", judge_file, "-o", distributed, "--sorted", "-q",
        "--ray", "--ray-actors", "2", "--parquet", tmp_path / "many.parquet",
    )  # fmt: skip
    assert "judged: 300" in output
    assert distributed.read_text() == single.read_text()
    table = pq.read_table(tmp_path / "many.parquet")
    records = [json.loads(line) for line in single.read_text().splitlines()]
    assert table.column("index").to_pylist() == [r["index"] for r in records]
    assert table.column("score").to_pylist() == pytest.approx([r["score"] for r in records])
    assert set(table.column_names) == set().union(*(r.keys() for r in records))


def test_local_judge_config_is_refused_before_ray_starts(tmp_path: Path) -> None:
    from rftjudge.app.ray import judge_plan_on_ray
    from rftjudge.app.scoring import plan_run

    plan = plan_run([{"prompt": "p", "response": "r"}], tmp_path / "o.jsonl")
    config = JudgeConfig(criteria=({"name": "q", "description": "d"},))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="provider"):
        judge_plan_on_ray(config, plan)


@pytest.mark.timeout(300)
def test_a_judge_object_is_rebuilt_on_every_actor(
    ray_cluster: Any, judge_server: LoopbackServer, data: Path, judge_file: Path, tmp_path: Path
) -> None:
    from rftjudge import Criterion, OpenAIClient, RubricJudge
    from rftjudge.app.ray import score

    subset = tmp_path / "subset.jsonl"
    subset.write_text("".join(data.read_text().splitlines(keepends=True)[:200]))
    single = tmp_path / "one.jsonl"
    _cli("score", subset, "--judge", judge_file, "-o", single, "--sorted", "-q")

    def judge(style_weight: float = 1.0) -> RubricJudge:
        client = OpenAIClient("test-judge", base_url=judge_server.base_url, max_concurrency=16)
        criteria = [
            Criterion(name="q", description="quality", weight=2),
            Criterion(name="style", description="style", weight=style_weight),
        ]
        return RubricJudge(client, criteria=criteria, scale=(1, 5))

    out = tmp_path / "object.jsonl"
    summary = score(subset, judge(), out, actors=2)
    assert summary.judged == 200 and summary.failed == 0
    mine = [json.loads(line) for line in out.read_text().splitlines()]
    theirs = [json.loads(line) for line in single.read_text().splitlines()]
    assert [(r["index"], r["score"]) for r in mine] == [(r["index"], r["score"]) for r in theirs]

    before = len(judge_server.requests)
    score(subset, judge(), out, actors=2)  # an equal judge: every row is already judged
    assert len(judge_server.requests) == before
    score(subset, judge(style_weight=3.0), out, actors=2)  # another judge: judged again
    assert _rows_asked(judge_server.requests[before:]) == set(range(200))
