"""One judge over several clients: :class:`EndpointPool` routes each request to one of them.

The routing itself (least loaded first, ejection, half-open probes, failover within one retry
budget) is :mod:`rftjudge.clients._routing`, shared with the send shell's ``base_url=[...]`` form.
The pool wraps whole clients — different providers or server families, a
:class:`~rftjudge.FunctionClient` — each keeping its own limits, cache and single-flight, while the
pool owns the retries (it sets its members' ``max_retries`` to 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from .._affinity import current_conversation
from .._errors import ConfigurationError
from .._limits import ConcurrencyLimiter
from .._rebuild import Rebuildable
from .._types import ChatRequest, ChatResponse
from ._protocol import Capabilities, Client
from ._retry import RetryPolicy
from ._routing import (
    Endpoint,
    EndpointRouter,
    EndpointStats,
    HTTPEndpoint,
    endpoint_limits,
    http_endpoints,
)

__all__ = [
    "Endpoint",
    "EndpointPool",
    "EndpointRouter",
    "EndpointStats",
    "HTTPEndpoint",
    "endpoint_limits",
    "http_endpoints",
]


class EndpointPool(Rebuildable):
    """A :class:`~rftjudge.clients.Client` over several clients of the same judge model.

    Routing, ejection and failover as in the module docstring. The pool owns the retries: it
    takes its retry policy from ``retry_policy``, else from the first member that has one (with
    ``max_retries`` overriding the count), and sets every member's ``max_retries`` to 0, so that
    one request gets ``max_retries`` retries in all, each on the least-loaded healthy endpoint not
    yet tried. ``model``, ``provider`` and ``capabilities`` are the first member's: the members
    should serve the same model from the same server family.

    ``max_concurrency`` (default: the members' limits added up) bounds the pool's requests in
    flight; a request picks its member only once it holds one of these slots, so that a member
    that dies has no queue of requests already committed to it, and one that comes back gets new
    requests at once.
    """

    def __init__(
        self,
        clients: Sequence[Client],
        *,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        eject_after: int = 3,
        cooldown: float = 5.0,
        max_cooldown: float = 60.0,
        max_concurrency: int | None = None,
    ) -> None:
        members = list(clients)
        if not members or not all(callable(getattr(c, "complete", None)) for c in members):
            raise ConfigurationError(
                "EndpointPool needs a non-empty list of clients (objects with async complete())"
            )
        if len({id(c) for c in members}) != len(members):
            raise ConfigurationError("EndpointPool: the same client is listed twice")
        policy = retry_policy
        for member in members:
            own = getattr(member, "retry_policy", None)
            if isinstance(own, RetryPolicy):
                policy = policy or own
                if own.max_retries:
                    member.retry_policy = replace(own, max_retries=0)  # type: ignore[attr-defined]
        policy = policy or RetryPolicy()
        if max_retries is not None:
            try:
                policy = replace(policy, max_retries=max_retries)
            except ValueError as exc:
                raise ConfigurationError(f"EndpointPool: {exc}") from None
        self.retry_policy = policy
        self.clients: tuple[Client, ...] = tuple(members)
        total = max_concurrency or sum(int(getattr(c, "max_concurrency", 8)) for c in members)
        if not isinstance(total, int) or total < 1:
            raise ConfigurationError("EndpointPool: max_concurrency must be an int >= 1")
        self.max_concurrency = total
        self._slots = ConcurrencyLimiter(total)
        self._router: EndpointRouter[Client] = EndpointRouter(
            list(zip(_member_names(members), members, strict=True)),
            eject_after=eject_after,
            cooldown=cooldown,
            max_cooldown=max_cooldown,
            concurrency_of=_member_concurrency,
        )

    @property
    def model(self) -> str:
        return self.clients[0].model

    @property
    def provider(self) -> str:
        return self.clients[0].provider

    @property
    def capabilities(self) -> Capabilities:
        return self.clients[0].capabilities

    @property
    def router(self) -> EndpointRouter[Client]:
        return self._router

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Send ``request`` to the least-loaded healthy member; on a retryable failure, retry on
        another one (within ``retry_policy``'s budget)."""
        tried: list[Endpoint[Client]] = []

        async def attempt() -> ChatResponse:
            # A request whose conversation already holds a member (and maybe a slot there) goes
            # past the pool's limit: waiting for it behind requests that wait for that slot
            # would never end. The member's own limit still bounds it.
            current = current_conversation()
            if current is not None and current.chosen(self._router) is not None:
                return await self._send(tried, request)
            await self._slots.acquire()
            try:
                return await self._send(tried, request)
            finally:
                self._slots.release()

        response = await self.retry_policy.call(attempt)
        return replace(response, retries=len(tried) - 1) if len(tried) > 1 else response

    async def _send(self, tried: list[Endpoint[Client]], request: ChatRequest) -> ChatResponse:
        return await self._router.call(
            tried, lambda client: client.complete(request), follow_up=request.follow_up
        )

    def stats(self) -> dict[str, EndpointStats]:
        """Per-endpoint figures: requests, successes, failures by kind, ejections, latency."""
        return self._router.stats()

    async def aclose(self) -> None:
        for member in self.clients:
            aclose = getattr(member, "aclose", None)
            if callable(aclose):
                await aclose()

    def close(self) -> None:
        from .._sync import run_sync

        run_sync(self.aclose())

    async def __aenter__(self) -> EndpointPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> EndpointPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EndpointPool({list(self.clients)!r})"


def _member_names(members: Sequence[Any]) -> list[str]:
    names: list[str] = []
    for index, member in enumerate(members):
        name = getattr(member, "base_url", None)
        name = name if isinstance(name, str) and name else f"{index}:{type(member).__name__}"
        names.append(name if name not in names else f"{name}#{index}")
    return names


def _member_concurrency(member: Any) -> int | None:
    concurrency = getattr(getattr(member, "_rate", None), "concurrency", None)
    return concurrency if isinstance(concurrency, int) else None
