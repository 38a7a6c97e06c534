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
  stop it without writing a line, so fixing the key and rerunning judges those rows.

Readers: JSONL, JSON (a list of objects), CSV, Parquet (pyarrow), a ``datasets`` folder saved with
``save_to_disk`` or a Hugging Face Hub dataset name (when ``datasets`` is installed).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import itertools
import json
import logging
import math
import os
import tempfile
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from .._errors import (
    AuthenticationError,
    ConfigurationError,
    JudgeError,
    QuotaExceededError,
)
from ..judges.base import BaseJudge
from ..judges.rubric import with_rubric
from .config import Announce, JudgeConfig, Price, ajudge_session

logger = logging.getLogger("rftjudge")

__all__ = [
    "Columns",
    "Plan",
    "RunAborted",
    "RunStats",
    "Summary",
    "check_judge_type",
    "current_results",
    "judge_plan",
    "judge_records",
    "latest_results",
    "plan_run",
    "read_rows",
    "run_plan",
    "sort_results",
    "summarize",
]

Mode = Literal["score", "compare"]
Record = dict[str, Any]
_RUN_LEVEL = (AuthenticationError, QuotaExceededError)
_PARSE_KINDS = ("parse", "truncated")


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
    rubric: str | None = "rubric"
    """Per-row rubrics, read when the judge takes them (``RubricJudge.rubric_column``)."""

    def judged(self, mode: Mode) -> tuple[str, ...]:
        if mode == "score":
            return (self.prompt, self.response)
        return (self.prompt, self.response_a, self.response_b)


# -- reading data --------------------------------------------------------------------------------


def read_rows(source: str | Path, *, split: str | None = None) -> Iterator[dict[str, Any]]:
    """Rows of a data set as dicts, streamed where the format allows."""
    path = Path(source)
    if path.is_dir():
        return _read_saved_dataset(path, split)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".ndjson"):
            return _read_jsonl(path)
        if suffix == ".json":
            return _read_json(path)
        if suffix in (".csv", ".tsv"):
            return _read_csv(path, "\t" if suffix == ".tsv" else ",")
        if suffix == ".parquet":
            return _read_parquet(path)
        raise ConfigurationError(
            f"{path}: unknown data format {suffix!r}; use .jsonl, .json, .csv, .tsv or .parquet"
        )
    name = str(source).removeprefix("hf:")
    return _read_hub_dataset(name, split, missing_file=not str(source).startswith("hf:"))


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ConfigurationError(f"{path}: line {number}: invalid JSON ({exc})") from None
            if not isinstance(row, dict):
                raise ConfigurationError(f"{path}: line {number}: expected a JSON object")
            yield row


def _read_json(path: Path) -> Iterator[dict[str, Any]]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigurationError(f"{path}: invalid JSON ({exc})") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ConfigurationError(f"{path}: expected a JSON list of objects")
    yield from rows


def _read_csv(path: Path, delimiter: str) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle, delimiter=delimiter)


