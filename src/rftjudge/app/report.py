"""``rftjudge calibrate``'s analysis: judge results joined with human labels, and the report.

The judgments come from :mod:`rftjudge.scoring` (one JSON record per row); the statistics from
:mod:`rftjudge.calibration`. This module decides what is compared with what:

- a rubric judge's verdict is the integer it wrote for the chosen criterion (``criteria_sampled``;
  the only criterion, by default) — or, over several criteria, the overall score mapped back onto
  the scale and rounded — and its continuous value (``criteria``: the probability-weighted value
  where there is one) is what Spearman and Pearson correlate with the labels;
- a preference judge's verdict is its winner (``A``, ``B``, ``tie``); its ``prob_a`` is correlated
  with the label read as 1 / 0.5 / 0, and position consistency is the share of verdicts that
  survived the swap.

Rows without a usable label are left out and counted; failed judgments are left out of agreement
(a failure is not a disagreement) and reported as failure rates instead.

Plots need matplotlib (``pip install "rftjudge[plot]"``); they are drawn on a private Agg canvas
(no pyplot, so a user's backend is never changed). Without matplotlib the report says so.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from .._errors import ConfigurationError
from ..calibration import Agreement, agreement, pearson, spearman
from ..judges.rubric import Scale
from .config import JudgeConfig

__all__ = ["Calibration", "calibrate_records", "parse_label", "write_report"]

Record = Mapping[str, Any]
_TRUE = {"true", "yes", "pass", "passed", "1", "y", "t"}
_FALSE = {"false", "no", "fail", "failed", "0", "n", "f"}
_WINNERS = {"a": "A", "b": "B", "tie": "tie", "draw": "tie", "equal": "tie", "=": "tie"}
_PARSE_KINDS = ("parse", "truncated")


@dataclass(frozen=True)
class Calibration:
    """Everything the report shows; ``to_dict`` is ``metrics.json``."""

    kind: Literal["rubric", "preference"]
    target: str
    rows: int
    labelled: int
    invalid_labels: int
    judged: int
    failed: int
    failures: dict[str, int]
    failure_rate: float | None
    parse_failure_rate: float | None
    agreement: Agreement
    consistency: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    truth: tuple[Hashable, ...] = ()
    pred: tuple[Hashable, ...] = ()
    scores: tuple[float, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    disagreements: tuple[dict[str, Any], ...] = ()
    """The compared rows where the judge's verdict differs from the label: ``index`` (the row),
    ``id`` (when the data has one), ``judge``, ``human`` and the judge's ``rationale`` — the
    largest differences first on a rubric scale."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("truth", "pred", "scores"):
            data.pop(key)
        return data


