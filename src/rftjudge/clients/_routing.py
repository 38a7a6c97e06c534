"""Routing over several endpoints of the same model: least-loaded choice, ejection, failover, stats.

A training run's judge is often a handful of vLLM/SGLang replicas. Sent round-robin (or all to one),
a slow or dead replica holds up every reward call that touches it. The router here sends each
request to the endpoint with the **fewest requests in flight** (a slow replica accumulates in-flight
requests and so gets fewer new ones), **ejects** an endpoint after a connection failure or
``eject_after`` consecutive 5xx/timeouts, and after a cool-down lets **one probe** through (half-open,
as a circuit breaker does): success brings it back, failure ejects it again for twice as long (up to
``max_cooldown``). A failed request is retried on another endpoint **within the same retry budget**:
retries belong to whoever routes, never to both router and endpoint (which would multiply them).

Two forms share :class:`EndpointRouter`:

- ``OpenAIClient(model, base_url=[url1, url2, url3])`` (any :class:`~rftjudge.HTTPClient` whose
  request URLs start with its base URL): the send shell picks an endpoint per attempt, so the
  cache (keyed by the first URL: a cached answer serves every replica), single-flight, retries and
  ``client.stats`` stay the client's. ``max_concurrency`` and ``limits`` are **totals** over the
  endpoints: each endpoint gets an equal share (its own concurrency slot with its own AIMD, its own
  requests/tokens per minute, and with a shared backend its own key ``key@url`` holding
  ``max_in_flight / n`` slots), so a replica's load is bounded across the whole fleet and an
  ejected replica's share is not piled onto the others. Per-endpoint figures:
  ``client.endpoints.stats()``.
- :class:`EndpointPool` ``([client1, client2, ...])`` wraps any clients (different providers or
  server families, a :class:`~rftjudge.FunctionClient`): each keeps its own limits, cache and
  single-flight; the pool owns the retries (it sets its members' ``max_retries`` to 0).
  Per-endpoint figures: ``pool.stats()``.

A server-side router (sglang-router, vLLM's production-stack router, a load balancer) is the better
choice when the fleet is large or changes (autoscaling: clients would need new URL lists), when it
can route by prefix-cache affinity (sglang-router's cache-aware policy reuses KV cache across
requests that share a long rubric prompt — a client cannot see the caches), or when many unrelated
clients share the replicas. Behind one router, give rftjudge the router's single URL: the router
balances, and rftjudge's retries, AIMD and shared budget still apply to the router's answers.

**Follow-ups stay.** A judge's exact reads and re-asks extend the verdict just written; only the
replica that wrote it has that prefix cached. Within one conversation
(:func:`rftjudge._affinity.conversation`, opened by the judges around a verdict and its
follow-ups), a ``follow_up`` request goes back to the endpoint its conversation last used while
that endpoint is usable; a failed attempt still fails over to another.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Literal, TypeVar

from .._affinity import current_conversation
from .._errors import (
    ConfigurationError,
    JudgeError,
)
from .._limits import ConcurrencyLimiter
from ._classify import classify
from ._ratelimit import RateLimiter, RateLimits

__all__ = [
    "Endpoint",
    "EndpointRouter",
    "EndpointStats",
    "HTTPEndpoint",
    "base_urls",
    "endpoint_limits",
    "http_endpoints",
]

T = TypeVar("T")
R = TypeVar("R")
State = Literal["healthy", "ejected", "half_open"]
_LATENCY_WINDOW = 1024


@dataclass(frozen=True)
class EndpointStats:
    """One endpoint's figures since the router was built."""

    name: str
    state: State
    in_flight: int
    requests: int
    successes: int
    failures: dict[str, int]
    ejections: int
    latency_p50_s: float | None
    latency_p95_s: float | None
    concurrency: int | None = None
    """The endpoint's current (adaptive) concurrency limit, where it has one of its own."""


class Endpoint(Generic[T]):
    """One endpoint's routing state (mutated under the router's lock)."""

    __slots__ = (
        "consecutive",
        "ejections",
        "failures",
        "in_flight",
        "latencies",
        "name",
        "probing",
        "requests",
        "state",
        "strikes",
        "successes",
        "target",
        "until",
    )

    def __init__(self, name: str, target: T) -> None:
        self.name = name
        self.target = target
        self.state: State = "healthy"
        self.in_flight = 0
        self.requests = 0
        self.successes = 0
        self.failures: Counter[str] = Counter()
        self.ejections = 0
        self.consecutive = 0
        self.until = 0.0
        self.strikes = 0  # failed probes in a row: each doubles the cool-down
        self.probing = False
        self.latencies: deque[float] = deque(maxlen=_LATENCY_WINDOW)

    def __repr__(self) -> str:
        return f"Endpoint({self.name!r}, {self.state}, in_flight={self.in_flight})"


