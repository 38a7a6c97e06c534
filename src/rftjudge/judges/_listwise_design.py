"""The design math of listwise judging: ids, orders, windows, and combining the answers.

Pure functions, no judge and no I/O: the settings that shape the design (:func:`check_settings`), which orders a group is shown in (:func:`cyclic_shifts`), how a
large group is cut into overlapping windows (:func:`windows`), the opaque ids candidates are shown
under (:func:`opaque_ids`), and the least-squares fit that separates quality from position and
request effects (:func:`additive_fit`). :mod:`rftjudge.judges.listwise` explains why each is so.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._errors import ConfigurationError, ParseError, TruncatedError
from .._types import Usage
from ._bradley_terry import solve_spd
from ._group import mean

__all__ = [
    "Answer",
    "Outcome",
    "Request",
    "additive_fit",
    "check_settings",
    "combine",
    "cyclic_shifts",
    "opaque_ids",
    "windows",
]

_ID_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: ids are read by a model


@dataclass
class Request:
    """One request of one order: the completions it shows (as unique indices), in shown order."""

    order: int
    items: list[int]


@dataclass
class Answer:
    """What one request returned: a value per shown item (by unique index)."""

    values: dict[int, float]
    rationale: str
    usage: Usage
    reasks: int
    exact_reads: int = 0
    exact_fallbacks: int = 0


@dataclass
class Outcome:
    """Scores of a group's distinct completions (None: not scored), with how they were made."""

    scores: list[float | None]
    error: BaseException | None
    rationale: str
    raw: list[list[float]] = field(default_factory=list)
    info_fields: dict[str, Any] = field(default_factory=dict)


def check_settings(
    permutations: object,
    aggregate: object,
    alphabet: object,
    chunk_size: object,
    max_prompt_chars: object,
    ridge: object,
) -> None:
    """The listwise judge's design settings, checked when it is built (one-line errors)."""
    if isinstance(permutations, bool) or not isinstance(permutations, int) or permutations < 1:
        raise ConfigurationError(f"permutations must be an int >= 1; got {permutations!r}")
    if aggregate not in ("mean", "debiased"):
        raise ConfigurationError(f'aggregate must be "mean" or "debiased"; got {aggregate!r}')
    if alphabet not in ("digits", "letters"):
        raise ConfigurationError(f'alphabet must be "digits" or "letters"; got {alphabet!r}')
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 2:
        raise ConfigurationError(f"chunk_size must be an int >= 2; got {chunk_size!r}")
    if max_prompt_chars is not None and (
        isinstance(max_prompt_chars, bool)
        or not isinstance(max_prompt_chars, int)
        or max_prompt_chars < 1
    ):
        raise ConfigurationError(f"max_prompt_chars must be an int > 0; got {max_prompt_chars!r}")
    if not (isinstance(ridge, int | float) and math.isfinite(ridge) and ridge >= 0):
        raise ConfigurationError(f"ridge must be a finite number >= 0; got {ridge!r}")


def opaque_ids(texts: Sequence[str]) -> list[str]:
    """Short ids derived from each text's digest: stable across orders, unrelated to position,
    unique within the group."""
    ids: list[str] = []
    seen: set[str] = set()
    for text in texts:
        salt = 0
        while True:
            digest = hashlib.sha256(f"{salt}\x00{text}".encode()).digest()
            cid = "C" + "".join(_ID_CHARS[b % len(_ID_CHARS)] for b in digest[:3])
            if cid not in seen:
                break
            salt += 1
        seen.add(cid)
        ids.append(cid)
    return ids


def cyclic_shifts(n: int, k: int, *, connected: bool = False) -> list[int]:
    """k cyclic shifts of n items, spaced evenly (all n when k >= n).

    ``connected``: nudge them, where needed, to generate Z_n — the item/position design is then
    connected, so that position effects can be told apart from quality (``aggregate="debiased"``).
    """
    k = min(k, n)
    shifts = sorted({round(j * n / k) % n for j in range(k)})
    if not connected or len(shifts) < 2 or math.gcd(n, *shifts[1:]) == 1:
        return shifts
    for delta in (1, -1, 2, -2):
        moved = (shifts[1] + delta) % n
        candidate = sorted({*shifts[:1], moved, *shifts[2:]})
        if len(candidate) == len(shifts) and math.gcd(n, *candidate[1:]) == 1:
            return candidate
    return shifts


