"""Client-side rate limiting: request/token budgets, the server's rate-limit headers, AIMD concurrency.

A judge server's limit is what a training run's reward throughput hits first. Three mechanisms keep a
client just under it instead of hammering it with retries:

- **Budgets** (``RateLimits(requests_per_minute=..., tokens_per_minute=...)``): token buckets that
  *reserve* before each attempt. Tokens are estimated before the call (characters / 4 of the messages
  plus ``max_tokens``) and corrected with the usage the provider returns. A reservation may take the
  bucket into debt; the caller then sleeps until the debt is paid, so waiting callers are spaced
  evenly and nobody polls.
- **Server headers**: every response's ``x-ratelimit-*`` (OpenAI and most compatible gateways) or
  ``anthropic-ratelimit-*`` headers become a :class:`RateLimitSnapshot` through the provider hook
  ``HTTPClient.rate_limit_state``. When the server says a budget is exhausted, new attempts wait
  until enough of it has refilled (linear refill until the reported reset).
- **AIMD** (``adaptive=True``, the default): 429s halve the client's concurrency limit, successes
  grow it back by about one per round trip, never above ``max_concurrency``. Decisions are made
  once per window: only outcomes of requests sent under the current limit count, and only once
  there are a window's worth of them (at least 16), so a burst of 429s from one window in flight
  shrinks the limit once, as TCP does per round trip. And when a decrease did not clearly lower
  the share of 429s (a two-proportion z-test), they are not caused by this client's load (a
  server shedding at random, other tenants): the limit then holds, and shrinks again only if the
  share clearly grows. Plain AIMD would collapse to one request in flight under a 30 % random
  429 rate (see ``benchmarks/``).

Everything is behind the small :class:`RateLimiter` interface so that a budget shared by several
processes (a Redis backend, say) can replace :class:`LocalRateLimiter` without touching the send
shell. The clock is injectable (:class:`Clock`), so tests run on a fake one.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .._errors import ConfigurationError, RateLimitError
from .._limits import ConcurrencyLimiter
from ._ratelimit_budget import (
    _MIN_SAMPLE,
    _STALE_WINDOWS,
    _Bucket,
    _load_dependent,
    _refill_wait,
    _share_drop,
    estimate_tokens,
)
from ._ratelimit_headers import (
    RateLimitSnapshot,
    parse_anthropic_rate_limit_headers,
    parse_duration,
    parse_openai_rate_limit_headers,
)

__all__ = [
    "Clock",
    "LocalRateLimiter",
    "Permit",
    "RateLimitSnapshot",
    "RateLimiter",
    "RateLimits",
    "SystemClock",
    "estimate_tokens",
    "parse_anthropic_rate_limit_headers",
    "parse_duration",
    "parse_openai_rate_limit_headers",
]


# -- clock ---------------------------------------------------------------------------------------


@runtime_checkable
class Clock(Protocol):
    """Time source of a rate limiter: a monotonic reading in seconds and an async sleep."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> Awaitable[None]: ...


