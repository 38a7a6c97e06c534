"""The ``rftjudge`` command: argument parsing and wiring only.

The work lives in the library — :mod:`rftjudge.config` (judge files), :mod:`rftjudge.scoring`
(resumable data set judging), :mod:`rftjudge.report` and :mod:`rftjudge.calibration` (agreement with
human labels), :mod:`rftjudge.local` (the offline judge server) — so that everything the command does
is also a tested Python call. Needs ``pip install "rftjudge[cli]"`` (click, rich, PyYAML).

Output conventions: results and summaries go to stdout, progress and announcements to stderr.
The data commands live here; what they share is in ``_cli_run``, the one-line errors in
``_cli_errors``, the serving commands (``local``, ``serve``) in ``_cli_serve``, ``grade`` in ``grade``.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

try:
    import click
    import rich  # noqa: F401 - the progress bar's; fail here, with the hint, when it is missing
except ImportError as exc:  # pragma: no cover - exercised by installs without the extra
    raise ImportError(
        f'the rftjudge command needs its extra: pip install "rftjudge[cli]" ({exc})'
    ) from exc

from .._errors import ConfigurationError
from .._version import __version__
from ._cli_errors import _App, _friendly_errors
from ._cli_run import (
    _announce,
    _columns,
    _data_options,
    _default_out,
    _finish,
    _judge_config,
    _logging,
    _plan,
    _rubric_option,
    _run,
)
from ._cli_serve import local, serve
from .config import fingerprint
from .scoring import BadRow, Mode, check_judge_type, current_results, plan_run, read_rows

__all__ = ["app", "main"]


@click.group(cls=_App, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rftjudge")
@click.option("--debug", is_flag=True, help="Show the traceback of an error (default: one line).")
def app(debug: bool) -> None:
    """rftjudge: LLM-as-a-judge reward functions — judge data sets, calibrate judges, serve them."""


@app.command()
@click.argument("data")
@_data_options
@click.option("--response-column", default="response", show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Results (JSONL). Default: DATA's name + .scores.jsonl. Rerun to resume.",
)
@click.option(
    "--sorted", "sort", is_flag=True, help="Rewrite the results in input order at the end."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--ray",
    "use_ray",
    is_flag=True,
    help='Judge on a Ray cluster (RAY_ADDRESS, or a local one): pip install "rftjudge[ray]".',
)
@click.option(
    "--ray-actors", type=click.IntRange(min=1), default=2, show_default=True, help="With --ray."
)
@click.option(
    "--group-column",
    default=None,
    help="Group mode: rows with the same value here are judged together by a group judge "
    "(type: listwise, or preference). A listwise judge without it groups consecutive rows "
    "that share a prompt.",
)
@click.option(
    "--parquet",
    "parquet",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the results, in input order, as Parquet (needs pyarrow).",
)
@_rubric_option
def score(
    data: str,
    judge_file: Path | None,
    output: Path | None,
    response_column: str,
    sort: bool,
    as_json: bool,
    use_ray: bool,
    ray_actors: int,
    group_column: str | None,
    parquet: Path | None,
    rubric_column: str | None,
    **common: Any,
) -> None:
    """Score each row of DATA (JSONL, JSON, CSV, Parquet, a folder saved by `datasets`,
    hf:NAME for the Hugging Face Hub) with a rubric judge; one result line per row, written as
    soon as it is judged. With a listwise judge (or --group-column), the rows of a prompt are
    judged together, as a group."""
    with _logging(common.pop("verbose")), _friendly_errors():
        config = _judge_config(judge_file, "score", groups=True, rubric_column=rubric_column)
        grouped = group_column is not None or config.type == "listwise"
        check_judge_type(config, "score", grouped=grouped)
        if grouped and use_ray:
            raise ConfigurationError("--ray judges rows one at a time: no group mode with it")
        columns = _columns(
            common, config, rubric_column, response=response_column, group=group_column
        )
        out = output or _default_out(data, ".scores.jsonl")
        plan = _plan(data, out, "score", columns, config, common, grouped=grouped)
        _run(config, plan, common["quiet"], ray_actors if use_ray else None)
        _finish(config, plan, sort=sort, as_json=as_json)
        if parquet is not None:
            from .ray import write_parquet

            write_parquet(plan, parquet)


@app.command()
@click.argument("data")
@_data_options
@click.option("--a-column", default="response_a", show_default=True)
@click.option("--b-column", default="response_b", show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Results (JSONL). Default: DATA's name + .preferences.jsonl.",
)
@click.option(
    "--sorted", "sort", is_flag=True, help="Rewrite the results in input order at the end."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def compare(
    data: str,
    judge_file: Path | None,
    output: Path | None,
    a_column: str,
    b_column: str,
    sort: bool,
    as_json: bool,
    **common: Any,
) -> None:
    """Judge which of response_a and response_b is better, for each row of DATA (a preference
    judge: both orders are asked, disagreeing orders become a tie)."""
    with _logging(common.pop("verbose")), _friendly_errors():
        config = _judge_config(judge_file, "compare")
        columns = _columns(common, config, response_a=a_column, response_b=b_column)
        out = output or _default_out(data, ".preferences.jsonl")
        plan = _plan(data, out, "compare", columns, config, common)
        _run(config, plan, common["quiet"])
        _finish(config, plan, sort=sort, as_json=as_json)


@app.command()
@click.argument("data")
@_data_options
@click.option("--label", "label_column", required=True, help="Column with the human labels.")
@click.option("--response-column", default="response", show_default=True)
@click.option("--a-column", default="response_a", show_default=True)
@click.option("--b-column", default="response_b", show_default=True)
@click.option(
    "--criterion",
    default=None,
    help="Compare this criterion's score (default: the only one, or the overall score).",
)
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where report.md, metrics.json, the plots and judgments.jsonl go. "
    "Default: DATA's name + -calibration.",
)
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots.")
@_rubric_option
def calibrate(
    data: str,
    judge_file: Path | None,
    label_column: str,
    response_column: str,
    a_column: str,
    b_column: str,
    criterion: str | None,
    report_dir: Path | None,
    no_plots: bool,
    rubric_column: str | None,
    **common: Any,
) -> None:
    """Agreement between a judge and human labels in DATA: accuracy, Cohen's and quadratic-weighted
    kappa, Spearman/Pearson, position consistency, failure rates, cost; a Markdown report and plots.

    Labels are scores on the judge's scale (rubric judges; true/false for pass/fail) or A/B/tie
    (preference judges). Judgments are kept in the report folder, so a rerun only judges what is new.
    """
    from .report import calibrate_records, write_report

    with _logging(common.pop("verbose")), _friendly_errors():
        config = _judge_config(judge_file, "score", rubric_column=rubric_column)
        mode: Mode = "score" if config.type == "rubric" else "compare"
        columns = _columns(
            common,
            config,
            rubric_column,
            response=response_column,
            response_a=a_column,
            response_b=b_column,
        )
        rows = list(read_rows(data, split=common["split"]))[: common["limit"]]
        first = next((row for row in rows if not isinstance(row, BadRow)), None)
        if first is not None and label_column not in first:
            raise ConfigurationError(
                f"the data has no label column {label_column!r} (columns: {', '.join(first)})"
            )
        folder = report_dir or _default_out(data, "-calibration")
        plan = plan_run(
            rows,
            folder / "judgments.jsonl",
            mode=mode,
            columns=columns,
            judge_id=fingerprint(config),
            retry_failed=common["retry_failed"],
        )
        _run(config, plan, common["quiet"])
        labels = {i: row.get(label_column) for i, row in enumerate(rows)}
        result = calibrate_records(config, current_results(plan), labels, criterion=criterion)
        details = [
            ("data", data),
            ("judge", str(judge_file) if judge_file else "bundled default (local model)"),
            ("judge type", config.type),
            (
                "model",
                f"{config.resolved_provider}:{config.model}"
                if not config.uses_local_judge
                else "local (llama.cpp server)",
            ),
        ]
        written = write_report(
            result,
            folder,
            title=f"Judge calibration: {Path(data).name}",
            details=details,
            plots=not no_plots,
        )
    a = result.agreement
    click.echo(f"report: {written['report']}")
    click.echo(
        f"compared: {a.n} of {result.rows} rows (labelled {result.labelled}, "
        f"judged {result.judged}, failed {result.failed})"
    )
    for name, value in (
        ("accuracy", a.accuracy),
        ("cohen_kappa", a.kappa),
        ("weighted_kappa", a.weighted_kappa),
        ("spearman", a.spearman),
        ("pearson", a.pearson),
        ("position_consistency", result.consistency),
        ("parse_failure_rate", result.parse_failure_rate),
    ):
        if value is not None:
            click.echo(f"{name}: {value:.3f}")
    if result.cost is not None:
        click.echo(f"cost: ${result.cost:.4f}")
    if result.disagreements:
        click.echo(
            f"disagreements: {len(result.disagreements)} rows (listed in report.md and "
            "metrics.json)"
        )
    if not no_plots and "confusion" not in written:
        _announce('plots skipped: matplotlib is not installed (pip install "rftjudge[plot]")')


from .grade import grade  # noqa: E402 - `rftjudge grade` lives in its own module

app.add_command(local)
app.add_command(serve)
app.add_command(grade)


@app.command()
@click.argument("data")
@_data_options
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Drafted rubrics (JSONL). Default: DATA's name + .rubrics.jsonl.",
)
@click.option("--min-items", type=click.IntRange(1, 64), default=7, show_default=True)
@click.option("--max-items", type=click.IntRange(1, 64), default=20, show_default=True)
def rubrics(
    data: str,
    judge_file: Path | None,
    output: Path | None,
    min_items: int,
    max_items: int,
    **common: Any,
) -> None:
    """Draft a rubric for each prompt of DATA (from the prompt and its reference) with the judge
    model, for a person to review before training; resumable like `score` (docs/rubrics.md)."""
    from .rubrics import draft_with_config

    with _logging(common.pop("verbose")), _friendly_errors():
        config = _judge_config(judge_file, "score")
        out = output or _default_out(data, ".rubrics.jsonl")
        stats = asyncio.run(
            draft_with_config(
                config,
                read_rows(data, split=common["split"]),
                out,
                min_items=min_items,
                max_items=max_items,
                prompt_column=common["prompt_column"],
                reference_column=common["reference_column"] or None,
                id_column=common["id_column"] or None,
                retry_failed=common["retry_failed"],
                limit=common["limit"],
            )
        )
        click.echo(f"rubrics: {out} ({stats.judged} drafted, {stats.failed} failed)")


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwind like Ctrl-C: finished lines kept, the local server stopped


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``rftjudge = "rftjudge.app.cli:main"``).

    SIGTERM (a process manager, ``kill``) is handled like Ctrl-C, so that the ``with`` blocks run
    and a local judge server started by this command does not outlive it.
    """
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        app.main(args=argv, prog_name="rftjudge")
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    main()