class EndpointRouter(Generic[T]):
    """Least-in-flight routing with passive health checks over ``(name, target)`` endpoints.

    ``eject_after``, ``base_cooldown`` and ``max_cooldown`` may be changed at any time (e.g.
    ``client.endpoints.base_cooldown = 1.0``). Thread-safe: one client may be used from several
    event loops and threads.
    """

    def __init__(
        self,
        endpoints: Sequence[tuple[str, T]],
        *,
        eject_after: int = 3,
        cooldown: float = 5.0,
        max_cooldown: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        concurrency_of: Callable[[T], int | None] | None = None,
    ) -> None:
        if not endpoints:
            raise ConfigurationError("an endpoint router needs at least one endpoint")
        if not isinstance(eject_after, int) or eject_after < 1:
            raise ConfigurationError("eject_after must be an int >= 1")
        if not (0 < cooldown <= max_cooldown and math.isfinite(max_cooldown)):
            raise ConfigurationError("need 0 < cooldown <= max_cooldown (seconds)")
        names = [name for name, _ in endpoints]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"endpoint names must be unique, got {names}")
        self.eject_after = eject_after
        self.base_cooldown = float(cooldown)
        self.max_cooldown = float(max_cooldown)
        self._clock = clock
        self._concurrency_of = concurrency_of
        self.endpoints: tuple[Endpoint[T], ...] = tuple(
            Endpoint(name, target) for name, target in endpoints
        )
        self._next = 0
        self._lock = threading.Lock()

    def pick(
        self, avoid: Sequence[Endpoint[T]] = (), prefer: Endpoint[T] | None = None
    ) -> Endpoint[T]:
        """The endpoint for the next attempt (counted in flight until :meth:`finish`).

        Healthy endpoints and half-open ones without a probe running are candidates; those in
        ``avoid`` (already tried by this request) only if nothing else is. ``prefer`` (where a
        follow-up's conversation went) is taken when it is a candidate not in ``avoid``, however
        loaded. With every endpoint ejected, the one whose cool-down ends first is tried early
        rather than failing the request. Ties go round-robin, so equal endpoints alternate.
        """
        with self._lock:
            now = self._clock()
            endpoints = self.endpoints
            count = len(endpoints)
            start = self._next
            self._next = (start + 1) % count
            usable: list[Endpoint[T]] = []
            for offset in range(count):
                endpoint = endpoints[(start + offset) % count]
                if endpoint.state == "ejected" and now >= endpoint.until:
                    endpoint.state = "half_open"
                if endpoint.state == "healthy" or (
                    endpoint.state == "half_open" and not endpoint.probing
                ):
                    usable.append(endpoint)
            fresh = [e for e in usable if e not in avoid]
            if prefer is not None and prefer in fresh:
                chosen = prefer
            elif fresh or usable:
                chosen = min(fresh or usable, key=_load)
            else:
                chosen = min(
                    (e for e in endpoints if e not in avoid or len(avoid) >= count),
                    key=lambda e: (e.state != "ejected", e.until, e.in_flight),
                )
            if chosen.state in ("half_open", "ejected"):
                chosen.probing = True
            chosen.in_flight += 1
            chosen.requests += 1
            return chosen

    def finish(
        self, endpoint: Endpoint[T], error: BaseException | None, latency: float | None
    ) -> None:
        """Record an attempt's outcome: success, a health failure (eject?), or neither."""
        health = _health_failure(error)
        with self._lock:
            endpoint.in_flight -= 1
            probe = endpoint.probing and endpoint.state != "healthy"
            if error is not None and not isinstance(error, Exception):
                if probe:  # a cancelled probe proves nothing: let another one through
                    endpoint.probing = False
                return
            if error is None:
                endpoint.successes += 1
                if latency is not None:
                    endpoint.latencies.append(latency)
            else:
                endpoint.failures[_kind(error)] += 1
            if health is None:
                endpoint.consecutive = 0
                if probe or endpoint.state == "half_open":
                    endpoint.state = "healthy"
                    endpoint.probing = False
                    endpoint.strikes = 0
                return
            endpoint.consecutive += 1
            if probe:  # the probe failed: out again, for longer
                endpoint.probing = False
                endpoint.strikes += 1
                self._eject(endpoint)
            elif endpoint.state == "healthy" and (
                health == "down" or endpoint.consecutive >= self.eject_after
            ):
                self._eject(endpoint)

    def _eject(self, endpoint: Endpoint[T]) -> None:
        endpoint.state = "ejected"
        cooldown = min(self.max_cooldown, self.base_cooldown * 2.0 ** min(endpoint.strikes, 30))
        endpoint.until = self._clock() + cooldown
        endpoint.ejections += 1

    async def call(
        self,
        tried: list[Endpoint[T]],
        send: Callable[[T], Awaitable[R]],
        *,
        follow_up: bool = False,
    ) -> R:
        """One attempt: pick an endpoint (avoiding ``tried``, which it joins), ``send`` to it,
        record the outcome. The caller's retry loop calls this once per attempt.

        Inside a :func:`~rftjudge._affinity.conversation`, a ``follow_up`` goes to the endpoint
        its conversation's last request went to (where its prefix is cached) while that one is
        usable and not yet tried by this request."""
        current = current_conversation()
        prefer = current.chosen(self) if current is not None and follow_up else None
        endpoint = self.pick(tried, prefer if isinstance(prefer, Endpoint) else None)
        if current is not None:
            current.note(self, endpoint)
        tried.append(endpoint)
        started = self._clock()  # the router's clock: tests run latencies on a fake one
        try:
            result = await send(endpoint.target)
        except BaseException as exc:
            self.finish(endpoint, exc, None)
            raise
        self.finish(endpoint, None, self._clock() - started)
        return result

    def stats(self) -> dict[str, EndpointStats]:
        """Per-endpoint figures, by endpoint name (its URL), in the configured order."""
        with self._lock:
            return {
                e.name: EndpointStats(
                    name=e.name,
                    state=e.state,
                    in_flight=e.in_flight,
                    requests=e.requests,
                    successes=e.successes,
                    failures=dict(e.failures),
                    ejections=e.ejections,
                    latency_p50_s=_quantile(e.latencies, 0.5),
                    latency_p95_s=_quantile(e.latencies, 0.95),
                    concurrency=self._concurrency_of(e.target) if self._concurrency_of else None,
                )
                for e in self.endpoints
            }

    def __repr__(self) -> str:
        return f"EndpointRouter({list(self.endpoints)!r})"