class SystemClock:
    """The real clock: ``time.monotonic`` and ``asyncio.sleep``."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


# -- the limiter interface -----------------------------------------------------------------------


class Permit:
    """One attempt's admission: what was reserved, and when (for AIMD's once-per-window rule)."""

    __slots__ = ("epoch", "estimated_tokens", "released")

    def __init__(self, estimated_tokens: int, epoch: int) -> None:
        self.estimated_tokens = estimated_tokens
        self.epoch = epoch
        self.released = False


@runtime_checkable
class RateLimiter(Protocol):
    """What the send shell asks of a rate limiter, once per attempt.

    ``acquire`` waits for the budgets and a concurrency slot; ``release`` frees the slot (exactly
    once per permit, whatever happened); the other methods report what the attempt found out.
    A shared backend (e.g. Redis) implements the same five calls.
    """

    estimates_tokens: bool
    """Whether ``acquire`` needs a token estimate (only then does the shell compute one)."""

    async def acquire(self, estimated_tokens: int = 0) -> Permit: ...

    def release(self, permit: Permit) -> None: ...

    def correct(self, permit: Permit, actual_tokens: int) -> None: ...

    def on_rate_limited(self, permit: Permit, retry_after: float | None) -> None: ...

    def on_success(self, permit: Permit) -> None: ...

    def observe(self, permit: Permit, snapshot: RateLimitSnapshot) -> None: ...


@dataclass(frozen=True)
class RateLimits:
    """How a client paces itself; pass as ``limits=`` to any client.

    - ``requests_per_minute`` / ``tokens_per_minute``: budgets of *this process* (see the README's
      "Throughput" section for sizing them per process in multi-GPU runs). ``None``: unlimited.
    - ``adaptive``: AIMD on the concurrency limit — halve (``decrease``) on a 429, grow back by about
      one per round trip after successes, between ``min_concurrency`` and ``max_concurrency``.
    - ``respect_headers``: pause new attempts when the server's rate-limit headers say a budget is
      exhausted — for at most ``max_retry_after`` seconds (default 60, like OpenAI's SDK): when
      the headers ask for a longer pause, attempts in the next ``max_retry_after`` seconds fail
      fast with a :class:`~rftjudge.RateLimitError` instead (a reset 10,000 hours away must not
      stall a training run).
    - ``burst_s``: how many seconds of budget may be spent at once after an idle spell.
    - ``clock``: time source (tests pass a fake one).
    - ``backend``: where the budgets live. ``None`` (default): in this process. A ``redis://`` (or
      ``rediss://``, ``unix://``) URL: in Redis under ``key``, shared by every process that names
      the same key, with ``max_in_flight`` requests in flight across all of them, held as leases
      that expire ``lease_ttl`` seconds after their holder stops refreshing them (a killed process
      gives its slots back). Needs ``pip install "rftjudge[redis]"``; see
      :mod:`rftjudge.clients._redis_limits`. The URL is kept out of the repr (it may hold a
      password).
    """

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    adaptive: bool = True
    respect_headers: bool = True
    decrease: float = 0.5
    min_concurrency: int = 1
    burst_s: float = 1.0
    clock: Clock | None = None
    backend: str | None = field(default=None, repr=False)
    key: str | None = None
    max_in_flight: int | None = None
    lease_ttl: float = 15.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        for name in ("requests_per_minute", "tokens_per_minute"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ConfigurationError(f"RateLimits: {name} must be a number > 0 or None")
        if not (0.0 < self.decrease < 1.0):
            raise ConfigurationError("RateLimits: decrease must be in (0, 1)")
        if not isinstance(self.min_concurrency, int) or self.min_concurrency < 1:
            raise ConfigurationError("RateLimits: min_concurrency must be an int >= 1")
        if not (self.burst_s > 0 and math.isfinite(self.burst_s)):
            raise ConfigurationError("RateLimits: burst_s must be > 0 seconds")
        if (
            isinstance(self.max_retry_after, bool)
            or not isinstance(self.max_retry_after, int | float)
            or not (0 <= self.max_retry_after < math.inf)
        ):
            raise ConfigurationError("RateLimits: max_retry_after must be a number of seconds >= 0")
        self._check_shared()

    def _check_shared(self) -> None:
        """The fields of a shared backend: all or nothing, so that a typo cannot silently fall
        back to per-process limits."""
        if self.max_in_flight is not None and (
            isinstance(self.max_in_flight, bool)
            or not isinstance(self.max_in_flight, int)
            or self.max_in_flight < 1
        ):
            raise ConfigurationError("RateLimits: max_in_flight must be an int >= 1 or None")
        if not (isinstance(self.lease_ttl, int | float) and math.isfinite(self.lease_ttl)) or not (
            self.lease_ttl > 0
        ):
            raise ConfigurationError("RateLimits: lease_ttl must be > 0 seconds")
        if self.backend is None:
            if self.key is not None or self.max_in_flight is not None:
                raise ConfigurationError(
                    "RateLimits: key and max_in_flight describe a budget shared by several "
                    'processes and need backend="redis://host:6379/0"; for one process use '
                    "the client's max_concurrency"
                )
            return
        if not isinstance(self.backend, str) or not self.backend.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ConfigurationError(
                "RateLimits: backend must be None (this process) or a redis://, rediss:// or "
                "unix:// URL"
            )
        if not isinstance(self.key, str) or not self.key.strip():
            raise ConfigurationError(
                "RateLimits: a shared backend needs key= (a name for the budget, e.g. the judge "
                "deployment: every process naming the same key shares it)"
            )

    def make_limiter(self, concurrency: ConcurrencyLimiter) -> RateLimiter:
        """The limiter for one client: the in-process one, or the shared one ``backend`` names."""
        if self.backend is not None:
            from ._redis_limits import RedisRateLimiter

            return RedisRateLimiter(self, concurrency)
        return LocalRateLimiter(self, concurrency)


class LocalRateLimiter:
    """The in-process :class:`RateLimiter`: buckets, header pauses and AIMD for one client.

    Shared by every event loop and thread using the client (state under a lock; each caller sleeps
    on its own loop).
    """

    def __init__(self, limits: RateLimits, concurrency: ConcurrencyLimiter) -> None:
        self.limits = limits
        self.clock: Clock = limits.clock or SystemClock()
        self._concurrency = concurrency
        self._max = concurrency.limit
        self._window = float(self._max)
        self._epoch = 0
        self._attempts = 0  # outcomes of requests sent under the current window
        self._rejected = 0
        self._last_sample: tuple[int, int] | None = None  # (rejected, outcomes) last judged
        self._last_window = self._window
        self._last_action: str | None = None
        self._lock = threading.Lock()
        now = self.clock.monotonic()
        self._requests = (
            _Bucket(limits.requests_per_minute, limits.burst_s, now)
            if limits.requests_per_minute
            else None
        )
        self._tokens = (
            _Bucket(limits.tokens_per_minute, limits.burst_s, now)
            if limits.tokens_per_minute
            else None
        )
        self._paused_until = -math.inf
        self._refused_until = -math.inf  # header asked for a pause over max_retry_after: fail fast
        self._refused_wait = 0.0
        self.estimates_tokens = self._tokens is not None
        self._paced = self._requests is not None or self._tokens is not None

    @property
    def concurrency(self) -> int:
        """The current (adaptive) concurrency limit."""
        return self._concurrency.limit

    async def acquire(self, estimated_tokens: int = 0) -> Permit:
        if self._paced or self._paused_until > -math.inf:
            await self._wait_for_budget(estimated_tokens)
        await self._concurrency.acquire()
        # The epoch is read once the request may go out: it is sent under the current window.
        return Permit(estimated_tokens if self._tokens is not None else 0, self._epoch)

    async def _wait_for_budget(self, estimated_tokens: int) -> None:
        with self._lock:
            now = self.clock.monotonic()
            if now < self._refused_until:
                raise RateLimitError(
                    f"the server's rate-limit headers ask for a {self._refused_wait:g}s pause, over "
                    f"max_retry_after={self.limits.max_retry_after:g}s: failing fast",
                    status_code=429,
                    retry_after=self._refused_wait,
                )
            wait = max(0.0, self._paused_until - now)
            if wait == 0.0:
                self._paused_until = -math.inf  # back on the fast path
            if self._requests is not None:
                wait = max(wait, self._requests.take(1.0, now))
            if self._tokens is not None:
                wait = max(wait, self._tokens.take(float(estimated_tokens), now))
        if wait > 0:
            try:
                await self.clock.sleep(wait)
            except BaseException:  # cancelled while waiting: give the reservation back
                with self._lock:
                    now = self.clock.monotonic()
                    if self._requests is not None:
                        self._requests.give(1.0, now)
                    if self._tokens is not None:
                        self._tokens.give(float(estimated_tokens), now)
                raise

    def release(self, permit: Permit) -> None:
        if not permit.released:
            permit.released = True
            self._concurrency.release()

    def correct(self, permit: Permit, actual_tokens: int) -> None:
        if self._tokens is None or actual_tokens == permit.estimated_tokens:
            return
        with self._lock:
            delta = permit.estimated_tokens - actual_tokens
            now = self.clock.monotonic()
            if delta > 0:
                self._tokens.give(float(delta), now)
            else:
                self._tokens.take(float(-delta), now)
            permit.estimated_tokens = actual_tokens

    def on_rate_limited(self, permit: Permit, retry_after: float | None) -> None:
        if not self.limits.adaptive:
            return
        with self._lock:
            if permit.epoch != self._epoch:
                return  # sent under an earlier window: that window was already answered
            self._attempts += 1
            self._rejected += 1
            if self._attempts < max(_MIN_SAMPLE, int(self._window)):
                return  # not enough evidence in this window yet
            sample = (self._rejected, self._attempts)
            last = self._last_sample
            if self._attempts >= _STALE_WINDOWS * max(_MIN_SAMPLE, int(self._window)):
                last = None  # a long calm since the last judgement: start afresh
            if last is None:
                shrink = True  # the first window with 429s
            elif self._last_action == "decrease":
                # Did the decrease act like relief of *our* load (the server kept accepting as
                # many per round trip) or did the share of 429s stay put (they are not ours)?
                shrink = _load_dependent(last, self._last_window, sample, self._window)
            else:  # after a hold: shrink only if the share of 429s clearly grew
                shrink = _share_drop(sample, last) > 2.0
            self._epoch += 1
            self._attempts = self._rejected = 0
            if (
                shrink
                or self._last_action != "hold"
                or last is None
                or _share_drop(last, sample) > 3
            ):
                # A hold keeps the sample it started from (unless the share clearly fell): a
                # share creeping up window by window must still count as "clearly grown".
                self._last_sample = sample
                self._last_window = self._window
            self._last_action = "decrease" if shrink else "hold"
            if shrink:
                self._window = max(
                    float(self.limits.min_concurrency), self._window * self.limits.decrease
                )
                self._concurrency.set_limit(int(self._window))

    def on_success(self, permit: Permit) -> None:
        if not self.limits.adaptive:
            return
        with self._lock:
            if permit.epoch == self._epoch:
                self._attempts += 1
            if self._window >= self._max:
                return
            old = int(self._window)
            self._window = min(float(self._max), self._window + 1.0 / self._window)
            if int(self._window) != old:
                self._concurrency.set_limit(int(self._window))

    def observe(self, permit: Permit, snapshot: RateLimitSnapshot) -> None:
        if not self.limits.respect_headers:
            return
        wait = max(
            _refill_wait(
                snapshot.remaining_requests, snapshot.limit_requests, snapshot.reset_requests_s, 1
            ),
            _refill_wait(
                snapshot.remaining_tokens,
                snapshot.limit_tokens,
                snapshot.reset_tokens_s,
                max(1, permit.estimated_tokens),
            ),
        )
        if wait > self.limits.max_retry_after:
            with self._lock:
                now = self.clock.monotonic()
                self._refused_until = now + self.limits.max_retry_after
                self._refused_wait = wait
                self._paused_until = max(self._paused_until, now)  # off the fast path
        elif wait > 0:
            with self._lock:
                self._paused_until = max(self._paused_until, self.clock.monotonic() + wait)

    def __repr__(self) -> str:
        return f"LocalRateLimiter({self.limits!r}, concurrency={self.concurrency})"