def parse_label(value: Any, kind: str, scale: Scale) -> Hashable | None:
    """A human label as the judge's verdict type, or ``None`` when it is missing or unusable."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if kind == "preference":
        return _WINNERS.get(str(value).strip().lower())
    if scale.binary:
        if isinstance(value, bool):
            return int(value)
        text = str(value).strip().lower()
        return 1 if text in _TRUE else 0 if text in _FALSE else None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not number.is_integer() or not (scale.low <= number <= scale.high):
        return None
    return int(number)


def calibrate_records(
    config: JudgeConfig,
    records: Mapping[int, Record],
    labels: Mapping[int, Any],
    *,
    criterion: str | None = None,
) -> Calibration:
    """Join ``records`` (by row index) with raw human ``labels`` and compute the agreement."""
    if config.type == "listwise":
        raise ConfigurationError(
            "a listwise judge judges groups, not labelled rows: calibrate a "
            "rubric or preference judge"
        )
    kind = config.type
    scale = Scale.parse(_scale_spec(config))
    names = [c.name for c in config.criteria or ()]
    if kind == "rubric":
        if criterion is not None and criterion not in names:
            raise ConfigurationError(
                f"--criterion {criterion!r} is not a criterion of this judge ({', '.join(names)})"
            )
        if criterion is None and len(names) == 1:
            criterion = names[0]
    target = "winner" if kind == "preference" else (criterion or "overall score")
    parsed = {i: parse_label(v, kind, scale) for i, v in labels.items()}
    usable = {i: v for i, v in parsed.items() if v is not None}
    invalid = sum(1 for i, v in parsed.items() if v is None and not _blank(labels[i]))
    truth: list[Hashable] = []
    pred: list[Hashable] = []
    scores: list[float] = []
    failures: Counter[str] = Counter()
    judged = failed = 0
    tokens = Counter[str]()
    flags: list[bool] = []
    disagreements: list[dict[str, Any]] = []
    for index, label in sorted(usable.items()):
        record = records.get(index)
        if record is None:
            continue
        if not record.get("ok"):
            failed += 1
            failures[str((record.get("error") or {}).get("kind", "error"))] += 1
            continue
        judged += 1
        for key in ("input_tokens", "output_tokens"):
            tokens[key] += int((record.get("usage") or {}).get(key) or 0)
        verdict, score = _verdict(record, kind, scale, criterion)
        truth.append(label)
        pred.append(verdict)
        scores.append(score)
        if verdict != label:
            disagreements.append(_disagreement(index, record, verdict, label))
        if record.get("consistent") is not None:
            flags.append(bool(record["consistent"]))
    attempted = judged + failed
    if kind == "preference":
        values: Sequence[Hashable] = ("A", "B", "tie")
        result = agreement(truth, pred, values)
        numeric = [{"A": 1.0, "B": 0.0}.get(str(t), 0.5) for t in truth]
        from dataclasses import replace

        result = replace(
            result, spearman=spearman(numeric, scores), pearson=pearson(numeric, scores)
        )
    else:
        result = agreement(truth, pred, scale.values, scores=scores, ordinal=True)
    notes = []
    if not truth:
        notes.append("no row has both a usable label and a successful judgment")
    price = config.price
    return Calibration(
        kind=kind,
        target=target,
        rows=len(labels),
        labelled=len(usable),
        invalid_labels=invalid,
        judged=judged,
        failed=failed,
        failures=dict(failures),
        failure_rate=failed / attempted if attempted else None,
        parse_failure_rate=(
            sum(failures[k] for k in _PARSE_KINDS) / attempted if attempted else None
        ),
        agreement=result,
        consistency=sum(flags) / len(flags) if flags else None,
        input_tokens=tokens["input_tokens"],
        output_tokens=tokens["output_tokens"],
        cost=price.cost(tokens["input_tokens"], tokens["output_tokens"]) if price else None,
        truth=tuple(truth),
        pred=tuple(pred),
        scores=tuple(scores),
        notes=tuple(notes),
        disagreements=tuple(_worst_first(disagreements, ordinal=kind == "rubric")),
    )


def _disagreement(index: int, record: Record, verdict: Hashable, label: Hashable) -> dict[str, Any]:
    found: dict[str, Any] = {"index": index}
    if record.get("id") is not None:
        found["id"] = record["id"]
    found.update(judge=verdict, human=label, rationale=str(record.get("rationale") or "")[:500])
    return found


def _worst_first(found: list[dict[str, Any]], *, ordinal: bool) -> list[dict[str, Any]]:
    if not ordinal:
        return found
    return sorted(found, key=lambda d: (-abs(float(d["judge"]) - float(d["human"])), d["index"]))


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _scale_spec(config: JudgeConfig) -> Any:
    if config.scale is None:
        return (1, 5)
    return tuple(config.scale) if isinstance(config.scale, tuple) else config.scale


def _verdict(
    record: Record, kind: str, scale: Scale, criterion: str | None
) -> tuple[Hashable, float]:
    if kind == "preference":
        prob = record.get("prob_a")
        winner = str(record.get("winner"))
        fallback = {"A": 1.0, "B": 0.0}.get(winner, 0.5)
        return winner, float(prob) if isinstance(prob, int | float) else fallback
    if criterion is not None:
        value = float(record["criteria"][criterion])
        sampled = record.get("criteria_sampled")
        if sampled:  # the integer the judge wrote; ``criteria`` is what the score is made of
            return int(sampled[criterion]), value
        # a record of rftjudge 0.1: ``criteria`` held the sampled integer, ``expected`` the weighted
        expected = (record.get("expected") or {}).get(criterion)
        return round(value), float(expected) if expected is not None else value
    continuous = scale.low + float(record["score"]) * (scale.high - scale.low)
    return math.floor(continuous + 0.5), continuous


# -- the report ------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 3) -> str:
    return "undefined" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def kappa_band(kappa: float | None) -> str:
    """Landis & Koch's (1977) conventional reading of a kappa value."""
    if kappa is None:
        return ""
    for bound, label in ((0.0, "poor"), (0.2, "slight"), (0.4, "fair"), (0.6, "moderate")):
        if kappa <= bound:
            return label
    return "substantial" if kappa <= 0.8 else "almost perfect"


