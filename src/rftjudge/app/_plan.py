"""What a run of :mod:`rftjudge.app.scoring` judges: columns, the plan, row hashes and records.

The vocabulary shared by row-at-a-time judging (:mod:`~rftjudge.app.scoring`) and group mode
(:mod:`~rftjudge.app._grouped`): which rows are new, changed, to retry or done (by a digest of the
judged fields and the judge's settings), and the fields every record starts with or fails with.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .._errors import AuthenticationError, JudgeError, QuotaExceededError
from ._readers import BadRow

__all__ = [
    "Columns",
    "Mode",
    "Plan",
    "Record",
    "RunAborted",
    "Status",
    "count",
    "error_fields",
    "failure",
    "hashed_columns",
    "input_hash",
    "input_problem",
    "row_hash",
    "row_status",
    "start_record",
]

Mode = Literal["score", "compare"]
Record = dict[str, Any]
_RUN_LEVEL = (AuthenticationError, QuotaExceededError)


class RunAborted(Exception):
    """A failure that no row can survive (authentication, quota): the run stopped."""

    def __init__(self, cause: BaseException) -> None:
        self.cause = cause
        super().__init__(f"stopped: {cause}")


@dataclass(frozen=True)
class Columns:
    """Which data set columns hold what the judge needs."""

    prompt: str = "prompt"
    response: str = "response"
    reference: str | None = "reference"
    response_a: str = "response_a"
    response_b: str = "response_b"
    id: str | None = "id"
    group: str | None = None
    """Group mode: the column whose equal values form a group (None: consecutive rows that share
    a prompt)."""
    rubric: str | None = "rubric"
    """Per-row rubrics, read when the judge takes them (``RubricJudge.rubric_column``)."""
    rubric_named: bool = False
    """The rubric column was named on purpose (``--rubric-column``): data in which no row has it
    is an error, not every row silently judged without its rubric."""

    def judged(self, mode: Mode) -> tuple[str, ...]:
        if mode == "score":
            return (self.prompt, self.response)
        return (self.prompt, self.response_a, self.response_b)


def input_hash(values: Sequence[Any], judge_id: str = "") -> str:
    """Digest of the judged fields and the judge's settings: a change in either means re-judge."""
    canonical = json.dumps([judge_id, *values], ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class Plan:
    """What a (re)run must judge, and what is already done.

    ``groups``: in group mode, the groups left to judge as ``(key, row indices)`` (their rows are
    in ``pending``); ``None`` when rows are judged one at a time.
    """

    mode: Mode
    columns: Columns
    out: Path
    judge_id: str
    hashes: dict[int, str] = field(default_factory=dict)
    pending: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    skipped: int = 0
    changed: int = 0
    retried: int = 0
    groups: list[tuple[str, list[int]]] | None = None

    @property
    def total(self) -> int:
        return len(self.hashes)


Status = Literal["skip", "new", "changed", "retry"]


def row_hash(row: Mapping[str, Any], columns: Columns, mode: Mode, judge_id: str) -> str:
    """A row's input hash; an unreadable row's is its raw text (fixing it re-judges it)."""
    if isinstance(row, BadRow):
        return input_hash(["unreadable row", row.text], judge_id)
    hashed = hashed_columns(columns, mode)
    if columns.rubric and columns.rubric in row:  # data without rubrics keeps its old hashes
        hashed = (*hashed, columns.rubric)
    return input_hash([row.get(c) for c in hashed], judge_id)


def row_status(digest: str, previous: Record | None, retry_failed: bool) -> Status:
    """Whether a row (with input hash ``digest``) is new, changed, to retry or done."""
    if previous is None:
        return "new"
    if previous.get("input_hash") != digest:
        return "changed"
    return "retry" if retry_failed and not previous.get("ok") else "skip"


def count(plan: Plan, status: Status, rows: int = 1) -> None:
    """Add ``rows`` rows of ``status`` to the plan's announced counts."""
    if status == "skip":
        plan.skipped += rows
    elif status == "changed":
        plan.changed += rows
    elif status == "retry":
        plan.retried += rows


def hashed_columns(columns: Columns, mode: Mode) -> tuple[str, ...]:
    judged = columns.judged(mode)
    return (*judged, columns.reference) if columns.reference else judged


def start_record(plan: Plan, index: int, row: Mapping[str, Any]) -> Record:
    """The fields every record starts with: the row's index, input hash and id (when it has one)."""
    record: Record = {"index": index, "input_hash": plan.hashes[index]}
    if plan.columns.id and plan.columns.id in row:
        record["id"] = row[plan.columns.id]
    return record


def input_problem(plan: Plan, row: Mapping[str, Any]) -> Record | None:
    """The error fields of a row that cannot be judged (unreadable, or a judged value missing)."""
    if isinstance(row, BadRow):
        return failure("input", "UnreadableRow", row.problem)
    missing = [c for c in plan.columns.judged(plan.mode) if row.get(c) is None]
    if missing:
        return failure("input", "MissingColumn", f"no value in {missing}")
    return None


def error_fields(outcome: BaseException) -> Record:
    """A row's error record fields; a run-level failure (bad key, quota) raises instead."""
    if isinstance(outcome, _RUN_LEVEL):
        raise RunAborted(outcome)
    kind = outcome.kind if isinstance(outcome, JudgeError) else "internal"
    return failure(kind, type(outcome).__name__, str(outcome))


def failure(kind: str, error_type: str, message: str) -> Record:
    return {"ok": False, "error": {"kind": kind, "type": error_type, "message": message[:2000]}}