def _read_parquet(path: Path) -> Iterator[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        raise ImportError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow") from None
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        yield from batch.to_pylist()


def _datasets_module(what: str) -> Any:
    try:
        import datasets  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        raise ImportError(f"{what} needs the datasets package: pip install datasets") from None
    return datasets


def _read_saved_dataset(path: Path, split: str | None) -> Iterator[dict[str, Any]]:
    datasets = _datasets_module(f"{path}: reading a saved Hugging Face dataset")
    data = datasets.load_from_disk(str(path))
    yield from _pick_split(data, split, str(path))


def _read_hub_dataset(
    name: str, split: str | None, *, missing_file: bool
) -> Iterator[dict[str, Any]]:
    try:
        datasets = _datasets_module(f"{name!r} is not a file; loading it from the Hugging Face Hub")
    except ImportError as exc:
        if missing_file:
            raise ConfigurationError(f"{name}: no such data file ({exc})") from None
        raise
    data = datasets.load_dataset(name, split=split or "train")
    yield from _pick_split(data, None, name)


def _pick_split(data: Any, split: str | None, name: str) -> Iterator[dict[str, Any]]:
    if isinstance(data, Mapping):  # a DatasetDict: one split of it
        splits = list(data.keys())
        chosen = split or ("train" if "train" in splits else None)
        if chosen is None or chosen not in splits:
            raise ConfigurationError(
                f"{name}: choose a split with --split (splits: {', '.join(splits)})"
            )
        data = data[chosen]
    for row in data:
        yield dict(row)


# -- planning a (re)run ----------------------------------------------------------------------------


def input_hash(values: Sequence[Any], judge_id: str = "") -> str:
    """Digest of the judged fields and the judge's settings: a change in either means re-judge."""
    canonical = json.dumps([judge_id, *values], ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def latest_results(out: Path) -> dict[int, Record]:
    """The newest record per row index in an output file (unreadable lines are ignored: a kill can
    leave a half-written last line, which its rerun simply replaces)."""
    results: dict[int, Record] = {}
    if not out.exists():
        return results
    with out.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("index"), int):
                results[record["index"]] = record
    return results


@dataclass
class Plan:
    """What a (re)run must judge, and what is already done."""

    mode: Mode
    columns: Columns
    out: Path
    judge_id: str
    hashes: dict[int, str] = field(default_factory=dict)
    pending: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    skipped: int = 0
    changed: int = 0
    retried: int = 0

    @property
    def total(self) -> int:
        return len(self.hashes)


def plan_run(
    rows: Iterable[Mapping[str, Any]],
    out: str | Path,
    *,
    mode: Mode = "score",
    columns: Columns | None = None,
    judge_id: str = "",
    retry_failed: bool = False,
    limit: int | None = None,
) -> Plan:
    """Compare the data with what ``out`` already holds; raises if a judged column is absent."""
    columns = columns or Columns()
    plan = Plan(mode=mode, columns=columns, out=Path(out), judge_id=judge_id)
    done = latest_results(plan.out)
    for index, row in enumerate(rows):
        if limit is not None and index >= limit:
            break
        if index == 0:
            _check_columns(row, columns, mode)
        hashed = _hashed(columns, mode)
        if columns.rubric and columns.rubric in row:  # data without rubrics keeps its old hashes
            hashed = (*hashed, columns.rubric)
        digest = input_hash([row.get(c) for c in hashed], judge_id)
        plan.hashes[index] = digest
        previous = done.get(index)
        if previous is not None and previous.get("input_hash") == digest:
            if previous.get("ok") or not retry_failed:
                plan.skipped += 1
                continue
            plan.retried += 1
        elif previous is not None:
            plan.changed += 1
        plan.pending.append((index, dict(row)))
    return plan


def _hashed(columns: Columns, mode: Mode) -> tuple[str, ...]:
    judged = columns.judged(mode)
    return (*judged, columns.reference) if columns.reference else judged


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
    with _Appender(plan.out) as append:
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
    in_flight: set[asyncio.Task[Record]] = set()
    todo = iter(plan.pending if rows is None else rows)
    try:
        while True:
            # keep ``limit`` rows in flight; yield each record as soon as its row is done
            for index, row in itertools.islice(todo, limit - len(in_flight)):
                in_flight.add(asyncio.create_task(_judge_row(judge, plan, index, row)))
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


def _outcomes(done: set[asyncio.Task[Record]]) -> tuple[list[Record], BaseException | None]:
    """The records of finished rows, and the first run-level abort among them (if any)."""
    records: list[Record] = []
    abort: BaseException | None = None
    for task in done:
        error = task.exception()
        if error is not None:
            abort = abort or error
            continue
        records.append(task.result())
    return records, abort


async def _judge_row(judge: BaseJudge[Any], plan: Plan, index: int, row: dict[str, Any]) -> Record:
    columns = plan.columns
    record: Record = {"index": index, "input_hash": plan.hashes[index]}
    if columns.id and columns.id in row:
        record["id"] = row[columns.id]
    missing = [c for c in columns.judged(plan.mode) if row.get(c) is None]
    if missing:
        return {**record, **_failure("input", "MissingColumn", f"no value in {missing}")}
    reference = row.get(columns.reference) if columns.reference else None
    if reference == "":
        reference = None  # an empty CSV cell is no reference
    if columns.rubric and columns.rubric in row and getattr(judge, "rubric_column", None):
        reference = with_rubric(reference, row[columns.rubric], index)
    try:
        if plan.mode == "score":
            outcome = await judge.ajudge_safe(row[columns.prompt], row[columns.response], reference)
        else:
            outcome = await _compare(judge, row, columns)
    except ConfigurationError as exc:  # this row's values are unusable (e.g. not text)
        outcome = exc
    if isinstance(outcome, _RUN_LEVEL):
        raise RunAborted(outcome)
    if isinstance(outcome, BaseException):
        kind = outcome.kind if isinstance(outcome, JudgeError) else "internal"
        return {**record, **_failure(kind, type(outcome).__name__, str(outcome))}
    return {**record, "ok": True, **_dump(outcome)}


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


def _failure(kind: str, error_type: str, message: str) -> Record:
    return {"ok": False, "error": {"kind": kind, "type": error_type, "message": message[:2000]}}


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
    check_judge_type(config, plan.mode)
    session = (
        ajudge_session(config) if announce is None else ajudge_session(config, announce=announce)
    )
    async with session as judge:
        return await run_plan(judge, plan, window=window, on_record=on_record)


class _Appender:
    """Append-and-flush writer; starts on a fresh line if a kill left the last one unfinished."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> Callable[[Record], None]:
        needs_newline = False
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb") as existing:
                existing.seek(-1, os.SEEK_END)
                needs_newline = existing.read(1) != b"\n"
        self._file = self.path.open("a", encoding="utf-8")
        if needs_newline:
            self._file.write("\n")
        return self.append

    def append(self, record: Record) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._file.flush()

    def __exit__(self, *exc: object) -> None:
        self._file.close()


# -- after the run ---------------------------------------------------------------------------------


def current_results(plan: Plan) -> dict[int, Record]:
    """Records of ``plan.out`` that belong to the current data and judge (newest per index)."""
    return {
        index: record
        for index, record in latest_results(plan.out).items()
        if plan.hashes.get(index) == record.get("input_hash")
    }


def sort_results(plan: Plan) -> int:
    """Rewrite the output in input order, keeping only current records (atomic replace)."""
    records = current_results(plan)
    fd, tmp = tempfile.mkstemp(dir=plan.out.parent, prefix=plan.out.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for index in sorted(records):
                handle.write(json.dumps(records[index], ensure_ascii=False, default=str) + "\n")
        os.replace(tmp, plan.out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(records)


@dataclass(frozen=True)
class Summary:
    """What the output holds for the current data: scores (or winners), failures, tokens, cost."""

    rows: int
    judged: int
    failed: int
    missing: int
    mean: float | None
    distribution: dict[str, int]
    criteria_means: dict[str, float]
    failures: dict[str, int]
    parse_failure_rate: float | None
    input_tokens: int
    output_tokens: int
    requests: int
    cost: float | None
    consistency: float | None = None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    def lines(self) -> list[str]:
        """A plain-text report (the CLI prints it)."""
        out = [f"rows: {self.rows}  judged: {self.judged}  failed: {self.failed}"]
        if self.missing:
            out.append(f"not judged yet: {self.missing} (rerun the same command to resume)")
        if self.mean is not None:
            out.append(f"mean score: {self.mean:.4f}")
        for name, value in self.criteria_means.items():
            out.append(f"  {name}: {value:.3f}")
        if self.distribution:
            dist = "  ".join(f"{k}: {v}" for k, v in self.distribution.items())
            out.append(f"distribution: {dist}")
        if self.consistency is not None:
            out.append(f"position consistency: {self.consistency:.1%}")
        if self.failures:
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.failures.items()))
            out.append(f"failures by kind: {kinds}")
        out.append(
            f"tokens: {self.input_tokens} in, {self.output_tokens} out ({self.requests} requests)"
        )
        if self.cost is not None:
            out.append(f"cost: ${self.cost:.4f}")
        return out


def check_judge_type(config: JudgeConfig, mode: Mode) -> None:
    """Rows are scored by a rubric judge and compared by a preference judge; say which otherwise."""
    wanted = "rubric" if mode == "score" else "preference"
    if config.type == wanted:
        return
    if config.type == "listwise":
        raise ConfigurationError(
            f"a listwise judge scores the completions of one prompt against each other (a GRPO "
            f"group), not rows one at a time: {mode} rows with a judge config of type: {wanted}, "
            "and use the listwise judge as a reward function (judge.as_reward_func())"
        )
    command = "score" if config.type == "rubric" else "compare"
    raise ConfigurationError(
        f"a {config.type} judge cannot {mode} rows: use `rftjudge {command}`, or a judge "
        f"config with type: {wanted}"
    )


def summarize(records: Iterable[Record], rows: int, price: Price | None = None) -> Summary:
    """Summarise the records of one data set (``rows`` rows; the rest count as missing)."""
    records = list(records)
    ok = [r for r in records if r.get("ok")]
    failures = Counter(
        str((r.get("error") or {}).get("kind", "error")) for r in records if not r.get("ok")
    )
    usage = Counter[str]()
    for record in ok:
        for key in ("input_tokens", "output_tokens", "requests"):
            usage[key] += int((record.get("usage") or {}).get(key) or 0)
    scores = [float(r["score"]) for r in ok if isinstance(r.get("score"), int | float)]
    winners = Counter(str(r["winner"]) for r in ok if r.get("winner") is not None)
    flags = [bool(r["consistent"]) for r in ok if r.get("consistent") is not None]
    criteria: dict[str, list[float]] = {}
    for record in ok:
        for name, value in (record.get("normalized") or {}).items():
            criteria.setdefault(name, []).append(float(value))
    return Summary(
        rows=rows,
        judged=len(ok),
        failed=len(records) - len(ok),
        missing=max(0, rows - len(records)),
        mean=math.fsum(scores) / len(scores) if scores else None,
        distribution=_distribution(scores) if scores else dict(sorted(winners.items())),
        criteria_means={k: math.fsum(v) / len(v) for k, v in criteria.items()},
        failures=dict(failures),
        parse_failure_rate=(
            sum(failures[k] for k in _PARSE_KINDS) / len(records) if records else None
        ),
        input_tokens=usage["input_tokens"],
        output_tokens=usage["output_tokens"],
        requests=usage["requests"],
        cost=price.cost(usage["input_tokens"], usage["output_tokens"]) if price else None,
        consistency=sum(flags) / len(flags) if flags else None,
    )


def _distribution(scores: Sequence[float]) -> dict[str, int]:
    """Counts per distinct score when there are few (a Likert scale), else ten equal bins."""
    distinct = sorted(set(round(s, 4) for s in scores))
    if len(distinct) <= 11:
        counts = Counter(round(s, 4) for s in scores)
        return {f"{v:g}": counts[v] for v in distinct}
    bins = Counter(min(int(s * 10), 9) for s in scores)
    return {f"{b / 10:.1f}-{(b + 1) / 10:.1f}": bins[b] for b in range(10) if bins[b]}
