"""Bradley–Terry strengths from pairwise outcomes: graded group rewards from few comparisons.

A win rate needs every completion to meet the same opponents to be comparable; with a sparse
schedule (a ring, a tournament) it is not. The Bradley–Terry model explains every outcome at once:
``P(i beats j) = σ(θ_i − θ_j)``, so a completion that beat strong opponents ranks above one that beat
weak ones even when they never met.

The fit is a maximum a-posteriori estimate with a Gaussian prior ``θ ~ N(0, prior_sd²)`` on each
strength, by Newton's method (the log-posterior is strictly concave, so each step is a linear solve
and a backtracking line search keeps it monotone). The prior is what makes every group usable:

- a completion that won (or lost) all its comparisons gets a finite strength instead of ±∞;
- a comparison graph split into parts (failed comparisons, a sparse schedule) still has one
  solution — each part is centred on the prior mean — instead of being undetermined;
- every group gets graded rewards, never a tie caused by the fit itself.

The default ``prior_sd=4`` is weak — about a quarter of one tie against an average opponent per
completion: enough to keep every strength finite, too little to reorder what the comparisons say
(measured in ``benchmarks/group_rewards.md``: a prior of sd 2 cost sparse schedules 0.02 Spearman
on a confident judge, sd 4 recovered the order). Outcomes may be fractional (``P(A ≻ B)`` read from label probabilities, a tie as
0.5) and weighted. Pure Python: groups are small (n ≤ a few dozen), an n×n solve is microseconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .._errors import ConfigurationError

__all__ = [
    "BradleyTerryFit",
    "fit_bradley_terry",
    "mean_win_probabilities",
    "sigmoid",
    "solve_spd",
]


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


@dataclass(frozen=True)
class BradleyTerryFit:
    """Fitted log-strengths (mean zero up to the prior), and how the fit went."""

    strengths: tuple[float, ...]
    iterations: int
    converged: bool

    def win_probability(self, i: int, j: int) -> float:
        """P(i beats j) under the fitted model."""
        return sigmoid(self.strengths[i] - self.strengths[j])

    def rewards(self) -> list[float]:
        """Each item's mean predicted win probability against the rest (see
        :func:`mean_win_probabilities`)."""
        return mean_win_probabilities(self.strengths)


def mean_win_probabilities(strengths: Sequence[float]) -> list[float]:
    """``r_i = mean_{j≠i} σ(θ_i − θ_j)``: a reward in (0, 1) with a direct reading — the chance
    that the completion beats a random other completion of its group. A group of one gets 0.5."""
    n = len(strengths)
    if n < 2:
        return [0.5] * n
    return [
        sum(sigmoid(strengths[i] - strengths[j]) for j in range(n) if j != i) / (n - 1)
        for i in range(n)
    ]


def fit_bradley_terry(
    n: int,
    outcomes: Iterable[tuple[int, int, float] | tuple[int, int, float, float]],
    *,
    prior_sd: float = 4.0,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> BradleyTerryFit:
    """Fit strengths for items ``0..n-1`` from ``(i, j, p)`` or ``(i, j, p, weight)`` outcomes.

    ``p`` is how much ``i`` won against ``j`` in [0, 1] (1: a win, 0: a loss, 0.5: a tie, or a
    probability); ``weight`` (default 1) how many comparisons the outcome stands for. Repeated
    pairs add up.
    """
    if not isinstance(n, int) or n < 0:
        raise ConfigurationError(f"n must be an int >= 0; got {n!r}")
    if not (isinstance(prior_sd, int | float) and math.isfinite(prior_sd) and prior_sd > 0):
        raise ConfigurationError(f"prior_sd must be a finite number > 0; got {prior_sd!r}")
    games: dict[tuple[int, int], list[float]] = {}  # (i, j) with i < j -> [wins of i, weight]
    for outcome in outcomes:
        i, j, p = int(outcome[0]), int(outcome[1]), float(outcome[2])
        w = float(outcome[3]) if len(outcome) > 3 else 1.0
        if not (0 <= i < n and 0 <= j < n) or i == j:
            raise ConfigurationError(f"bad comparison ({i}, {j}) for {n} items")
        if not (math.isfinite(p) and 0.0 <= p <= 1.0) or not (math.isfinite(w) and w >= 0):
            raise ConfigurationError(f"bad outcome p={p!r}, weight={w!r} for ({i}, {j})")
        if i > j:
            i, j, p = j, i, 1.0 - p
        entry = games.setdefault((i, j), [0.0, 0.0])
        entry[0] += w * p
        entry[1] += w
    precision = 1.0 / (prior_sd * prior_sd)
    theta = [0.0] * n
    objective = _log_posterior(theta, games, precision)
    for iteration in range(1, max_iter + 1):
        grad = [-precision * t for t in theta]
        hess = [[0.0] * n for _ in range(n)]  # the negated Hessian: positive definite
        for i in range(n):
            hess[i][i] = precision
        for (i, j), (wins, weight) in games.items():
            if weight <= 0:
                continue
            s = sigmoid(theta[i] - theta[j])
            g = wins - weight * s
            grad[i] += g
            grad[j] -= g
            h = weight * s * (1.0 - s)
            hess[i][i] += h
            hess[j][j] += h
            hess[i][j] -= h
            hess[j][i] -= h
        step = solve_spd(hess, grad)
        scale = 1.0
        while True:  # backtracking: the posterior must not decrease
            candidate = [t + scale * d for t, d in zip(theta, step, strict=True)]
            value = _log_posterior(candidate, games, precision)
            if value >= objective - 1e-12 or scale < 1e-6:
                break
            scale /= 2
        change = max((abs(a - b) for a, b in zip(candidate, theta, strict=True)), default=0.0)
        theta, objective = candidate, value
        if change < tol:
            return BradleyTerryFit(tuple(theta), iteration, True)
    return BradleyTerryFit(tuple(theta), max_iter, False)


def _log_posterior(
    theta: Sequence[float], games: dict[tuple[int, int], list[float]], precision: float
) -> float:
    total = -0.5 * precision * sum(t * t for t in theta)
    for (i, j), (wins, weight) in games.items():
        d = theta[i] - theta[j]
        total += wins * _log_sigmoid(d) + (weight - wins) * _log_sigmoid(-d)
    return total


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def solve_spd(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Solve ``matrix · x = vector`` for a symmetric positive definite matrix (Cholesky)."""
    n = len(vector)
    lower = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            s = matrix[i][j] - sum(lower[i][k] * lower[j][k] for k in range(j))
            if i == j:
                lower[i][i] = math.sqrt(max(s, 1e-300))
            else:
                lower[i][j] = s / lower[j][j]
    y = [0.0] * n
    for i in range(n):
        y[i] = (vector[i] - sum(lower[i][k] * y[k] for k in range(i))) / lower[i][i]
    x = [0.0] * n
    for i in reversed(range(n)):
        x[i] = (y[i] - sum(lower[k][i] * x[k] for k in range(i + 1, n))) / lower[i][i]
    return x
