"""Rubric drafting: ``RubricDrafter``, ``draft_rubrics`` (resumable) and ``rftjudge rubrics``."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rftjudge import ChatRequest, FunctionClient, RubricJudge
from rftjudge._content import content_text
from rftjudge.app import rubrics as rubrics_module
from rftjudge.app.cli import app
from rftjudge.app.rubrics import RubricDrafter, draft_rubrics
from rftjudge.judges._rubric_items import CATEGORY_WEIGHTS

ROWS: list[dict[str, Any]] = [
    {"id": "q1", "prompt": "How much is 2+2?", "reference": "4"},
    {"id": "q2", "prompt": "Name a prime number.", "reference": None},
    {"id": "dup", "prompt": "DUPLICATE please", "reference": None},
]


def items(n: int, prefix: str = "i") -> list[dict[str, str]]:
    categories = ["essential", "important", "optional", "pitfall"]
    return [
        {"id": f"{prefix}{k}", "description": f"Point number {k}", "category": categories[k % 4]}
        for k in range(n)
    ]


class Drafts:
    """Too few items on the first request of each prompt, then 8; duplicate ids for 'DUPLICATE'."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, request: ChatRequest) -> str:
        first = request.messages[-1].content if len(request.messages) <= 2 else ""
        key = content_text(request.messages[1].content)[:80]
        self.seen[key] = self.seen.get(key, 0) + 1
        if "DUPLICATE" in key:
            return json.dumps({"rationale": "", "items": items(8, "x")[:1] * 8})
        if first and self.seen[key] == 1:
            return json.dumps({"rationale": "short", "items": items(3)})
        return json.dumps({"rationale": "ok", "items": items(8)})


async def test_drafts_are_validated_written_and_resumed(tmp_path: Path) -> None:
    client = FunctionClient(Drafts())
    drafter = RubricDrafter(client, max_reasks=1)
    out = tmp_path / "rubrics.jsonl"
    stats = await draft_rubrics(drafter, ROWS, out)
    assert (stats.judged, stats.failed) == (3, 1)
    records = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    good = records["q1"]
    assert good["ok"] and len(good["rubric"]) == 8 and good["reasks"] == 1
    assert good["rubric"][0] == {
        "id": "i0",
        "description": "Point number 0",
        "category": "essential",
        "weight": CATEGORY_WEIGHTS["essential"],
    }
    assert "REFERENCE" in client.calls[0].messages[-1].content
    assert records["dup"]["ok"] is False
    assert records["dup"]["error"]["kind"] == "invalid_rubric"
    # The draft feeds the rubric judge as is.
    judge = RubricJudge(FunctionClient(lambda r: ""))
    assert len(judge.rubric_of(good["rubric"], 0).items) == 8
    # Resumable: nothing left to draft but the failed row, and only on request.
    calls = len(client.calls)
    again = await draft_rubrics(drafter, ROWS, out)
    assert (again.judged, len(client.calls)) == (0, calls)


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="min_items"):
        RubricDrafter(FunctionClient(Drafts()), min_items=9, max_items=3)


def test_cli_rubrics_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS[:2]))
    client = FunctionClient(Drafts())

    @contextlib.asynccontextmanager
    async def session(config: Any) -> AsyncIterator[Any]:
        yield RubricJudge(client)

    monkeypatch.setattr(rubrics_module, "ajudge_session", session)
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["rubrics", str(data), "-o", str(out), "--min-items", "7"])
    assert result.exit_code == 0, result.output
    assert "2 drafted, 0 failed" in result.output
    assert all(json.loads(line)["ok"] for line in out.read_text().splitlines())
