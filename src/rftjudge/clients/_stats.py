"""Running totals of a client: requests, retries, failures by kind, tokens, cache hits, latency
percentiles and, given a price, cost.

``requests`` counts requests sent to the provider (one per ``complete`` that was not answered from
the cache or by an identical request already in flight); ``retries`` the extra attempts; answers
served without a request are counted in ``cache_hits`` and ``coalesced``; ``cache_skipped`` counts
cache reads and writes given up because the cache was too slow (a SQLite file locked by another
process): those judgments went on without the cache.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from .._types import Usage
from ..pricing import Price

__all__ = ["ClientStats"]

_LATENCY_WINDOW = 4096
_COUNTERS = (
    "requests",
    "retries",
    "failed",
    "rate_limited",
    "cache_hits",
    "cache_misses",
    "cache_skipped",
    "coalesced",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
)


@dataclass
class ClientStats:
    """Counters a client keeps over its lifetime (latencies over the last 4096 attempts)."""

    requests: int = 0
    retries: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    input_tokens: int = 0
    cached_input_tokens: int = 0
    """Of ``input_tokens``, those the server reused from its prefix cache (where it reports it)."""
    output_tokens: int = 0
    reasoning_tokens: int = 0
    """Of ``output_tokens``, those a reasoning model spent thinking (where it reports it)."""
    rate_limited: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    cache_skipped: int = 0
    coalesced: int = 0
    price: Price | None = None
    _latencies: deque[float] = field(default_factory=lambda: deque(maxlen=_LATENCY_WINDOW))
    _observed: int = 0
    _marks: dict[str, dict[str, float]] = field(default_factory=dict)

    def observe_latency(self, seconds: float) -> None:
        self._latencies.append(seconds)
        self._observed += 1

    @property
    def failed(self) -> int:
        """Requests that failed for good (after their retries)."""
        return sum(self.failures.values())

    @property
    def cost_usd(self) -> float | None:
        """Dollars spent so far at ``price``, or None without a price."""
        if self.price is None:
            return None
        return self.price.cost(self.input_tokens, self.output_tokens)

    def count_failure(self, kind: str) -> None:
        self.failures[kind] += 1

    def add_usage(self, usage: Usage) -> None:
        self.input_tokens += usage.input_tokens
        self.cached_input_tokens += usage.cached_input_tokens
        self.output_tokens += usage.output_tokens
        self.reasoning_tokens += usage.reasoning_tokens

    def latency_percentile(self, q: float) -> float | None:
        """The q-quantile (0..1) of recent attempt latencies in seconds, or None before any."""
        if not self._latencies:
            return None
        ordered = sorted(self._latencies)
        index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
        return ordered[index]

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "failures": dict(self.failures),
            "rate_limited": self.rate_limited,
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "cache_skipped": self.cache_skipped,
            "coalesced": self.coalesced,
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost_usd": self.cost_usd,
            "latency_p50_s": self.latency_percentile(0.5),
            "latency_p95_s": self.latency_percentile(0.95),
        }

    def delta(self, mark: str) -> dict[str, float]:
        """What changed since the last ``delta`` call with the same ``mark`` (all of it the first time).

        For periodic logging (TRL's ``log_metric`` per reward call): counters as differences,
        ``cost_usd`` when priced, and ``latency_p95_s`` over the attempts since the mark (the
        latency window permitting) when there were any.
        """
        now: dict[str, float] = {name: float(getattr(self, name)) for name in _COUNTERS}
        now["_observed"] = float(self._observed)
        before = self._marks.get(mark, {})
        self._marks[mark] = now
        out = {name: now[name] - before.get(name, 0.0) for name in _COUNTERS}
        if self.price is not None:
            out["cost_usd"] = self.price.cost(int(out["input_tokens"]), int(out["output_tokens"]))
        recent = min(int(now["_observed"] - before.get("_observed", 0.0)), len(self._latencies))
        if recent > 0:
            window = sorted(list(self._latencies)[-recent:])
            out["latency_p95_s"] = window[min(recent - 1, round(0.95 * (recent - 1)))]
        return out
