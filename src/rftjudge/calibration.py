"""Agreement statistics between a judge and human labels, in pure Python.

A judge is only worth training against once it agrees with people on in-domain examples, so
``rftjudge calibrate`` reports the standard agreement measures: accuracy, Cohen's kappa (chance-
corrected agreement), quadratic-weighted kappa (for ordinal scales: a 4 against a human 5 counts as
a near miss, a 1 as a gross one), Spearman and Pearson correlation for scores, and position
consistency for pairwise judges.

They are written out here instead of importing numpy/scipy/scikit-learn: the formulas are short,
the data sets are small (hundreds of labels), and a library that installs into training images
should not pull a numeric stack for a report. The definitions match scikit-learn's
``cohen_kappa_score`` and scipy's ``spearmanr`` / ``pearsonr`` (tests pin values computed with them).

Undefined statistics (a correlation with a constant input, a kappa whose chance agreement is
already perfect) are ``None``, never ``nan`` or a made-up 0: a report must say "undefined".
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

__all__ = [
    "Agreement",
    "Weights",
    "accuracy",
    "agreement",
    "cohen_kappa",
    "confusion_matrix",
    "label_accuracy",
    "mean",
    "pearson",
    "position_consistency",
    "rank",
    "spearman",
]

L = TypeVar("L", bound=Hashable)
Weights = Literal["linear", "quadratic"] | None


def _check_pairs(truth: Sequence[object], pred: Sequence[object]) -> None:
    if len(truth) != len(pred):
        raise ValueError(f"truth and pred differ in length ({len(truth)} vs {len(pred)})")


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean; ``None`` for no values."""
    return math.fsum(values) / len(values) if values else None


def accuracy(truth: Sequence[float], pred: Sequence[float], tolerance: float = 0) -> float | None:
    """Share of items where ``|truth - pred| <= tolerance`` (exact agreement by default).

    ``tolerance=1`` on a Likert scale is "adjacent agreement", often reported next to accuracy.
    """
    _check_pairs(truth, pred)
    if not truth:
        return None
    hits = sum(abs(t - p) <= tolerance for t, p in zip(truth, pred, strict=True))
    return hits / len(truth)


def label_accuracy(truth: Sequence[Hashable], pred: Sequence[Hashable]) -> float | None:
    """Share of items whose labels are equal (for non-numeric labels such as ``"A"``/``"B"``)."""
    _check_pairs(truth, pred)
    if not truth:
        return None
    return sum(t == p for t, p in zip(truth, pred, strict=True)) / len(truth)


def confusion_matrix(truth: Sequence[L], pred: Sequence[L], labels: Sequence[L]) -> list[list[int]]:
    """Counts ``m[i][j]`` of items with true label ``labels[i]`` and predicted ``labels[j]``.

    Items whose labels are not in ``labels`` are left out (as scikit-learn does).
    """
    _check_pairs(truth, pred)
    position = {label: i for i, label in enumerate(labels)}
    if len(position) != len(labels):
        raise ValueError("labels must be distinct")
    matrix = [[0] * len(labels) for _ in labels]
    for t, p in zip(truth, pred, strict=True):
        if t in position and p in position:
            matrix[position[t]][position[p]] += 1
    return matrix


def cohen_kappa(
    truth: Sequence[L],
    pred: Sequence[L],
    labels: Sequence[L] | None = None,
    weights: Weights = None,
) -> float | None:
    """Cohen's kappa: ``1 - Σ w·observed / Σ w·expected``, optionally weighted.

    ``weights`` is ``None`` (every disagreement counts 1), ``"linear"`` (``|i - j|``) or
    ``"quadratic"`` (``(i - j)²``), with ``i, j`` the positions of the labels in ``labels`` (sorted
    distinct values of both sequences by default) — scikit-learn's definition. ``None`` when
    undefined (no items, or chance agreement already perfect).
    """
    _check_pairs(truth, pred)
    if labels is None:
        labels = sorted(set(truth) | set(pred))  # type: ignore[type-var]
    observed = confusion_matrix(truth, pred, labels)
    n = sum(map(sum, observed))
    if n == 0:
        return None
    k = len(labels)
    rows = [sum(observed[i]) for i in range(k)]
    cols = [sum(observed[i][j] for i in range(k)) for j in range(k)]

    def weight(i: int, j: int) -> float:
        if weights is None:
            return 0.0 if i == j else 1.0
        if weights == "linear":
            return float(abs(i - j))
        if weights == "quadratic":
            return float((i - j) ** 2)
        raise ValueError(f'weights must be None, "linear" or "quadratic"; got {weights!r}')

    num = math.fsum(weight(i, j) * observed[i][j] for i in range(k) for j in range(k))
    den = math.fsum(weight(i, j) * rows[i] * cols[j] / n for i in range(k) for j in range(k))
    if den == 0:
        return None
    return 1.0 - num / den