def write_report(
    result: Calibration,
    out_dir: str | Path,
    *,
    title: str = "Judge calibration",
    details: Sequence[tuple[str, str]] = (),
    plots: bool = True,
) -> dict[str, Path]:
    """Write ``report.md``, ``metrics.json`` and (with matplotlib) the PNG plots into ``out_dir``."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    plot_note = ""
    if plots:
        try:
            written.update(_plot(result, folder))
        except ImportError:
            plot_note = 'Plots skipped: matplotlib is not installed (pip install "rftjudge[plot]").'
    metrics = folder / "metrics.json"
    metrics.write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n", "utf-8")
    written["metrics"] = metrics
    report = folder / "report.md"
    report.write_text(_markdown(result, title, details, written, plot_note), "utf-8")
    written["report"] = report
    return written


def _markdown(
    result: Calibration,
    title: str,
    details: Sequence[tuple[str, str]],
    written: Mapping[str, Path],
    plot_note: str,
) -> str:
    a = result.agreement
    lines = [f"# {title}", ""]
    for key, value in details:
        lines.append(f"- **{key}**: {value}")
    lines += [
        f"- **compared**: the judge's {result.target} with the human label",
        f"- **rows**: {result.rows}; labelled: {result.labelled}; unusable labels: "
        f"{result.invalid_labels}; judged: {result.judged}; failed: {result.failed}",
        "",
        "## Agreement",
        "",
        "| measure | value |",
        "|---|---|",
        f"| items compared | {a.n} |",
        f"| accuracy (exact) | {_pct(a.accuracy)} |",
    ]
    if a.adjacent_accuracy is not None:
        lines.append(f"| accuracy within ±1 | {_pct(a.adjacent_accuracy)} |")
    lines.append(f"| Cohen's kappa | {_fmt(a.kappa)} {kappa_band(a.kappa)} |")
    if result.kind == "rubric":
        lines.append(
            f"| quadratic-weighted kappa | {_fmt(a.weighted_kappa)} {kappa_band(a.weighted_kappa)} |"
        )
    what = "P(A wins)" if result.kind == "preference" else "score"
    lines += [
        f"| Spearman (judge {what} vs label) | {_fmt(a.spearman)} |",
        f"| Pearson (judge {what} vs label) | {_fmt(a.pearson)} |",
    ]
    if result.kind == "preference":
        lines.append(f"| position consistency | {_pct(result.consistency)} |")
    lines += [
        f"| failure rate | {_pct(result.failure_rate)} |",
        f"| parse-failure rate | {_pct(result.parse_failure_rate)} |",
        f"| tokens | {result.input_tokens} in, {result.output_tokens} out |",
        f"| cost | {'—' if result.cost is None else f'${result.cost:.4f}'} |",
        "",
    ]
    if result.failures:
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(result.failures.items()))
        lines += [f"Failures by kind: {kinds}.", ""]
    labels = [str(label) for label in a.labels]
    lines += [
        "## Confusion matrix",
        "",
        "Rows: human label; columns: judge.",
        "",
        "| human \\ judge | " + " | ".join(labels) + " |",
        "|---" * (len(labels) + 1) + "|",
    ]
    for label, row in zip(labels, a.confusion, strict=True):
        lines.append(f"| **{label}** | " + " | ".join(str(c) for c in row) + " |")
    lines += [
        "",
        "## Distribution",
        "",
        "| label | human | judge |",
        "|---|---|---|",
    ]
    for label, human, judge in zip(labels, a.label_distribution, a.pred_distribution, strict=True):
        lines.append(f"| {label} | {human} | {judge} |")
    lines.append("")
    if "confusion" in written:
        lines += ["![confusion matrix](confusion.png)", ""]
    if "scores" in written:
        lines += ["![score distribution](scores.png)", ""]
    if plot_note:
        lines += [f"_{plot_note}_", ""]
    lines += _disagreement_lines(result)
    for note in result.notes:
        lines += [f"_Note: {note}._", ""]
    lines += [
        "_Kappa bands follow Landis & Koch (1977). Agreement on a few dozen items has wide "
        "uncertainty: calibrate on a few hundred in-domain examples before trusting a judge._",
        "",
    ]
    return "\n".join(lines)


_SHOWN = 50


def _disagreement_lines(result: Calibration) -> list[str]:
    """The rows to read first: where the judge and the human label differ."""
    found = result.disagreements
    lines = ["## Disagreements", ""]
    if not found:
        return [*lines, "The judge agrees with every compared label.", ""]
    order = ", largest difference first" if result.kind == "rubric" else ""
    lines += [
        f"{len(found)} of {result.agreement.n} compared rows{order} (all of them in "
        "`metrics.json`, under `disagreements`):",
        "",
        "| row | id | judge | human | judge's rationale |",
        "|---|---|---|---|---|",
    ]
    for item in found[:_SHOWN]:
        cells = [item["index"], item.get("id", ""), item["judge"], item["human"]]
        rationale = " ".join(str(item["rationale"]).split())[:200]
        lines.append("| " + " | ".join(_cell(c) for c in [*cells, rationale]) + " |")
    if len(found) > _SHOWN:
        lines.append(f"| … | {len(found) - _SHOWN} more in metrics.json | | | |")
    return [*lines, ""]


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _plot(result: Calibration, folder: Path) -> dict[str, Path]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    a = result.agreement
    labels = [str(label) for label in a.labels]
    written: dict[str, Path] = {}

    fig = Figure(figsize=(1.0 + 0.8 * len(labels), 0.6 + 0.8 * len(labels)), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(a.confusion, cmap="Blues")
    peak = max((max(row) for row in a.confusion), default=0)
    for i, row in enumerate(a.confusion):
        for j, count in enumerate(row):
            colour = "white" if peak and count > peak / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=colour)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("judge")
    ax.set_ylabel("human")
    ax.set_title(f"Confusion matrix (κ = {_fmt(a.kappa, 2)})")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    written["confusion"] = folder / "confusion.png"
    fig.savefig(written["confusion"])

    panels = 2 if result.scores and result.kind == "rubric" else 1
    fig = Figure(figsize=(5.0 * panels, 3.6), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, panels, 1)
    positions = range(len(labels))
    ax.bar([p - 0.2 for p in positions], a.label_distribution, width=0.4, label="human")
    ax.bar([p + 0.2 for p in positions], a.pred_distribution, width=0.4, label="judge")
    ax.set_xticks(list(positions), labels)
    ax.set_ylabel("items")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    tallest = max((*a.label_distribution, *a.pred_distribution), default=0)
    ax.set_ylim(0, max(1.0, tallest * 1.3))  # room for the legend above the bars
    ax.set_title("Label distribution")
    ax.legend(loc="upper right", ncols=2)
    if panels == 2:
        ax = fig.add_subplot(1, 2, 2)
        offsets = [((i * 0.618) % 1 - 0.5) * 0.3 for i in range(len(result.truth))]
        xs = [float(str(t)) + o for t, o in zip(result.truth, offsets, strict=True)]
        ax.scatter(xs, result.scores, s=14, alpha=0.7)
        ax.set_xlabel("human label")
        ax.set_ylabel("judge score")
        ax.set_title(f"Judge score by label (ρ = {_fmt(a.spearman, 2)})")
    fig.tight_layout()
    written["scores"] = folder / "scores.png"
    fig.savefig(written["scores"])
    return written
