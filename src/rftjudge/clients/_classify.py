"""One classification of a failed attempt, read by the retry policy, the rate limiter and the router.

Three places react to a failure, and each used to decide for itself: the retry policy (try again?),
the adaptive concurrency limit (was it a rate limit, so that we should send less?) and the endpoint
router (is the endpoint at fault, so that it should be ejected?). :func:`classify` answers all three
once, as a :class:`Failure`, so that they cannot disagree — a deadline is never retried, a broken
shared-budget store (Redis) never ejects a judge endpoint, a 429 that says the quota is gone never
shrinks concurrency.

The rules:

- ``x-should-retry: true|false`` on an HTTP error overrides everything about retrying;
- 429 → ``rate_limit`` (retried, and the rate limiter backs off), except an exhausted quota, which
  no waiting clears (``fatal``);
- 5xx, 408, 409, connection failures and timeouts → ``transient`` (retried); 5xx and transport
  failures are the endpoint's fault — ``down`` when nothing accepted the connection, else ``fault``;
- a pause asked for (``retry-after``) longer than ``max_retry_after`` (the retry policy's) → not retried:
  fail fast rather than stall a training step;
- a batch deadline, other 4xx, and anything that is not a provider failure → ``fatal``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import httpx

from .._errors import (
    DeadlineExceededError,
    HTTPStatusError,
    QuotaExceededError,
    RateLimitBackendError,
    RateLimitError,
    ServerError,
    TransportError,
)

__all__ = ["Failure", "classify"]

_RETRY_STATUSES = frozenset({408, 409, 429})


@dataclass(frozen=True, slots=True)
class Failure:
    """What a failed attempt means.

    ``retry``: worth another attempt. ``kind``: ``rate_limit`` (send less: AIMD shrinks),
    ``transient`` (try again as before) or ``fatal``. ``retry_after``: the pause the server asked
    for, in seconds. ``endpoint``: whether the endpoint is at fault — ``down`` (eject now),
    ``fault`` (eject after several in a row) or None.
    """

    retry: bool
    kind: Literal["rate_limit", "transient", "fatal"]
    retry_after: float | None = None
    endpoint: Literal["down", "fault"] | None = None


_FATAL = Failure(retry=False, kind="fatal")
_BACKEND = Failure(retry=True, kind="transient")


def classify(exc: BaseException, max_retry_after: float | None = None) -> Failure:
    """Classify ``exc``; ``max_retry_after``: the longest server-asked pause worth waiting for."""
    if isinstance(exc, HTTPStatusError):
        return _classify_status(exc, max_retry_after)
    if isinstance(exc, DeadlineExceededError):
        return _FATAL  # the batch ran out of time: another try cannot help, nor is it the endpoint
    if isinstance(exc, RateLimitBackendError):
        return _BACKEND  # the shared budget's store failed, not the judge endpoint
    if isinstance(exc, TransportError):
        down = isinstance(exc.__cause__, httpx.ConnectError)
        return Failure(retry=True, kind="transient", endpoint="down" if down else "fault")
    return _FATAL


def _classify_status(exc: HTTPStatusError, max_retry_after: float | None) -> Failure:
    if isinstance(exc, QuotaExceededError):
        kind: Literal["rate_limit", "transient", "fatal"] = "fatal"
    elif isinstance(exc, RateLimitError):
        kind = "rate_limit"
    elif isinstance(exc, ServerError) or exc.status_code in _RETRY_STATUSES:
        kind = "transient"
    else:
        kind = "fatal"
    retry = kind != "fatal"
    if (
        retry
        and max_retry_after is not None
        and exc.retry_after is not None
        and exc.retry_after > max_retry_after
    ):
        retry = False  # the server wants a longer pause than we may stall: fail fast
    override = exc.headers.get("x-should-retry")
    if override in ("true", "false"):
        retry = override == "true"
    endpoint: Literal["fault"] | None = "fault" if isinstance(exc, ServerError) else None
    return Failure(retry=retry, kind=kind, retry_after=exc.retry_after, endpoint=endpoint)
