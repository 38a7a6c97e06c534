"""Per-row rubric helpers for the composite-judge tests: a scripted rubric judge and a judge that
takes no rubric, recording what each was given."""

from __future__ import annotations

import json
from typing import Any

from rftjudge import ChatRequest, Criterion, FunctionClient, RubricJudge
from rftjudge.clients import Capabilities
from rftjudge.judges.base import RewardBase

RUBRIC = ["says 4", {"id": "polite", "description": "is polite", "weight": 3}]


class Scripted:
    """A rubric judge's model: every item id gets ``scores`` (default 5); records the item ids."""

    def __init__(self, scores: dict[str, int] | None = None) -> None:
        self.scores = scores or {}
        self.asked: list[list[str]] = []

    def __call__(self, request: ChatRequest) -> str:
        ids = list(request.output_schema["properties"]["scores"]["required"])  # type: ignore[index]
        self.asked.append(ids)
        return json.dumps({"rationale": "", "scores": {i: self.scores.get(i, 5) for i in ids}})


def rubric_judge(script: Scripted, **kwargs: Any) -> RubricJudge:
    client = FunctionClient(script, capabilities=Capabilities(logprobs=False))
    return RubricJudge(client, max_reasks=0, **kwargs)


def reader_and_fixed() -> tuple[tuple[Scripted, RubricJudge], tuple[Scripted, RubricJudge]]:
    """A judge that reads the row's rubric (no criteria; with :data:`RUBRIC`, 1/4 of the weight
    met) and one with its own criterion that reads none, each with its scripted model."""
    reader_model = Scripted({"c1": 5, "polite": 1})
    fixed_model = Scripted()
    reader = rubric_judge(reader_model, name="reader")
    fixed = rubric_judge(
        fixed_model, criteria=[Criterion(name="quality", description="good?")], rubric_column=None
    )
    return (reader_model, reader), (fixed_model, fixed)


class Recorder(RewardBase[float]):
    """A judge that takes no rubric: a fixed score; records the reference it was given."""

    def __init__(self, value: float, name: str) -> None:
        super().__init__(name=name)
        self.value = value
        self.seen: list[Any] = []

    async def ajudge(self, prompt: Any, response: Any, reference: Any = None) -> float:
        self.seen.append(reference)
        return self.value

    def score_of(self, result: float) -> float:
        return result
