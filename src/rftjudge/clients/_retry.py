"""Retry policy: how often failures are retried, and how long to wait between tries.

*Whether* a failure is retried is :func:`rftjudge.clients._classify.classify`'s answer, shared with
the rate limiter and the endpoint router: connection errors and timeouts, 408, 409, 429 and 5xx are;
other 4xx, an exhausted quota and a batch deadline are not; ``x-should-retry`` overrides; a server
asking for a pause longer than ``max_retry_after`` makes the call fail fast instead of stalling a
training step. *When*: the server's ``retry-after-ms`` / ``retry-after`` when it gives one, otherwise
exponential backoff with jitter.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from .._errors import HTTPStatusError
from ._classify import classify

__all__ = ["RetryPolicy", "is_retryable", "retry_delay"]

T = TypeVar("T")

@dataclass(frozen=True)
class RetryPolicy:
    """How a client retries transient failures.

    ``sleep`` is injectable so that tests run retries on a fake clock.
    """

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 60.0
    jitter: tuple[float, float] = (0.75, 1.0)
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.max_retry_after < 0:
            raise ValueError("backoff_base, backoff_max and max_retry_after must be >= 0")

    async def call(self, fn: Callable[[], Awaitable[T]], *, rng: random.Random | None = None) -> T:
        """Run ``fn`` with retries; re-raise the last error when the budget is spent."""
        if self.max_retries == 0:
            return await fn()
        # The first try runs bare: setting up tenacity costs more CPU than a loopback request
        # (see benchmarks/), and most requests succeed at once. Only a retryable failure pays.
        try:
            return await fn()
        except Exception as exc:
            if not is_retryable(exc, self):
                raise
            first = exc
        rand = rng or random.Random()
        await self.sleep(retry_delay(self, 1, first, rand))

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return retry_delay(self, state.attempt_number + 1, exc, rand)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries),
            wait=wait,
            retry=retry_if_exception(lambda e: is_retryable(e, self)),
            sleep=self.sleep,
            reraise=True,
        )
        return await retrying(fn)


def is_retryable(exc: BaseException, policy: RetryPolicy | None = None) -> bool:
    """Whether ``exc`` is worth another try under ``policy`` (see :mod:`._classify`)."""
    return classify(exc, policy.max_retry_after if policy is not None else None).retry


def retry_delay(
    policy: RetryPolicy, attempt: int, exc: BaseException | None, rng: random.Random
) -> float:
    """Seconds to wait after failed try number ``attempt`` (1-based)."""
    if isinstance(exc, HTTPStatusError) and exc.retry_after is not None and exc.retry_after >= 0:
        return min(float(exc.retry_after), policy.max_retry_after)
    backoff = min(policy.backoff_base * 2 ** (attempt - 1), policy.backoff_max)
    low, high = policy.jitter
    return float(backoff * rng.uniform(low, high))
