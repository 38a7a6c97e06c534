"""The arithmetic of the in-process limiter: token estimates, debt buckets, refill waits, AIMD's tests.

Pure functions and one small class, apart from :class:`~._ratelimit.LocalRateLimiter` that holds
the state and the lock: each is testable on numbers alone.
"""

from __future__ import annotations

import math

from .._content import content_size
from .._types import ChatRequest

__all__ = ["estimate_tokens"]


_MIN_SAMPLE = 16  # outcomes (at least a window's worth) before AIMD judges a window
_STALE_WINDOWS = 50  # after this many windows' worth of outcomes, forget the last judgement


class _Bucket:
    """A token bucket that may go into debt: ``take`` returns how long the taker must wait."""

    __slots__ = ("capacity", "level", "rate", "stamp")

    def __init__(self, per_minute: float, burst_s: float, now: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_s)
        self.level = self.capacity
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def take(self, amount: float, now: float) -> float:
        self._refill(now)
        self.level -= amount
        return 0.0 if self.level >= 0 else -self.level / self.rate

    def give(self, amount: float, now: float) -> None:
        self._refill(now)
        self.level = min(self.capacity, self.level + amount)


def _share_drop(before: tuple[int, int], after: tuple[int, int]) -> float:
    """How many standard errors the share of 429s fell from ``before`` to ``after``
    (two-proportion z statistic; each sample is (rejected, outcomes))."""
    (r1, n1), (r2, n2) = before, after
    pooled = (r1 + r2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    drop = r1 / n1 - r2 / n2
    if spread == 0:
        return math.inf if drop > 0 else (-math.inf if drop < 0 else 0.0)
    return drop / spread


def _load_dependent(
    before: tuple[int, int], window_before: float, after: tuple[int, int], window_after: float
) -> bool:
    """Whether the share of 429s after a decrease fits "the server accepts a fixed number per
    round trip" (429s are our excess load) better than "the share is unchanged" (429s come
    regardless of our load): a likelihood ratio of the two hypotheses for the ``after`` sample."""
    (r1, n1), (r2, n2) = before, after
    share = r1 / n1
    unchanged = min(0.99, max(0.01, share))
    relieved = min(0.99, max(0.01, 1.0 - (1.0 - share) * window_before / window_after))

    def loglik(p: float) -> float:
        return r2 * math.log(p) + (n2 - r2) * math.log(1.0 - p)

    return loglik(relieved) > loglik(unchanged)


def _refill_wait(
    remaining: int | None, limit: int | None, reset_s: float | None, needed: int
) -> float:
    """Seconds until ``needed`` units are back, refilling linearly to ``limit`` at ``reset_s``."""
    if remaining is None or reset_s is None or remaining >= needed:
        return 0.0
    if limit is None or limit <= remaining:
        return reset_s
    rate = (limit - remaining) / reset_s if reset_s > 0 else math.inf
    return min(reset_s, (needed - remaining) / rate)


def estimate_tokens(request: ChatRequest) -> int:
    """Tokens a request will count against a budget before the server says: chars / 4 + max_tokens."""
    chars = sum(content_size(m.content) for m in request.messages)
    return chars // 4 + 1 + (request.max_tokens or 0)
