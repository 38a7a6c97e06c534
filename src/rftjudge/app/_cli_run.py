"""What the data commands (``score``, ``compare``, ``calibrate``, ``rubrics``) share.

Their common options, where results go by default, the judge config, logging, and running a
plan with a progress bar (Ctrl-C keeps every finished line) then printing its summary.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from ._cli_errors import _one_line
from ._config_files import with_rubric_column
from .config import DEFAULT_JUDGE, DEFAULT_PREFERENCE_JUDGE, JudgeConfig, fingerprint, load_config
from .scoring import (
    Columns,
    Mode,
    Plan,
    Record,
    RunAborted,
    check_judge_type,
    current_results,
    judge_plan,
    plan_run,
    read_rows,
    sort_results,
    summarize,
)

F = TypeVar("F", bound=Callable[..., Any])
_stderr = Console(stderr=True, highlight=False)


def _announce(message: str) -> None:
    _stderr.print(message, style="yellow", markup=False, soft_wrap=True)


def _data_options(func: F) -> F:
    options = [
        click.option(
            "--judge",
            "judge_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Judge config (YAML/TOML/JSON). Default: the bundled judge, on the "
            "offline local model.",
        ),
        click.option("--prompt-column", default="prompt", show_default=True),
        click.option(
            "--reference-column",
            default="reference",
            show_default=True,
            help="Used when the data has it; empty cells mean no reference.",
        ),
        click.option(
            "--id-column",
            default="id",
            show_default=True,
            help="Copied into each result line when the data has it.",
        ),
        click.option("--split", default=None, help="Split of a Hugging Face dataset."),
        click.option(
            "--limit", type=click.IntRange(min=1), default=None, help="Judge only the first N rows."
        ),
        click.option(
            "--retry-failed",
            is_flag=True,
            help="Judge again the rows whose earlier result is an error.",
        ),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar."),
        click.option("-v", "--verbose", is_flag=True, help="Log each failed judgment."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _rubric_option(func: F) -> F:
    """``--rubric-column``, for the commands that judge rows with a rubric judge."""
    return click.option(
        "--rubric-column",
        default=None,
        help="Column holding each row's own rubric (docs/rubrics.md); turns per-row rubrics on "
        "for a rubric judge, which then needs no criteria. Default: the judge config's "
        "rubric_column, else `rubric` when the data has it.",
    )(func)


def _default_out(data: str, suffix: str) -> Path:
    """Next to the data (``dir/data.jsonl`` → ``dir/data.scores.jsonl``); for ``hf:NAME``, in the
    current directory. The commands print where their results went."""
    if data.startswith("hf:"):
        return Path(re.sub(r"[^A-Za-z0-9_.-]+", "_", data.removeprefix("hf:")) + suffix)
    path = Path(data)
    stem = path.name if path.is_dir() else path.stem
    return path.parent / (stem + suffix)


@contextmanager
def _logging(verbose: bool) -> Iterator[None]:
    """Failed judgments are results in the output file; print each one only with --verbose.

    The logger is restored afterwards, so running a command in-process (tests, notebooks) leaves
    the caller's logging as it was.
    """
    logger = logging.getLogger("rftjudge")
    saved = (logger.handlers[:], logger.propagate, logger.level)
    if verbose:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        logger.setLevel(logging.INFO)
    else:
        handler = logging.NullHandler()
        logger.propagate = False
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.handlers[:], logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])


def _judge_config(
    judge_file: Path | None,
    mode: Mode,
    *,
    groups: bool = False,
    rubric_column: str | None = None,
) -> JudgeConfig:
    """The judge of a command; a listwise one is refused before any data is read, unless the
    command judges ``groups`` (``score``, which then checks the judge itself).
    ``rubric_column`` (``--rubric-column``) replaces the config's."""
    if judge_file is not None:
        config = load_config(judge_file, rubric_column=rubric_column)
    else:
        config = DEFAULT_JUDGE if mode == "score" else DEFAULT_PREFERENCE_JUDGE
        if rubric_column is not None:
            config = with_rubric_column(config, rubric_column, source="the default judge")
    if config.type == "listwise" and not groups:
        check_judge_type(config, mode)
    return config


def _run(config: JudgeConfig, plan: Plan, quiet: bool, ray_actors: int | None = None) -> None:
    """Judge what the plan has left, with a progress bar; Ctrl-C keeps every finished line.

    ``ray_actors``: judge on a Ray cluster with that many actors (``--ray``) instead of here.
    """
    if plan.skipped or plan.changed or plan.retried:
        parts = [f"{plan.skipped} rows already judged (skipped)"]
        if plan.changed:
            parts.append(f"{plan.changed} changed since (judged again)")
        if plan.retried:
            parts.append(f"{plan.retried} failed before (retried)")
        _announce(f"{plan.out}: " + ", ".join(parts))
    if not plan.pending:
        return
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=_stderr,
        disable=quiet or not _stderr.is_terminal,
    )
    task = progress.add_task("judging", total=len(plan.pending))

    def advance(record: Record) -> None:
        progress.advance(task)

    try:
        with progress:
            if ray_actors is None:
                asyncio.run(judge_plan(config, plan, announce=_announce, on_record=advance))
            else:
                from .ray import judge_plan_on_ray

                judge_plan_on_ray(config, plan, actors=ray_actors, on_record=advance)
    except KeyboardInterrupt:
        done = len(current_results(plan))
        _stderr.print(
            f"interrupted: {done} of {plan.total} rows are in {plan.out}; "
            "run the same command again to resume",
            markup=False,
            soft_wrap=True,
        )
        raise SystemExit(130) from None
    except RunAborted as exc:
        raise click.ClickException(
            _one_line(
                f"{exc} — nothing was recorded for the rows not yet judged; fix the problem and "
                "run the same command again to resume"
            )
        ) from None


def _finish(config: JudgeConfig, plan: Plan, *, sort: bool, as_json: bool) -> None:
    if sort:
        sort_results(plan)
    summary = summarize(current_results(plan).values(), plan.total, config.price)
    if as_json:
        click.echo(json.dumps({"results": str(plan.out), **summary.to_dict()}, indent=2))
    else:
        click.echo(f"results: {plan.out}")
        for line in summary.lines():
            click.echo(line)


def _columns(
    common: dict[str, Any], config: JudgeConfig, rubric_column: str | None = None, **names: Any
) -> Columns:
    """The data's columns; per-row rubrics come from ``--rubric-column``, else the config's
    ``rubric_column``, else ``rubric`` (read when the data has it and the judge takes rubrics)."""
    return Columns(
        prompt=common["prompt_column"],
        reference=common["reference_column"] or None,
        id=common["id_column"] or None,
        rubric=rubric_column or config.rubric_column or "rubric",
        rubric_named=rubric_column is not None,
        **names,
    )


def _plan(
    data: str,
    out: Path,
    mode: Mode,
    columns: Columns,
    config: JudgeConfig,
    common: dict[str, Any],
    *,
    grouped: bool = False,
) -> Plan:
    return plan_run(
        read_rows(data, split=common["split"]),
        out,
        mode=mode,
        columns=columns,
        judge_id=fingerprint(config),
        retry_failed=common["retry_failed"],
        limit=common["limit"],
        grouped=grouped,
    )
