"""A rate-limit budget shared by every process of a training run, kept in Redis.

Why: under ``accelerate`` every GPU rank, under veRL/OpenRLHF every Ray reward worker, has its own
judge client. Limits kept per process either waste an account's quota (split too small) or overrun
it (each process spends "its" share at once) — and the judge answers with a 429 storm. With
``RateLimits(backend="redis://...", key="judge-gpt-4.1", max_in_flight=64, requests_per_minute=...)``
every process naming the same key draws from one budget:

- **Requests / tokens per minute**: token buckets, reserved before each attempt exactly like the
  in-process ones (:mod:`rftjudge.clients._ratelimit`): a reservation may take a bucket into
  debt and the caller sleeps until it is paid, so callers across the fleet are spaced evenly and
  nobody polls. Token estimates are corrected with the usage returned.
- **Requests in flight** (``max_in_flight``): leases. A slot is a member of a sorted set scored by
  its expiry. A thread in each process pushes the expiry of all its live leases forward every
  ``lease_ttl / 3`` seconds; a process that dies (SIGKILL, OOM, a lost node) stops doing so, and
  the next acquirer drops its leases once ``lease_ttl`` has passed — its slots come back without
  anyone noticing the crash. Freeing a slot pushes a token onto a wake-up list, on which one
  waiter per process and event loop blocks (``BLPOP``, with a timeout so that slots freed by
  expiry are seen too); the other waiters of that loop queue behind it locally, so a fleet
  waiting for slots costs Redis one blocked connection per process, not one per request.

Every change is one Lua script, so concurrent processes never see a half-done update, and times
come from Redis's own clock (``TIME``), so machines with skewed clocks still agree. Keys share the
hash tag ``{key}``, so a Redis Cluster keeps one budget on one shard.

What stays per process: the client's ``max_concurrency`` slot, AIMD on 429s and pauses on the
server's rate-limit headers (a :class:`~rftjudge.clients._ratelimit.LocalRateLimiter` without
budgets does them) — the shared part bounds the fleet, the local part keeps one process polite.

Failure: if Redis cannot be reached, the attempt fails with a :class:`~rftjudge.TransportError`
naming the backend (retried like any transport error) rather than silently dropping the bound.
The backend URL's password never appears in a message or repr.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from .._errors import RateLimitBackendError
from .._limits import ConcurrencyLimiter
from ._ratelimit import (
    Clock,
    LocalRateLimiter,
    Permit,
    RateLimits,
    RateLimitSnapshot,
    SystemClock,
)
from ._redis_scripts import ACQUIRE, BUCKETS, REFRESH, RELEASE, bucket_args
from ._secrets import redact_url, url_secrets

__all__ = ["RateLimitBackendError", "RedisRateLimiter", "redact_url", "url_secrets"]

logger = logging.getLogger("rftjudge")
T = TypeVar("T")
_CONNECTIONS = 32  # per process and event loop
def _import_redis() -> Any:
    try:
        import redis.asyncio  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise ImportError(
            'RateLimits(backend="redis://...") needs the redis package: '
            'pip install "rftjudge[redis]"'
        ) from None
    return redis


class _LeasePermit(Permit):
    """A permit of the shared limiter: the local permit inside it, and the lease it holds."""

    __slots__ = ("inner", "lease")

    def __init__(self, estimated_tokens: int, inner: Permit, lease: str | None) -> None:
        super().__init__(estimated_tokens, inner.epoch)
        self.inner = inner
        self.lease = lease


class _LoopState:
    """What belongs to one event loop: its Redis connection pool, scripts and waiting gate."""

    def __init__(self, redis: Any, url: str) -> None:
        # A bounded pool that makes callers wait for a connection (the default one fails past
        # 100): a batch of thousands reserving budget at once must queue, not error.
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=_CONNECTIONS,
            timeout=None,
            decode_responses=True,
            socket_connect_timeout=5.0,
            socket_timeout=30.0,
        )
        self.client = redis.asyncio.Redis(connection_pool=pool)
        self.acquire = self.client.register_script(ACQUIRE)
        self.release = self.client.register_script(RELEASE)
        self.buckets = self.client.register_script(BUCKETS)
        self.gate = asyncio.Lock()
        self.tasks: set[asyncio.Task[None]] = set()


class RedisRateLimiter:
    """The :class:`~rftjudge.clients.RateLimiter` of ``RateLimits(backend="redis://...")``.

    Built by :meth:`RateLimits.make_limiter`; see the module docstring for how it works.
    """

    def __init__(self, limits: RateLimits, concurrency: ConcurrencyLimiter) -> None:
        assert limits.backend is not None and limits.key is not None
        self._redis = _import_redis()
        self.limits = limits
        self._url = limits.backend
        self.backend = redact_url(limits.backend)
        self.clock: Clock = limits.clock or SystemClock()
        # AIMD, header pauses and the process's own slot stay local.
        self._local = LocalRateLimiter(
            replace(
                limits,
                requests_per_minute=None,
                tokens_per_minute=None,
                backend=None,
                key=None,
                max_in_flight=None,
            ),
            concurrency,
        )
        prefix = f"rftjudge:{{{limits.key}}}"
        self._leases, self._wake = f"{prefix}:leases", f"{prefix}:wake"
        self._bucket_keys = [f"{prefix}:requests", f"{prefix}:tokens"]
        self._requests = bucket_args(limits.requests_per_minute, limits.burst_s)
        self._tokens = bucket_args(limits.tokens_per_minute, limits.burst_s)
        self.estimates_tokens = limits.tokens_per_minute is not None
        self._paced = limits.requests_per_minute is not None or self.estimates_tokens
        self._max = limits.max_in_flight
        self._ttl_ms = max(1, round(limits.lease_ttl * 1000))
        self._poll = min(1.0, limits.lease_ttl / 4)
        self._owner = uuid.uuid4().hex[:12]
        self._numbers = itertools.count()
        self._live: set[str] = set()
        self._lock = threading.Lock()
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None
        weakref.finalize(self, self._stop.set)

    @property
    def concurrency(self) -> int:
        """This process's current (adaptive) concurrency limit."""
        return self._local.concurrency

    @property
    def held(self) -> int:
        """Leases this process holds now."""
        with self._lock:
            return len(self._live)

    # -- the RateLimiter interface -------------------------------------------------------------

    async def acquire(self, estimated_tokens: int = 0) -> Permit:
        state = self._state()
        tokens = estimated_tokens if self.estimates_tokens else 0
        if self._paced:
            wait_ms = float(
                await self._call(state.buckets(self._bucket_keys, self._args(1, tokens)))
            )
            if wait_ms > 0:
                try:
                    await self.clock.sleep(wait_ms / 1000.0)
                except BaseException:  # cancelled while waiting: give the reservation back
                    self._spawn(state, self._give_back(state, 1, tokens))
                    raise
        try:
            inner = await self._local.acquire(0)
        except BaseException:
            if self._paced:
                self._spawn(state, self._give_back(state, 1, tokens))
            raise
        lease = None
        if self._max is not None:
            try:
                lease = await self._lease(state)
            except BaseException:
                self._local.release(inner)
                if self._paced:
                    self._spawn(state, self._give_back(state, 1, tokens))
                raise
        return _LeasePermit(tokens, inner, lease)

    def release(self, permit: Permit) -> None:
        if permit.released:
            return
        permit.released = True
        assert isinstance(permit, _LeasePermit)
        self._local.release(permit.inner)
        if permit.lease is not None:
            with self._lock:
                self._live.discard(permit.lease)
            self._release_soon(permit.lease)

    def correct(self, permit: Permit, actual_tokens: int) -> None:
        if not self.estimates_tokens or actual_tokens == permit.estimated_tokens:
            return
        delta = actual_tokens - permit.estimated_tokens
        permit.estimated_tokens = actual_tokens
        state = self._state_or_none()
        if state is not None:
            self._spawn(state, self._give_back(state, 0, -delta))

    def on_rate_limited(self, permit: Permit, retry_after: float | None) -> None:
        self._local.on_rate_limited(permit, retry_after)

    def on_success(self, permit: Permit) -> None:
        self._local.on_success(permit)

    def observe(self, permit: Permit, snapshot: RateLimitSnapshot) -> None:
        self._local.observe(permit, snapshot)

    # -- leases --------------------------------------------------------------------------------

    async def _lease(self, state: _LoopState) -> str:
        assert self._max is not None
        lease = f"{self._owner}:{next(self._numbers)}"
        async with state.gate:  # one waiter per loop polls Redis; the others queue here
            while True:
                try:
                    granted = await self._call(
                        state.acquire([self._leases, self._wake], [lease, self._ttl_ms, self._max])
                    )
                except BaseException:
                    # Cancelled (or failed) with the script's answer unknown: it may hold a slot.
                    self._spawn(state, self._release_remote(state, lease))
                    raise
                if granted:
                    self._hold(lease)
                    return lease
                await self._call(state.client.blpop([self._wake], timeout=self._poll))

    def _hold(self, lease: str) -> None:
        with self._lock:
            self._live.add(lease)
            if self._refresher is None:
                self._refresher = threading.Thread(
                    target=_refresh_leases,
                    args=(
                        self._redis,
                        self._url,
                        self._leases,
                        self._ttl_ms,
                        self._live,
                        self._lock,
                        self._stop,
                    ),
                    name=f"rftjudge-leases-{self._owner}",
                    daemon=True,
                )
                self._refresher.start()

    def _release_soon(self, lease: str) -> None:
        state = self._state_or_none()
        if state is not None:
            self._spawn(state, self._release_remote(state, lease))
        # else: no loop to send it from; the lease is no longer refreshed and expires

    async def _release_remote(self, state: _LoopState, lease: str) -> None:
        await self._call(
            state.release([self._leases, self._wake], [lease, self._max or 1, self._ttl_ms])
        )

    # -- budgets -------------------------------------------------------------------------------

    def _args(self, requests: int, tokens: int) -> list[float]:
        return [*self._requests, requests, *self._tokens, tokens]

    async def _give_back(self, state: _LoopState, requests: int, tokens: int) -> None:
        await self._call(state.buckets(self._bucket_keys, self._args(-requests, -tokens)))

    # -- plumbing ------------------------------------------------------------------------------

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            state = self._states[loop] = _LoopState(self._redis, self._url)
        return state

    def _state_or_none(self) -> _LoopState | None:
        try:
            return self._state()
        except RuntimeError:  # no running loop
            return None

    def _spawn(self, state: _LoopState, work: Awaitable[None]) -> None:
        """Run bookkeeping (a release, a correction) in the background: the interface is sync."""

        async def run() -> None:
            try:
                await work
            except Exception as exc:  # a lost release only delays the slot until its lease expires
                logger.warning("rftjudge: %s", exc)

        task = asyncio.get_running_loop().create_task(run())
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)

    async def _call(self, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except self._redis.RedisError as exc:
            raise RateLimitBackendError(
                f"rate-limit backend {self.backend} failed: {type(exc).__name__}: "
                f"{_scrub(str(exc), self._url)}",
                provider="redis",
            ) from None

    async def aclose(self) -> None:
        """Finish pending releases, stop refreshing leases and close the Redis connections."""
        self._stop.set()
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - aclose is always awaited
            current = None
        for loop, state in list(self._states.items()):
            if loop is current:
                await _close_state(state)
            elif not loop.is_closed() and loop.is_running():
                future = asyncio.run_coroutine_threadsafe(_close_state(state), loop)
                await asyncio.wrap_future(future)
        self._states.clear()

    def __repr__(self) -> str:
        return (
            f"RedisRateLimiter(backend={self.backend!r}, key={self.limits.key!r}, "
            f"max_in_flight={self._max}, concurrency={self.concurrency})"
        )


async def _close_state(state: _LoopState) -> None:
    if state.tasks:
        await asyncio.gather(*list(state.tasks), return_exceptions=True)
    await state.client.aclose()


def _scrub(text: str, url: str) -> str:
    for secret in url_secrets(url):
        text = text.replace(secret, "***")
    return text


def _refresh_leases(
    redis: Any,
    url: str,
    key: str,
    ttl_ms: int,
    live: set[str],
    lock: threading.Lock,
    stop: threading.Event,
) -> None:
    """Thread body: push the expiry of this process's live leases forward every ttl/3 seconds.

    A thread, not a task, so that it works whichever event loops the client is used from, and
    so that it keeps running while a loop is busy. It holds no reference to the limiter (whose
    finalizer stops it).
    """
    client = redis.Redis.from_url(
        url, decode_responses=True, socket_connect_timeout=5.0, socket_timeout=10.0
    )
    refresh: Callable[..., Any] = client.register_script(REFRESH)
    try:
        while not stop.wait(ttl_ms / 3000.0):
            with lock:
                leases = list(live)
            if not leases:
                continue
            try:
                lost = refresh(keys=[key], args=[ttl_ms, *leases])
            except redis.RedisError as exc:
                logger.warning(
                    "rftjudge: refreshing leases failed (%s: %s)",
                    type(exc).__name__,
                    _scrub(str(exc), url),
                )
                continue
            with lock:
                gone = [lease for lease in lost if lease in live]
            if gone:
                logger.warning(
                    "rftjudge: %d in-flight leases expired before they were refreshed (a pause "
                    "longer than lease_ttl); the shared bound may be exceeded until they finish",
                    len(gone),
                )
    finally:
        client.close()