def rank(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties given the mean of the ranks they span (scipy's ``rankdata`` "average")."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        shared = (start + end) / 2 + 1
        for i in order[start : end + 1]:
            ranks[i] = shared
        start = end + 1
    return ranks


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson's correlation coefficient; ``None`` for fewer than two items or a constant input."""
    _check_pairs(x, y)
    n = len(x)
    if n < 2:
        return None
    mx, my = math.fsum(x) / n, math.fsum(y) / n
    dx = [v - mx for v in x]
    dy = [v - my for v in y]
    sxx = math.fsum(d * d for d in dx)
    syy = math.fsum(d * d for d in dy)
    if sxx == 0 or syy == 0:
        return None
    r = math.fsum(a * b for a, b in zip(dx, dy, strict=True)) / math.sqrt(sxx * syy)
    return max(-1.0, min(1.0, r))


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (Pearson on average ranks, so ties are handled as scipy does)."""
    _check_pairs(x, y)
    return pearson(rank(x), rank(y))


def position_consistency(consistent: Sequence[bool]) -> float | None:
    """Share of pairwise verdicts that survived swapping the two answers."""
    return sum(bool(c) for c in consistent) / len(consistent) if consistent else None


@dataclass(frozen=True)
class Agreement:
    """Agreement of judge labels (``pred``) with human labels (``truth``) on ``labels``.

    ``scores`` / correlation fields are filled when continuous judge scores were given (e.g. the
    reward in [0, 1], or a probability-weighted score) and labels are numeric.
    """

    n: int
    labels: tuple[Hashable, ...]
    accuracy: float | None
    kappa: float | None
    confusion: tuple[tuple[int, ...], ...]
    weighted_kappa: float | None = None
    adjacent_accuracy: float | None = None
    spearman: float | None = None
    pearson: float | None = None
    label_distribution: tuple[int, ...] = ()
    pred_distribution: tuple[int, ...] = ()


def agreement(
    truth: Sequence[L],
    pred: Sequence[L],
    labels: Sequence[L],
    *,
    scores: Sequence[float] | None = None,
    ordinal: bool = False,
) -> Agreement:
    """Every agreement statistic for one set of paired labels.

    ``ordinal`` (numeric labels on a scale) adds quadratic-weighted kappa, adjacent accuracy and,
    with ``scores`` (continuous judge scores aligned with ``truth``), Spearman and Pearson.
    """
    _check_pairs(truth, pred)
    matrix = confusion_matrix(truth, pred, labels)
    truth_counts = Counter(truth)
    pred_counts = Counter(pred)
    result = Agreement(
        n=len(truth),
        labels=tuple(labels),
        accuracy=label_accuracy(truth, pred),
        kappa=cohen_kappa(truth, pred, labels),
        confusion=tuple(tuple(row) for row in matrix),
        label_distribution=tuple(truth_counts[label] for label in labels),
        pred_distribution=tuple(pred_counts[label] for label in labels),
    )
    if not ordinal:
        return result
    numeric_truth = [float(t) for t in truth]  # type: ignore[arg-type]
    numeric_pred = [float(p) for p in pred]  # type: ignore[arg-type]
    continuous = list(scores) if scores is not None else numeric_pred
    if len(continuous) != len(truth):
        raise ValueError(f"scores has {len(continuous)} values for {len(truth)} labels")
    return replace(
        result,
        weighted_kappa=cohen_kappa(truth, pred, labels, weights="quadratic"),
        adjacent_accuracy=accuracy(numeric_truth, numeric_pred, tolerance=1),
        spearman=spearman(numeric_truth, continuous),
        pearson=pearson(numeric_truth, continuous),
    )
