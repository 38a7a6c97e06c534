"""``rftjudge calibrate``'s analysis: judge results joined with human labels, and the report.

The judgments come from :mod:`rftjudge.scoring` (one JSON record per row); the statistics from
:mod:`rftjudge.calibration`; the analysis is ``_calibrate``, the report this module. What is
compared with what:

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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._calibrate import Calibration, calibrate_records, parse_label

__all__ = ["Calibration", "calibrate_records", "parse_label", "write_report"]


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
