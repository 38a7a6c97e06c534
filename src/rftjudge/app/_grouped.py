"""Group mode of ``rftjudge score``: the rows of one prompt judged together by a group judge.

A listwise judge (or a preference judge's tournament) scores completions relative to each other,
as in a GRPO group, so it needs the whole group in one call. A group is the rows that share a
``--group-column`` value, or — without one — consecutive rows that share a prompt.

Resuming works per group: every row of a group carries the group's input hash (a digest of all its
rows' judged fields, in order), so editing, adding or removing one row re-judges its whole group —
its scores were relative to the others. Each row still gets its own record (``index``, ``id``,
``group``, ``score``, ``rationale``); the group's tokens are counted once, on its first row.
Rows that cannot be judged (unreadable, a missing value) get their own error record and are left
out of their group's call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from .._errors import ConfigurationError
from ._plan import (
    Plan,
    Record,
    Status,
    count,
    error_fields,
    failure,
    input_hash,
    input_problem,
    row_hash,
    row_status,
    start_record,
)
from ._readers import BadRow

__all__ = ["judge_group", "plan_groups"]

Row = dict[str, Any]


def plan_groups(
    plan: Plan,
    rows: Sequence[tuple[int, Row]],
    done: Mapping[int, Record],
    retry_failed: bool,
) -> None:
    """Fill ``plan`` (hashes, pending rows, ``groups``) for group mode."""
    plan.groups = []
    for key, members in _groups(plan, rows).items():
        digests = [row_hash(row, plan.columns, plan.mode, plan.judge_id) for _, row in members]
        digest = input_hash([key, *digests], plan.judge_id)
        statuses: list[Status] = []
        for index, _ in members:
            plan.hashes[index] = digest
            statuses.append(row_status(digest, done.get(index), retry_failed))
        if all(s == "skip" for s in statuses):
            count(plan, "skip", len(members))
            continue
        for status in statuses:  # a group is judged again as a whole
            count(plan, "changed" if status == "skip" else status)
        plan.groups.append((key, [index for index, _ in members]))
        plan.pending.extend(members)


def _groups(plan: Plan, rows: Sequence[tuple[int, Row]]) -> dict[str, list[tuple[int, Row]]]:
    """Rows by group key, in order of first appearance; an unreadable row is a group of its own."""
    groups: dict[str, list[tuple[int, Row]]] = {}
    column = plan.columns.group
    number, previous = 0, None
    for index, row in rows:
        if isinstance(row, BadRow):
            groups.setdefault(f"row {index}", []).append((index, row))  # never overwrite
            previous = None
            continue
        if column is not None:
            key = _text(row.get(column))
        else:
            prompt = _text(row.get(plan.columns.prompt))
            if prompt != previous:
                number += 1
            previous = prompt
            key = str(number)
        groups.setdefault(key, []).append((index, row))
    return groups


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


async def judge_group(
    judge: Any, plan: Plan, key: str, members: Sequence[tuple[int, Row]]
) -> list[Record]:
    """One group judged in one call: a record per row (a run-level failure raises RunAborted)."""
    columns = plan.columns
    records: list[Record] = []
    judged: list[tuple[int, Row]] = []
    for index, row in members:
        problem = input_problem(plan, row)
        if problem is not None:
            records.append({**start_record(plan, index, row), "group": key, **problem})
        else:
            judged.append((index, row))
    if not judged:
        return records
    first = judged[0][1]
    prompts = {_text(row[columns.prompt]) for _, row in judged}
    reference = first.get(columns.reference) if columns.reference else None
    if len(prompts) > 1:
        problem = failure(
            "input",
            "MixedPrompts",
            f"the rows of group {key!r} have {len(prompts)} different prompts; a group judge "
            "scores the completions of one prompt",
        )
        for index, row in judged:
            records.append({**start_record(plan, index, row), "group": key, **problem})
        return records
    try:
        outcomes: list[Any] = list(
            await judge.ajudge_group(
                first[columns.prompt],
                [row[columns.response] for _, row in judged],
                reference if reference != "" else None,
            )
        )
    except ConfigurationError as exc:  # the group's values are unusable (e.g. not text)
        outcomes = [exc] * len(judged)
    counted = False
    for (index, row), outcome in zip(judged, outcomes, strict=True):
        record = {**start_record(plan, index, row), "group": key, "group_size": len(members)}
        if isinstance(outcome, BaseException):
            records.append({**record, **error_fields(outcome)})
            continue
        record.update(ok=True, score=float(outcome), rationale=getattr(outcome, "rationale", ""))
        if getattr(outcome, "guarded", None):
            record["guarded"] = outcome.guarded
        info = getattr(outcome, "info", None)
        if info is not None and not counted:  # the group's tokens, once
            usage = info.usage
            record["usage"] = usage.model_dump() if isinstance(usage, BaseModel) else usage
            counted = True
        records.append(record)
    return records