def windows(order: Sequence[int], size: int) -> list[list[int]]:
    """Overlapping windows of ``size`` consecutive items covering ``order`` (see the module
    docstring for the rule)."""
    n = len(order)
    if n <= size:
        return [list(order)]
    stride = size - max(1, size // 4)
    starts = list(range(0, n - size + 1, stride))
    if starts[-1] != n - size:
        starts.append(n - size)
    return [list(order[s : s + size]) for s in starts]


def additive_fit(
    observations: Sequence[tuple[int, int, int, float]],
    n: int,
    *,
    positions: bool,
    ridge: float,
) -> list[float | None]:
    """Least squares ``value = quality[item] + effect[request] (+ effect[position])``.

    Solved exactly (the normal equations are small: items + requests + positions unknowns). The
    effects carry a ridge penalty — shrunk towards 0, so a design that cannot tell an effect from
    quality leaves it near 0 — and are centred afterwards, so the qualities stay on the judge's
    scale (the score under an average request and position). With every request showing every
    item and no position term this is the plain mean per item. Items never observed get None.
    """
    if not observations:
        return [None] * n
    requests = sorted({r for _, _, r, _ in observations})
    places = sorted({p for _, p, _, _ in observations}) if positions else []
    column = {("r", r): n + k for k, r in enumerate(requests)}
    column.update({("p", p): n + len(requests) + k for k, p in enumerate(places)})
    size = n + len(requests) + len(places)
    matrix = [[0.0] * size for _ in range(size)]
    vector = [0.0] * size
    for item, position, request, value in observations:
        cols = [item, column[("r", request)]]
        if positions:
            cols.append(column[("p", position)])
        for a in cols:
            vector[a] += value
            for b in cols:
                matrix[a][b] += 1.0
    seen = {item for item, _, _, _ in observations}
    for k in range(size):
        # A tiny penalty on the qualities as well keeps the system definite when the effects are
        # unpenalised (ridge=0: only differences are determined; the centring fixes the level).
        matrix[k][k] += (ridge if k >= n else 0.0) + 1e-9 + (0.0 if k >= n or k in seen else 1.0)
    solution = solve_spd(matrix, vector)
    effect = [
        solution[column[("r", r)]] + (solution[column[("p", p)]] if positions else 0.0)
        for _, p, r, _ in observations
    ]
    quality = [solution[i] for i in range(n)]
    offset = mean(effect)
    return [quality[i] + offset if i in seen else None for i in range(n)]


def combine(
    n: int,
    requests: Sequence[Request],
    answers: Sequence[Answer | BaseException],
    orders: int,
    *,
    span: float,
    positions: bool,
    ridge: float,
    max_reasks: int,
) -> Outcome:
    """A group's scores from every request's answer: the additive fit over all observations, the
    raw per-order means, the order sensitivity (spread across orders on the [0, 1] scale) and the
    counts behind them. A failed request's order is dropped and counted; its error is kept."""
    observations: list[tuple[int, int, int, float]] = []  # (item, position, request, value)
    per_order: list[dict[int, list[float]]] = [{} for _ in range(orders)]
    usage, reasks, reads, misses = Usage(), 0, 0, 0
    failed_orders: set[int] = set()
    error: BaseException | None = None
    rationale = ""
    for r, (request, answer) in enumerate(zip(requests, answers, strict=True)):
        if isinstance(answer, BaseException):
            failed_orders.add(request.order)
            error = error or answer
            continue
        usage = usage + answer.usage
        reasks += answer.reasks
        reads += answer.exact_reads
        misses += answer.exact_fallbacks
        rationale = rationale or answer.rationale
        for position, item in enumerate(request.items):
            value = answer.values[item]
            observations.append((item, position, r, value))
            per_order[request.order].setdefault(item, []).append(value)
    requests_made = usage.requests + sum(
        _requests_of(a, max_reasks) for a in answers if isinstance(a, BaseException)
    )
    fitted = additive_fit(observations, n, positions=positions, ridge=ridge)
    spreads = []
    for item in range(n):
        values = [mean(o[item]) for o in per_order if item in o]
        if len(values) > 1:
            spreads.append((max(values) - min(values)) / span)
    raw = [[mean(o[item]) for o in per_order if item in o] for item in range(n)]
    return Outcome(
        scores=fitted,
        error=error,
        rationale=rationale,
        raw=raw,
        info_fields={
            "requests": requests_made,
            "usage": usage,
            "orders": orders,
            "failed_orders": len(failed_orders),
            "order_sensitivity": mean(spreads) if spreads else None,
            "reasks": reasks,
            "exact_reads": reads,
            "exact_fallbacks": misses,
        },
    )


def _requests_of(error: BaseException, max_reasks: int) -> int:
    """Requests a failed ask made: every re-ask for an answer that never validated."""
    return 1 + max_reasks if isinstance(error, ParseError | TruncatedError) else 1
