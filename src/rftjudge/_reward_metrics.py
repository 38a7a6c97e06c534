"""One reward-function call's metrics: the judge's, the client's since the last call, and the
correlation of reward with response length (verbosity hacking shows up there first)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _call_metrics(
    judge: Any,
    name: str,
    outcomes: Sequence[Any],
    rewards: Sequence[float | None],
    texts: Sequence[str],
) -> dict[str, float]:
    """One call's metrics, keyed ``<name>/<metric>``: the judge's, the client's, length bias."""
    metrics = {f"{name}/{key}": value for key, value in judge.metrics_of(outcomes).items()}
    # The judge client's totals since this reward function's last call (requests,
    # cache hits, tokens, cost, p95 latency of those attempts), when the client keeps them.
    from .clients._stats import ClientStats

    stats = getattr(getattr(judge, "client", None), "stats", None)
    if isinstance(stats, ClientStats):
        for key, value in stats.delta(mark=f"reward_func:{name}").items():
            if key in _CLIENT_METRICS:
                metrics[f"{name}/{key}"] = value
    corr = _length_corr(rewards, texts)
    if corr is not None:
        metrics[f"{name}/length_corr"] = corr
    return metrics


def _length_corr(rewards: Sequence[float | None], texts: Sequence[str]) -> float | None:
    """Pearson correlation between reward and response length (characters) in one call.

    A policy that learns the judge likes longer answers shows up here as a correlation creeping
    towards 1 long before the answers become absurd (verbosity hacking).
    """
    from .calibration import pearson

    pairs = [
        (float(r), float(len(t))) for r, t in zip(rewards, texts, strict=True) if r is not None
    ]
    if len(pairs) < 3:
        return None
    return pearson([p[0] for p in pairs], [p[1] for p in pairs])


_CLIENT_METRICS = frozenset(
    {
        "requests",
        "retries",
        "rate_limited",
        "cache_hits",
        "coalesced",
        "input_tokens",
        "cached_input_tokens",
        "output_tokens",
        "reasoning_tokens",
        "cost_usd",
        "latency_p95_s",
    }
)
