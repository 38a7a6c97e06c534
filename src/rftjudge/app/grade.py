"""``rftjudge grade``: an OpenAI grader config over a data set, offline, resumable.

The replacement for a hosted grader run: each row of DATA is the ``item``, its response column the
model ``sample``; every ``score_model``/``label_model`` runs on the client ``--model`` names. The
output machinery is ``score``'s (:mod:`rftjudge.app.scoring`): one JSONL line per row as soon as it
is graded, a rerun skips rows already graded with the same input and grader, Ctrl-C loses only the
rows in flight. ``rftjudge grade --validate grader.json`` checks a config without data or clients.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import click

from .._errors import ConfigurationError, JudgeError
from ..clients._protocol import Client
from ..clients._registry import client as make_client
from ..graders import load_openai_grader, validate_grader
from .config import build_client, load_config
from .scoring import Columns, Record, RunAborted, current_results, plan_run, read_rows, run_plan
from .scoring import sort_results as sort_output

__all__ = ["grade", "grade_rows", "parse_model_specs", "summarize_grades"]

_ITEM = "__item__"
_SAMPLE = "__sample__"


def parse_model_specs(specs: Iterable[str]) -> dict[str, str]:
    """``NAME=SPEC`` pairs (a bare ``SPEC`` serves every model: ``*``)."""
    models: dict[str, str] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep:
            name, value = "*", spec
        if not name or not value:
            raise ConfigurationError(f"--model {spec!r}: expected NAME=SPEC or SPEC")
        models[name.strip()] = value.strip()
    return models


def _client(spec: str) -> Client:
    """A client from ``provider:model[@base_url]`` or a judge config file (its client part)."""
    path = Path(spec)
    if path.suffix in (".yaml", ".yml", ".toml", ".json") and path.exists():
        return build_client(load_config(path), source=str(path))
    return make_client(spec)


def _rows(
    data: Iterable[Mapping[str, Any]], response: str, id_column: str | None
) -> Iterator[dict[str, Any]]:
    for row in data:
        wrapped = {_ITEM: dict(row), _SAMPLE: row.get(response)}
        if id_column and id_column in row:
            wrapped[id_column] = row[id_column]
        yield wrapped


async def grade_rows(
    grader_config: Any,
    data: Iterable[Mapping[str, Any]],
    out: str | Path,
    *,
    models: Mapping[str, str] | None = None,
    clients: Mapping[str, Client] | Client | None = None,
    response_column: str = "response",
    id_column: str | None = "id",
    on_error: str = "openai",
    retry_failed: bool = False,
    limit: int | None = None,
    concurrency: int = 16,
) -> Any:
    """Grade ``data`` into ``out`` (resuming it); returns the plan (see :mod:`.scoring`).

    ``models`` (name → spec) are built here and closed afterwards; ``clients`` are yours to close.
    """
    config = validate_grader(grader_config)
    identity = json.dumps(
        [config.model_dump(mode="json"), dict(models or {}), on_error], sort_keys=True
    )
    plan = plan_run(
        _rows(data, response_column, id_column),
        out,
        mode="score",
        columns=Columns(prompt=_ITEM, response=_SAMPLE, reference=_ITEM, id=id_column),
        judge_id=hashlib.sha256(identity.encode()).hexdigest()[:16],
        retry_failed=retry_failed,
        limit=limit,
    )
    if not plan.pending:
        return plan
    built = {name: _client(spec) for name, spec in (models or {}).items()}
    try:
        grader = load_openai_grader(config, models=clients or built or None, on_error=on_error)
        # run_plan wants a judge for its row loop only: ajudge_safe, and the window we pass.
        await run_plan(cast(Any, grader), plan, window=2 * concurrency)
    finally:
        for each in built.values():
            close = getattr(each, "aclose", None)
            if close is not None:
                await close()
    return plan


def summarize_grades(records: Iterable[Record], rows: int) -> dict[str, Any]:
    """Mean reward, pass rate (against the grader's pass_threshold) and errors by flag."""
    records = list(records)
    ok = [r for r in records if r.get("ok")]
    rewards = [float(r["score"]) for r in ok if isinstance(r.get("score"), int | float)]
    passed = [bool(r["passed"]) for r in ok if r.get("passed") is not None]
    errors: Counter[str] = Counter()
    for record in records:
        if record.get("ok"):
            errors.update(record.get("errors") or {})
        else:
            errors[str((record.get("error") or {}).get("kind", "error"))] += 1
    return {
        "rows": rows,
        "graded": len(ok),
        "failed": len(records) - len(ok),
        "missing": max(0, rows - len(records)),
        "mean_reward": math.fsum(rewards) / len(rewards) if rewards else None,
        "pass_rate": sum(passed) / len(passed) if passed else None,
        "errors": dict(sorted(errors.items())),
    }


@click.command()
@click.argument("data", required=False)
@click.option(
    "--openai-grader",
    "grader_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The OpenAI grader config (JSON).",
)
@click.option(
    "--validate",
    "validate_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Only check this grader config, as /graders/validate would.",
)
@click.option(
    "--model",
    "model_specs",
    multiple=True,
    metavar="NAME=SPEC",
    help="Client for grader model NAME: provider:model[@base_url] or a judge config file; "
    "a bare SPEC (or NAME *) serves every model. Repeatable.",
)
@click.option("--response-column", default="response", show_default=True)
@click.option("--id-column", default="id", show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Results (JSONL). Default: DATA's name + .grades.jsonl. Rerun to resume.",
)
@click.option(
    "--on-error",
    type=click.Choice(["openai", "abstain"]),
    default="openai",
    show_default=True,
    help="openai: an ungradable sample scores 0 (with its error flag); abstain: no score.",
)
@click.option("--split", default=None, help="Dataset split (Hub datasets).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N rows.")
@click.option("--retry-failed", is_flag=True, help="Grade rows that failed before again.")
@click.option("--concurrency", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--sorted", "sort", is_flag=True, help="Rewrite the results in input order.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def grade(
    data: str | None,
    grader_file: Path | None,
    validate_file: Path | None,
    model_specs: tuple[str, ...],
    response_column: str,
    id_column: str,
    output: Path | None,
    on_error: str,
    split: str | None,
    limit: int | None,
    retry_failed: bool,
    concurrency: int,
    sort: bool,
    as_json: bool,
) -> None:
    """Grade each row of DATA with an OpenAI RFT grader config, offline (resumable)."""
    try:
        if validate_file is not None:
            config = validate_grader(validate_file)
            click.echo(f"{validate_file}: valid {config.type} grader {config.name!r}")
            return
        if data is None or grader_file is None:
            raise click.UsageError("give DATA and --openai-grader (or --validate FILE)")
        out = output or Path(data).with_suffix(".grades.jsonl")
        plan = asyncio.run(
            grade_rows(
                grader_file,
                read_rows(data, split=split),
                out,
                models=parse_model_specs(model_specs),
                response_column=response_column,
                id_column=id_column or None,
                on_error=on_error,
                retry_failed=retry_failed,
                limit=limit,
                concurrency=concurrency,
            )
        )
    except RunAborted as exc:
        raise click.ClickException(f"{exc}; rerun the same command to resume") from None
    except (JudgeError, ImportError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        raise click.ClickException("interrupted: rerun the same command to resume") from None
    if sort:
        sort_output(plan)
    summary = summarize_grades(current_results(plan).values(), plan.total)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"results: {plan.out}")
    click.echo(f"rows: {summary['rows']}  graded: {summary['graded']}  failed: {summary['failed']}")
    if summary["missing"]:
        click.echo(f"not graded yet: {summary['missing']} (rerun the same command to resume)")
    if summary["mean_reward"] is not None:
        click.echo(f"mean reward: {summary['mean_reward']:.4f}")
    if summary["pass_rate"] is not None:
        click.echo(f"pass rate: {summary['pass_rate']:.1%}")
    if summary["errors"]:
        click.echo("errors: " + ", ".join(f"{k} {v}" for k, v in summary["errors"].items()))
