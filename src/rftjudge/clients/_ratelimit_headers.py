"""What the server says about this key's budgets: rate-limit headers read into a snapshot.

Every response's ``x-ratelimit-*`` (OpenAI and most compatible gateways) or
``anthropic-ratelimit-*`` headers become a :class:`RateLimitSnapshot` through the provider hook
``HTTPClient.rate_limit_state``; the limiter (:mod:`._ratelimit`) then pauses new attempts until
enough of an exhausted budget has refilled. Pure functions of the headers, apart from the
limiter, so that a provider can use them without knowing how pacing works.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "RateLimitSnapshot",
    "parse_anthropic_rate_limit_headers",
    "parse_duration",
    "parse_openai_rate_limit_headers",
]


@dataclass(frozen=True, slots=True)
class RateLimitSnapshot:
    """The server's view of this key's budgets, from one response's headers.

    ``reset_*_s`` is the number of seconds until that budget is fully replenished.
    Any field may be ``None`` when the server does not report it.
    """

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_s: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_s: float | None = None


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(value: str) -> float | None:
    """Seconds in a Go-style duration as OpenAI sends it (``"12ms"``, ``"6m0s"``, ``"1h2m3.5s"``).

    A bare number is taken as seconds; anything else unparseable gives ``None``.
    """
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    total = 0.0
    position = 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    return total if position == len(text) else None


def _int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def parse_openai_rate_limit_headers(headers: Mapping[str, str]) -> RateLimitSnapshot | None:
    """``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``; ``None`` when none is present."""
    if (
        "x-ratelimit-remaining-requests" not in headers
        and "x-ratelimit-remaining-tokens" not in headers
    ):
        return None
    reset_r = headers.get("x-ratelimit-reset-requests")
    reset_t = headers.get("x-ratelimit-reset-tokens")
    return RateLimitSnapshot(
        limit_requests=_int(headers, "x-ratelimit-limit-requests"),
        remaining_requests=_int(headers, "x-ratelimit-remaining-requests"),
        reset_requests_s=parse_duration(reset_r) if reset_r is not None else None,
        limit_tokens=_int(headers, "x-ratelimit-limit-tokens"),
        remaining_tokens=_int(headers, "x-ratelimit-remaining-tokens"),
        reset_tokens_s=parse_duration(reset_t) if reset_t is not None else None,
    )


def _seconds_until(stamp: str | None, now: float) -> float | None:
    if stamp is None:
        return None
    try:
        when = datetime.fromisoformat(stamp.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def parse_anthropic_rate_limit_headers(
    headers: Mapping[str, str], *, now: Callable[[], float] = time.time
) -> RateLimitSnapshot | None:
    """``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`` (reset is RFC 3339).

    For providers to return from their ``rate_limit_state`` hook.
    """
    prefix = "anthropic-ratelimit-"
    if prefix + "requests-remaining" not in headers and prefix + "tokens-remaining" not in headers:
        return None
    current = now()
    return RateLimitSnapshot(
        limit_requests=_int(headers, prefix + "requests-limit"),
        remaining_requests=_int(headers, prefix + "requests-remaining"),
        reset_requests_s=_seconds_until(headers.get(prefix + "requests-reset"), current),
        limit_tokens=_int(headers, prefix + "tokens-limit"),
        remaining_tokens=_int(headers, prefix + "tokens-remaining"),
        reset_tokens_s=_seconds_until(headers.get(prefix + "tokens-reset"), current),
    )