def _load(endpoint: Endpoint[Any]) -> tuple[int, bool]:
    """Fewest in flight first; on a tie a half-open endpoint, so that its probe goes out soon."""
    return endpoint.in_flight, endpoint.state != "half_open"


def _health_failure(error: BaseException | None) -> Literal["down", "fault"] | None:
    """``down``: nothing accepted the connection (eject at once); ``fault``: a 5xx, timeout or
    broken connection (eject after ``eject_after`` in a row); ``None``: the endpoint answered, or
    the failure was not its own (see :mod:`._classify`)."""
    return None if error is None else classify(error).endpoint


def _kind(error: BaseException) -> str:
    return error.kind if isinstance(error, JudgeError) else type(error).__name__


def _quantile(values: deque[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# -- several base URLs in one HTTP client ------------------------------------------------------


@dataclass(frozen=True)
class HTTPEndpoint:
    """One base URL of a multi-URL :class:`~rftjudge.HTTPClient`, with its share of the limits."""

    base_url: str
    concurrency: ConcurrencyLimiter = field(repr=False)
    rate: RateLimiter = field(repr=False)


def endpoint_limits(limits: RateLimits, url: str, count: int) -> RateLimits:
    """One endpoint's equal share of ``limits`` (totals over ``count`` endpoints); with a shared
    backend, under its own key ``key@url``, so that each replica's slots are bounded fleet-wide."""
    updates: dict[str, Any] = {}
    if limits.requests_per_minute is not None:
        updates["requests_per_minute"] = limits.requests_per_minute / count
    if limits.tokens_per_minute is not None:
        updates["tokens_per_minute"] = limits.tokens_per_minute / count
    if limits.backend is not None:
        updates["key"] = f"{limits.key}@{url}"
        if limits.max_in_flight is not None:
            updates["max_in_flight"] = math.ceil(limits.max_in_flight / count)
    return replace(limits, **updates) if updates else limits


def http_endpoints(
    urls: Sequence[str], limits: RateLimits, max_concurrency: int
) -> EndpointRouter[HTTPEndpoint]:
    """The router of a multi-URL HTTP client: each URL with its share of the concurrency/limits."""
    share = math.ceil(max_concurrency / len(urls))
    endpoints: list[tuple[str, HTTPEndpoint]] = []
    for url in urls:
        concurrency = ConcurrencyLimiter(share)
        rate = endpoint_limits(limits, url, len(urls)).make_limiter(concurrency)
        endpoints.append((url, HTTPEndpoint(url, concurrency, rate)))
    return EndpointRouter(endpoints, concurrency_of=lambda e: e.concurrency.limit)


def base_urls(base_url: str | Sequence[str], owner: str) -> list[str]:
    """``base_url`` as a non-empty list of distinct URLs without trailing slashes."""
    urls = [base_url] if isinstance(base_url, str) else list(base_url)
    if not urls or not all(isinstance(u, str) and u.strip() for u in urls):
        raise ConfigurationError(f"{owner}: base_url must be a URL or a non-empty list of URLs")
    cleaned = [u.strip().rstrip("/") for u in urls]
    if len(set(cleaned)) != len(cleaned):
        raise ConfigurationError(f"{owner}: base_url lists a URL twice")
    return cleaned


# -- a pool of clients ---------------------------------------------------------------------------
