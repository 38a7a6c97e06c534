"""Running totals of a client: requests, retries, failures by kind, tokens, latency percentiles."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from .._types import Usage

__all__ = ["ClientStats"]

_LATENCY_WINDOW = 4096


@dataclass
class ClientStats:
    """Counters a client keeps over its lifetime (latencies over the last 4096 attempts)."""

    requests: int = 0
    retries: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    input_tokens: int = 0
    output_tokens: int = 0
    _latencies: deque[float] = field(default_factory=lambda: deque(maxlen=_LATENCY_WINDOW))

    def observe_latency(self, seconds: float) -> None:
        self._latencies.append(seconds)

    def count_failure(self, kind: str) -> None:
        self.failures[kind] += 1

    def add_usage(self, usage: Usage) -> None:
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens

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
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "latency_p50_s": self.latency_percentile(0.5),
            "latency_p95_s": self.latency_percentile(0.95),
        }
