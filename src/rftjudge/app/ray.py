"""Judge a data set too large for one process on a Ray cluster (``pip install "rftjudge[ray]"``).

``score(dataset, judge, output)`` (or ``rftjudge score DATA --judge J --ray``) gives the same
output file as the single-process ``rftjudge score``, line for line: the same row keys (row
``index`` and ``input_hash``), the same records, the same resumability — because it reuses
:mod:`rftjudge.scoring` for all of them:

- the driver reads the rows (:func:`~rftjudge.scoring.read_rows`, or a ``ray.data.Dataset`` in
  its order) and plans the run (:func:`~rftjudge.scoring.plan_run`): rows already in the output
  with the same hash are skipped, so an interrupted run resumes where it stopped;
- the rows left are a Ray Data pipeline through an actor pool: each actor builds **one** judge
  — from the config, or by replaying the constructor calls of a judge object passed in (see
  :mod:`rftjudge._rebuild`) — with one client: one connection pool, one AIMD state, its share of a
  shared Redis budget; it judges the batches it is given concurrently with
  :func:`~rftjudge.scoring.judge_records`, at the client's full concurrency (the UDF is async,
  so an actor works on several batches at once);
- the driver appends every record to the output as it arrives (flushed line by line, as the CLI
  does), then optionally rewrites it in input order (``sort=True``) and exports it to Parquet
  with the same columns (``parquet=``).

The judging — prompt rendering, HTTP, parsing, retries — is what costs, and it is spread over the
actors; the driver only reads rows, hashes them and writes lines. Size the actors' total
concurrency (``actors × max_concurrency``) to what the judge deployment takes, or give the config a
shared budget (``limits: {backend: redis://..., key: ..., max_in_flight: ...}``) so that the
actors and any trainer processes on the same judge share one bound. Each actor reads the API key
from its own environment (``api_key_env``): set it on the workers (the cluster's environment or a
``runtime_env``), not in the config.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError
from .._rebuild import recipe
from ..judges.base import BaseJudge
from ..judges.preference import PreferenceJudge
from ..judges.rubric import RubricJudge
from .config import JudgeConfig, build_client, build_judge, fingerprint, load_config
from .scoring import (
    Columns,
    Mode,
    OnRecord,
    Plan,
    RunAborted,
    RunStats,
    Summary,
    _Appender,
    check_judge_type,
    current_results,
    judge_records,
    plan_run,
    read_rows,
    sort_results,
    summarize,
)

__all__ = ["judge_plan_on_ray", "score", "write_parquet"]


def _ray() -> Any:
    try:
        import ray  # type: ignore[import-not-found, unused-ignore]
        import ray.data  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise ImportError('scoring on Ray needs Ray Data: pip install "rftjudge[ray]"') from None
    return ray


JudgeSpec = JudgeConfig | str | Path | RubricJudge | PreferenceJudge
"""A judge config (object or file), or a rubric / preference judge object."""


def score(
    dataset: Any,
    judge: JudgeSpec,
    output: str | Path,
    *,
    mode: Mode | None = None,
    columns: Columns | None = None,
    actors: int = 2,
    num_cpus: float = 1.0,
    batch_size: int | None = None,
    retry_failed: bool = False,
    limit: int | None = None,
    split: str | None = None,
    sort: bool = True,
    parquet: str | Path | None = None,
    on_record: OnRecord | None = None,
) -> Summary:
    """Judge every row of ``dataset`` on Ray into ``output`` (JSONL, resumable) and summarise it.

    ``dataset``: a data file or Hugging Face dataset name (read as ``rftjudge score`` reads it), a
    ``ray.data.Dataset`` (taken in its order), or an iterable of row dicts. ``judge``: a
    :class:`~rftjudge.config.JudgeConfig` or a config file naming a provider and model, or a
    :class:`~rftjudge.RubricJudge` / :class:`~rftjudge.PreferenceJudge` object (each actor
    rebuilds it from the same constructor arguments: a key passed as ``api_key=`` travels with
    it, a key from the environment is read from each actor's). ``mode``: ``"score"`` for a rubric
    judge, ``"compare"`` for a preference judge (default: the judge's). Starts a local Ray instance
    unless one is running or ``RAY_ADDRESS`` names a cluster.
    """
    spec = _spec(judge)
    plan = plan_run(
        _rows(dataset, split),
        output,
        mode=mode or _mode_of(spec),
        columns=columns,
        judge_id=_judge_id(spec),
        retry_failed=retry_failed,
        limit=limit,
    )
    judge_plan_on_ray(
        spec, plan, actors=actors, num_cpus=num_cpus, batch_size=batch_size, on_record=on_record
    )
    if sort:
        sort_results(plan)
    if parquet is not None:
        write_parquet(plan, parquet)
    price = spec.price if isinstance(spec, JudgeConfig) else None
    return summarize(current_results(plan).values(), plan.total, price)


def _spec(judge: JudgeSpec) -> JudgeConfig | BaseJudge[Any]:
    if isinstance(judge, JudgeConfig | RubricJudge | PreferenceJudge):
        return judge
    if isinstance(judge, str | Path):
        return load_config(judge)
    raise ConfigurationError(
        "judge must be a JudgeConfig, a judge config file, a RubricJudge or a PreferenceJudge; "
        f"got {type(judge).__name__}"
    )


def _mode_of(spec: JudgeConfig | BaseJudge[Any]) -> Mode:
    if isinstance(spec, JudgeConfig):
        return "score" if spec.type == "rubric" else "compare"
    return "score" if isinstance(spec, RubricJudge) else "compare"


def _judge_id(spec: JudgeConfig | BaseJudge[Any]) -> str:
    """What keys resumable output: a config's fingerprint, or a digest of a judge's recipe."""
    if isinstance(spec, JudgeConfig):
        return fingerprint(spec)
    text = json.dumps(recipe(spec), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def judge_plan_on_ray(
    judge: JudgeConfig | BaseJudge[Any],
    plan: Plan,
    *,
    actors: int = 2,
    num_cpus: float = 1.0,
    batch_size: int | None = None,
    on_record: OnRecord | None = None,
) -> RunStats:
    """Judge ``plan.pending`` with an actor pool, appending each record to ``plan.out`` (what
    :func:`rftjudge.scoring.judge_plan` does in one process; the CLI's ``--ray``)."""
    if not isinstance(actors, int) or actors < 1:
        raise ConfigurationError(f"actors must be an int >= 1, got {actors!r}")
    if isinstance(judge, JudgeConfig):
        if judge.uses_local_judge:
            raise ConfigurationError(
                "scoring on Ray needs a judge config that names a provider and model (or a "
                "base_url): every actor connects to the judge itself, and the offline local judge "
                "serves only this machine"
            )
        check_judge_type(judge, plan.mode)
        portable: JudgeConfig | BaseJudge[Any] = _portable(judge)
        concurrency = judge.max_concurrency or 32
    else:
        kind = RubricJudge if plan.mode == "score" else PreferenceJudge
        if not isinstance(judge, kind):
            raise ConfigurationError(
                f"a {type(judge).__name__} cannot {plan.mode} rows: pass a {kind.__name__}"
            )
        portable = judge
        concurrency = getattr(judge.client, "max_concurrency", 32)
    stats = RunStats()
    if not plan.pending:
        return stats
    ray = _ray()
    if not ray.is_initialized():
        ray.init(log_to_driver=False)
    size = batch_size or 2 * concurrency
    columns = plan.columns
    wanted = {columns.prompt, columns.response, columns.response_a, columns.response_b}
    wanted.update(c for c in (columns.reference, columns.id, columns.rubric) if c)
    items = [
        {
            "index": index,
            "input_hash": plan.hashes[index],
            "payload": pickle.dumps({k: v for k, v in row.items() if k in wanted}),
        }
        for index, row in plan.pending
    ]
    blocks = max(actors * 4, -(-len(items) // size))
    results = ray.data.from_items(items, override_num_blocks=min(blocks, len(items))).map_batches(
        _Scorer,
        fn_constructor_args=(portable, plan.mode, columns, plan.judge_id),
        batch_size=size,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=num_cpus,
    )
    plan.out.parent.mkdir(parents=True, exist_ok=True)
    with _Appender(plan.out) as append:
        try:
            for row in results.iter_rows():
                record = json.loads(row["record"])
                append(record)
                stats.judged += 1
                stats.failed += not record["ok"]
                if on_record is not None:
                    on_record(record)
        except Exception as exc:
            abort = _abort_in(exc)
            if abort is not None:
                raise abort from None
            raise
    return stats


class _Scorer:
    """The Ray Data UDF: one judge per actor, each batch judged concurrently (async)."""

    def __init__(
        self, judge: JudgeConfig | BaseJudge[Any], mode: Mode, columns: Columns, judge_id: str
    ) -> None:
        # A judge object arrives rebuilt from its constructor calls (rftjudge._rebuild)
        self.judge = (
            build_judge(judge, build_client(judge)) if isinstance(judge, JudgeConfig) else judge
        )
        self.mode: Mode = mode
        self.columns = columns
        self.judge_id = judge_id

    async def __call__(self, batch: Mapping[str, Any]) -> dict[str, list[str]]:
        indices = [int(i) for i in batch["index"]]
        plan = Plan(
            mode=self.mode,
            columns=self.columns,
            out=Path(),
            judge_id=self.judge_id,
            hashes=dict(zip(indices, (str(h) for h in batch["input_hash"]), strict=True)),
        )
        rows = [(i, pickle.loads(p)) for i, p in zip(indices, batch["payload"], strict=True)]
        records = [r async for r in judge_records(self.judge, plan, rows)]
        return {"record": [json.dumps(r, ensure_ascii=False, default=str) for r in records]}


def write_parquet(plan: Plan, path: str | Path) -> int:
    """Write the current records of ``plan.out`` in input order as Parquet (the JSONL's columns;
    nested values such as ``criteria`` and ``usage`` become struct columns). Returns the rows."""
    try:
        import pyarrow as pa  # type: ignore[import-untyped, import-not-found, unused-ignore]
        import pyarrow.parquet as pq  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        raise ImportError('writing Parquet needs pyarrow: pip install "rftjudge[ray]"') from None
    records = current_results(plan)
    table = pa.Table.from_pylist([records[i] for i in sorted(records)])
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, target)
    return int(table.num_rows)


def _rows(dataset: Any, split: str | None) -> Iterable[Mapping[str, Any]]:
    if isinstance(dataset, str | Path):
        return read_rows(dataset, split=split)
    iter_rows: Callable[[], Iterable[Mapping[str, Any]]] | None = getattr(
        dataset, "iter_rows", None
    )
    if iter_rows is not None:  # a ray.data.Dataset: row indices follow its order
        return _ordered(dataset)
    return dataset  # type: ignore[no-any-return]


def _ordered(dataset: Any) -> Iterable[Mapping[str, Any]]:
    """A Ray dataset's rows in a stable order (resuming needs the same index for the same row)."""
    ray = _ray()
    context = ray.data.DataContext.get_current()
    before = context.execution_options.preserve_order
    context.execution_options.preserve_order = True
    try:
        yield from dataset.iter_rows()
    finally:
        context.execution_options.preserve_order = before


def _portable(config: JudgeConfig) -> JudgeConfig:
    """The config with a template file inlined, so that actors on other nodes need no file."""
    template = config.template
    if template is not None and "\n" not in template and Path(template).is_file():
        return config.model_copy(update={"template": Path(template).read_text(encoding="utf-8")})
    return config


def _abort_in(error: BaseException) -> RunAborted | None:
    """The run-level abort an actor raised, through Ray's wrapping of it, if that is the cause."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, RunAborted):
            return RunAborted(current.cause)
        cause = getattr(current, "cause", None)
        current = cause if isinstance(cause, BaseException) else current.__cause__
    return None
