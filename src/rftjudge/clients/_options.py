"""The HTTP options every HTTP client takes, declared once (defaults: ``HTTPClient.__init__``).

Provider clients take their own arguments explicitly and these as ``**http_options:
Unpack[HTTPOptions]``, passed on to :class:`~rftjudge.HTTPClient` untouched — so a type checker
sees every option on every client, and a new one is added here and in ``HTTPClient`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

import httpx

from ..cache import Cache
from ..pricing import Price
from ._ratelimit import RateLimits
from ._retry import RetryPolicy

__all__ = ["HTTPOptions"]


class HTTPOptions(TypedDict, total=False):
    """Keyword options of every HTTP client.

    - ``max_concurrency``: requests in flight at once (shared by every judge using the client);
    - ``timeout``: seconds per attempt; ``max_retries`` / ``retry_policy``: retries of transient
      failures;
    - ``http_client`` / ``transport``: your own httpx client or transport; ``http2``: HTTP/2;
    - ``headers``: extra request headers; ``limits``: rate limits and budgets (:class:`RateLimits`);
    - ``cache``, ``cache_sampled``, ``coalesce``: the response cache and single-flight;
    - ``prices``: $ per million tokens, for ``stats.cost_usd``;
    - ``max_response_bytes``: the largest response body read (a hostile or broken server cannot
      make the client buffer without bound).
    """

    max_concurrency: int
    timeout: float
    max_retries: int
    retry_policy: RetryPolicy | None
    http_client: httpx.AsyncClient | None
    transport: httpx.AsyncBaseTransport | None
    headers: Mapping[str, str] | None
    limits: RateLimits | None
    cache: Cache | None
    cache_sampled: bool
    coalesce: bool
    prices: Price | Mapping[str, float] | None
    http2: bool
    max_response_bytes: int
