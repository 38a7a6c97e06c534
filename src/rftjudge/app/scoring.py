"""Judge a whole data set into a JSONL file that survives interruption and resumes.

Judging thousands of rows takes hours and costs money, so nothing may be lost or paid twice:

- every finished row is appended to the output at once, as one JSON line carrying its row
  ``index`` and ``input_hash`` (a digest of the judged fields and of the judge's settings), and
  flushed — a crash or Ctrl-C loses only the rows still in flight;
- rows are judged concurrently and written in the order they finish; :func:`sort_results` (the
  CLI's ``--sorted``) rewrites the file in input order afterwards;
- a rerun with the same output skips rows whose line is already there with the same hash; a row
  whose input (or judge) changed gets a new line, and the newest line for an index wins;
- errors that concern the whole run rather than one row (a wrong API key, an exhausted quota)
  stop it without writing a line, so fixing the key and rerunning judges those rows; a results
  file that cannot be written (a full disk) stops it too, keeping every line written before
  (:mod:`rftjudge.app._output`);
- a row that cannot be read (a line that is not JSON, a CSV row with the wrong number of fields)
  gets an error record at its own index, like a row whose judgment failed.

Readers (:mod:`rftjudge.app._readers`): JSONL, JSON (a list of objects), CSV, Parquet (pyarrow), a
``datasets`` folder saved with ``save_to_disk``, or ``hf:NAME`` for a Hugging Face Hub dataset.
Group mode (a listwise judge, :mod:`rftjudge.app._grouped`) judges a group of rows in one go.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
from collections.abc import (
    AsyncGenerator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
)
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .._errors import (
    ConfigurationError,
    JudgeError,
)
from ..judges._rubric_rows import RowInput
from ..judges.base import BaseJudge
from ..judges.rubric import with_rubric
from ._grouped import judge_group, plan_groups
from ._output import Appender, OutputFailed, latest_results, rewrite
from ._plan import (
    Columns,
    Mode,
    Plan,
    Record,
    RunAborted,
    count,
    error_fields,
    input_hash,
    input_problem,
    row_hash,
    row_status,
    start_record,
)
from ._readers import BadRow, read_rows
from ._summary import Summary, summarize
from .config import Announce, JudgeConfig, ajudge_session

logger = logging.getLogger("rftjudge")

__all__ = [
    "BadRow",
    "Columns",
    "Mode",
    "OutputFailed",
    "Plan",
    "Record",
    "RunAborted",
    "RunStats",
    "Summary",
    "check_judge_type",
    "current_results",
    "input_hash",
    "judge_plan",
    "judge_records",
    "latest_results",
    "plan_run",
    "read_rows",
    "run_plan",
    "sort_results",
    "summarize",
]

_Appender = Appender  # the name the Ray integration imports


# -- planning a (re)run ----------------------------------------------------------------------------


def plan_run(
    rows: Iterable[Mapping[str, Any]],
    out: str | Path,
    *,
    mode: Mode = "score",
    columns: Columns | None = None,
    judge_id: str = "",
    retry_failed: bool = False,
    limit: int | None = None,
    grouped: bool = False,
) -> Plan:
    """Compare the data with what ``out`` already holds; raises if a judged column is absent.

    ``grouped``: group mode (a group judge, e.g. listwise) — rows with the same
    ``columns.group`` value, or consecutive rows sharing a prompt, are judged together and
    re-judged together when any of them changed (see :mod:`rftjudge.app._grouped`).
    """
    columns = columns or Columns()
    plan = Plan(mode=mode, columns=columns, out=Path(out), judge_id=judge_id)
    done = latest_results(plan.out)
    first: Mapping[str, Any] | None = None
    rubric_seen = False
    kept: list[tuple[int, dict[str, Any]]] = []
    for index, row in enumerate(rows):
        if limit is not None and index >= limit:
            break
        if first is None and not isinstance(row, BadRow):
            _check_columns(row, columns, mode)
            first = row
        row = row if isinstance(row, BadRow) else dict(row)
        rubric_seen = rubric_seen or bool(columns.rubric and columns.rubric in row)
        if grouped:
            kept.append((index, row))
            continue
        plan.hashes[index] = row_hash(row, columns, mode, judge_id)
        status = row_status(plan.hashes[index], done.get(index), retry_failed)
        count(plan, status)
        if status != "skip":
            plan.pending.append((index, row))
    if columns.rubric_named and first is not None and not rubric_seen:
        raise ConfigurationError(
            f"no row of the data has the rubric column {columns.rubric!r} (columns: "
            f"{', '.join(map(str, first))}); name the right one with --rubric-column"
        )
    if grouped:
        plan_groups(plan, kept, done, retry_failed)
    return plan


def _check_columns(row: Mapping[str, Any], columns: Columns, mode: Mode) -> None:
    flags = {
        columns.prompt: "--prompt-column",
        columns.response: "--response-column",
        columns.response_a: "--a-column",
        columns.response_b: "--b-column",
    }
    for name in columns.judged(mode):
        if name not in row:
            raise ConfigurationError(
                f"the data has no column {name!r} (columns: {', '.join(map(str, row))}); "
                f"name the right one with {flags[name]}"
            )


# -- running ---------------------------------------------------------------------------------------


@dataclass
class RunStats:
    """What one run did (the file may hold results of earlier runs too)."""

    judged: int = 0
    failed: int = 0


OnRecord = Callable[[Record], None]


async def run_plan(
    judge: BaseJudge[Any],
    plan: Plan,
    *,
    window: int | None = None,
    on_record: OnRecord | None = None,
) -> RunStats:
    """Judge ``plan.pending`` concurrently, appending each record to ``plan.out`` as it finishes.

    At most ``window`` rows are in flight (default: twice the client's ``max_concurrency``), so a
    million-row data set does not become a million tasks.
    """
    stats = RunStats()
    plan.out.parent.mkdir(parents=True, exist_ok=True)
    with Appender(plan.out) as append:
        async with aclosing(judge_records(judge, plan, window=window)) as records:
            async for record in records:
                append(record)
                stats.judged += 1
                stats.failed += not record["ok"]
                if on_record is not None:
                    on_record(record)
    return stats


async def judge_records(
    judge: BaseJudge[Any],
    plan: Plan,
    rows: Iterable[tuple[int, dict[str, Any]]] | None = None,
    *,
    window: int | None = None,
) -> AsyncGenerator[Record, None]:
    """Judge ``rows`` (``(index, row)`` pairs; default ``plan.pending``) concurrently, yielding
    each row's record as it finishes — the one place where rows become output records.

    :func:`run_plan` appends them to the output file; the Ray integration's actors return them
    to the driver, which appends them to the same file. At most ``window`` rows are in flight
    (default: twice the client's ``max_concurrency``). A run-level failure (:class:`RunAborted`)
    is raised once the records that finished with it have been yielded; rows still in flight are
    cancelled then, and when the consumer stops early (close the generator, e.g. with
    ``contextlib.aclosing``).
    """
    limit = window or 2 * int(getattr(judge.client, "max_concurrency", 8))
    in_flight: set[asyncio.Task[list[Record]]] = set()
    todo = _units(judge, plan, rows)
    try:
        while True:
            # keep ``limit`` rows (groups) in flight; yield each record as soon as it is done
            for unit in itertools.islice(todo, limit - len(in_flight)):
                in_flight.add(asyncio.create_task(unit()))
            if not in_flight:
                return
            done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            finished, abort = _outcomes(done)
            for record in finished:
                yield record
            if abort is not None:
                raise abort
    finally:
        for task in in_flight:  # an abort or Ctrl-C: stop paying for rows nobody will see
            task.cancel()
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)


Unit = Callable[[], Coroutine[Any, Any, list[Record]]]


def _units(
    judge: BaseJudge[Any], plan: Plan, rows: Iterable[tuple[int, dict[str, Any]]] | None
) -> Iterator[Unit]:
    """What is judged as one task: a row, or in group mode a whole group."""
    if plan.groups is not None and rows is None:
        by_index = dict(plan.pending)
        for key, members in plan.groups:
            group = [(i, by_index[i]) for i in members]
            yield functools.partial(judge_group, judge, plan, key, group)
        return
    for index, row in plan.pending if rows is None else rows:
        yield functools.partial(_judge_row, judge, plan, index, row)


def _outcomes(
    done: set[asyncio.Task[list[Record]]],
) -> tuple[list[Record], BaseException | None]:
    """The records of finished tasks, and the first run-level abort among them (if any)."""
    records: list[Record] = []
    abort: BaseException | None = None
    for task in done:
        error = task.exception()
        if error is not None:
            abort = abort or error
            continue
        records.extend(task.result())
    return records, abort


async def _judge_row(
    judge: BaseJudge[Any], plan: Plan, index: int, row: dict[str, Any]
) -> list[Record]:
    columns = plan.columns
    record = start_record(plan, index, row)
    problem = input_problem(plan, row)
    if problem is not None:
        return [{**record, **problem}]
    reference = row.get(columns.reference) if columns.reference else None
    if reference == "":
        reference = None  # an empty CSV cell is no reference
    if columns.rubric and getattr(judge, "rubric_column", None):
        reference = _with_row_rubric(reference, row.get(columns.rubric), index)
    try:
        if plan.mode == "score":
            outcome = await judge.ajudge_safe(row[columns.prompt], row[columns.response], reference)
        else:
            outcome = await _compare(judge, row, columns)
    except ConfigurationError as exc:  # this row's values are unusable (e.g. not text)
        outcome = exc
    if isinstance(outcome, BaseException):
        return [{**record, **error_fields(outcome)}]
    return [{**record, "ok": True, **_dump(outcome)}]


def _with_row_rubric(reference: Any, rubric: Any, index: int) -> Any:
    """The reference with the row's rubric attached. A row without one (no such key, an empty
    cell) still carries its index: the judge gives it the judge-wide criteria, or — having none —
    fails just that row with kind ``"invalid_rubric"`` naming it."""
    if isinstance(rubric, str) and not rubric.strip():
        rubric = None  # an empty CSV cell is no rubric, as it is no reference
    attached = with_rubric(reference, rubric, index)
    return attached if isinstance(attached, RowInput) else RowInput(reference, None, index)


async def _compare(judge: Any, row: Mapping[str, Any], columns: Columns) -> Any:
    acompare = getattr(judge, "acompare", None)
    if acompare is None:
        raise ConfigurationError(f"{type(judge).__name__} cannot compare two responses")
    try:
        return await acompare(row[columns.prompt], row[columns.response_a], row[columns.response_b])
    except (asyncio.CancelledError, ConfigurationError):
        raise
    except Exception as exc:  # turned into this row's error record, as ajudge_safe does
        if not isinstance(exc, JudgeError):
            logger.exception("rftjudge: comparison failed with an unexpected error")
        return exc


def _dump(outcome: Any) -> Record:
    data: Record = (
        outcome.model_dump(mode="json") if isinstance(outcome, BaseModel) else {"value": outcome}
    )
    data.pop("raw", None)  # the judge's full text: large, and in the rationale already
    return data


async def judge_plan(
    config: JudgeConfig,
    plan: Plan,
    *,
    announce: Announce | None = None,
    on_record: OnRecord | None = None,
    window: int | None = None,
) -> RunStats:
    """Open the judge ``config`` describes (starting the local judge if it names none) and run
    ``plan`` with it. Nothing is started when the plan has nothing left to judge."""
    if not plan.pending:
        return RunStats()
    check_judge_type(config, plan.mode, grouped=plan.groups is not None)
    session = (
        ajudge_session(config) if announce is None else ajudge_session(config, announce=announce)
    )
    async with session as judge:
        return await run_plan(judge, plan, window=window, on_record=on_record)


# -- after the run ---------------------------------------------------------------------------------


def current_results(plan: Plan) -> dict[int, Record]:
    """Records of ``plan.out`` that belong to the current data and judge (newest per index)."""
    return {
        index: record
        for index, record in latest_results(plan.out).items()
        if plan.hashes.get(index) == record.get("input_hash")
    }


def sort_results(plan: Plan) -> int:
    """Rewrite the output in input order, keeping only current records (atomic replace; the
    file keeps its permission bits). Raises :class:`OutputFailed` when it cannot be written."""
    records = current_results(plan)
    rewrite(plan.out, (records[index] for index in sorted(records)))
    return len(records)


def check_judge_type(config: JudgeConfig, mode: Mode, *, grouped: bool = False) -> None:
    """Rows are scored by a rubric judge and compared by a preference judge; groups of rows are
    scored by a group judge (listwise, or preference with its tournament); say which otherwise."""
    if grouped:
        if mode == "score" and config.type in ("listwise", "preference"):
            return
        raise ConfigurationError(
            f"group mode needs a group judge (type: listwise or preference); a {config.type} "
            "judge scores rows one at a time: drop --group-column"
        )
    wanted = "rubric" if mode == "score" else "preference"
    if config.type == wanted:
        return
    if config.type == "listwise":
        raise ConfigurationError(
            f"a listwise judge scores the completions of one prompt against each other (a GRPO "
            f"group), not rows one at a time: {mode} rows with a judge config of type: {wanted}, "
            "or score groups of rows with `rftjudge score` (consecutive rows sharing a prompt, "
            "or --group-column)"
        )
    command = "score" if config.type == "rubric" else "compare"
    raise ConfigurationError(
        f"a {config.type} judge cannot {mode} rows: use `rftjudge {command}`, or a judge "
        f"config with type: {wanted}"
    )
