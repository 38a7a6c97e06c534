"""How a row's item scores become one reward: explicit and implicit aggregation, chunking.

**Explicit** (RaR's explicit aggregation, RLCF's weighted checklist): every item gets a score
``s`` normalised to [0, 1]; with ``P`` the total weight of the non-pitfall items::

    reward = (Σ_non-pitfall w·s − Σ_pitfall w·s) / P

where a pitfall's ``s`` is 1 when the judge finds the mistake present. It is clipped to [0, 1]
(a response that makes enough mistakes would go below 0) and the clipping is counted
(``Judgment.clipped``, the ``clip_rate`` metric). A rubric of pitfalls only gives
``1 − Σ w·s / Σ w``.

**Implicit**: the judge sees the whole rubric (categories and weights included) and gives one score
on the judge's scale, weighing the items itself. Program items (checks) are still run locally and
mixed in by weight: the judge's score stands for the judged items' positive weight.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._criteria import Scale
from ._rubric_items import RubricItem

__all__ = [
    "Combined",
    "chunks",
    "combine_explicit",
    "combine_implicit",
    "item_scale",
    "row_metrics",
]

_LIKERT_FALLBACK = Scale(low=1, high=5)
_BINARY = Scale(low=0, high=1, binary=True)


def item_scale(item: RubricItem, scale: Scale) -> Scale:
    """The scale an item is scored on: pass/fail items binary, likert items the judge's scale
    (1-5 when the judge's own scale is pass/fail), untyped items the judge's scale."""
    if item.type == "pass_fail":
        return _BINARY
    if item.type == "likert" and scale.binary:
        return _LIKERT_FALLBACK
    return scale


def chunks(items: Sequence[RubricItem], size: int | None) -> list[tuple[RubricItem, ...]]:
    """``items`` in requests of at most ``size`` (all in one when ``size`` is None)."""
    if not items:
        return []
    if size is None or size >= len(items):
        return [tuple(items)]
    return [tuple(items[i : i + size]) for i in range(0, len(items), size)]


@dataclass(frozen=True)
class Combined:
    """The reward of a row and what is logged with it."""

    score: float
    clipped: bool
    passed: int
    categories: dict[str, float]


def combine_explicit(items: Sequence[RubricItem], normalized: Mapping[str, float]) -> Combined:
    """Weighted mean of item scores, pitfalls subtracting; see the module docstring."""
    positive = sum(i.weight for i in items if not i.pitfall)
    gained = sum(i.weight * normalized[i.id] for i in items if not i.pitfall)
    lost = sum(i.weight * normalized[i.id] for i in items if i.pitfall)
    if positive > 0:
        value = (gained - lost) / positive
    else:
        value = 1.0 - lost / sum(i.weight for i in items)
    return _combined(value, items, normalized)


def combine_implicit(
    overall: float,
    judged: Sequence[RubricItem],
    programs: Sequence[RubricItem],
    normalized: Mapping[str, float],
) -> Combined:
    """The judge's one score (normalised) for the judged items, program items mixed in by weight."""
    judged_weight = sum(i.weight for i in judged if not i.pitfall) or sum(i.weight for i in judged)
    positive = judged_weight + sum(i.weight for i in programs if not i.pitfall)
    gained = judged_weight * overall + sum(
        i.weight * normalized[i.id] for i in programs if not i.pitfall
    )
    lost = sum(i.weight * normalized[i.id] for i in programs if i.pitfall)
    value = (gained - lost) / positive
    return _combined(value, programs, normalized)


def _combined(
    value: float, items: Iterable[RubricItem], normalized: Mapping[str, float]
) -> Combined:
    clipped = not (0.0 <= value <= 1.0)
    sums: dict[str, list[float]] = {}
    passed = 0
    for item in items:
        s = normalized[item.id]
        passed += (s < 0.5) if item.pitfall else (s >= 0.5)
        sums.setdefault(item.category or "uncategorised", []).append(s)
    categories = {k: sum(v) / len(v) for k, v in sums.items()}
    return Combined(min(1.0, max(0.0, value)), clipped, passed, categories)


def row_metrics(judgments: Sequence[Any]) -> dict[str, float]:
    """Per-batch metrics of the rows judged against a rubric: the share of items passed, the
    per-category means, chunk re-asks and how often the weighted sum was clipped."""
    rows = [j for j in judgments if j.aggregate is not None and j.guarded is None]
    if not rows:
        return {}
    metrics = {
        "chunk_reasks": float(sum(j.chunk_reasks for j in rows)),
        "clip_rate": sum(j.clipped for j in rows) / len(rows),
        "requests_per_row": sum(j.requests for j in rows) / len(rows),
    }
    explicit = [j for j in rows if j.aggregate == "explicit" and j.items]
    if explicit:  # an implicit verdict says nothing about single items
        metrics["items_passed_rate"] = sum(j.items_passed / j.items for j in explicit) / len(
            explicit
        )
    values: dict[str, list[float]] = {}
    for j in rows:
        for category, mean in (j.categories or {}).items():
            values.setdefault(category, []).append(mean)
    for category, means in sorted(values.items()):
        metrics[f"category/{category}"] = sum(means) / len(means)
    return metrics
