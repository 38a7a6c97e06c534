"""The client contract judges depend on, and the one HTTP send shell every provider shares.

A judge only needs :class:`Client`: ``await client.complete(ChatRequest) -> ChatResponse``. Anything
with that method (and ``model`` / ``provider`` / ``capabilities`` attributes) works as a judge client,
including user-written ones.

:class:`HTTPClient` implements the contract for HTTP APIs. A provider subclass supplies only pure
functions — :meth:`HTTPClient.build_request` (ChatRequest → URL, headers, JSON body),
:meth:`HTTPClient.parse_response` (JSON → ChatResponse) and, when its error bodies differ,
:meth:`HTTPClient.error_from_response` — and this shell does the rest once: concurrency limit,
retries, timeouts, translation of transport errors, usage counters, connection pools per event loop,
and the throughput machinery of ``complete``:

1. the response cache (``cache=``), keyed by a hash of the final URL and body bytes;
2. single-flight: an identical request already in flight on the same event loop is awaited, not sent
   again (pairwise swaps, ensembles and re-judged items collapse);
3. per attempt, the rate limiter (``limits=``: budgets, the server's rate-limit headers read through
   :meth:`HTTPClient.rate_limit_state`, AIMD on 429s) around the concurrency slot;
4. with several base URLs (``base_url=[url1, url2, ...]``), per attempt the endpoint: the least
   loaded healthy one not yet tried by this request (:mod:`rftjudge.clients._routing`), each with its
   own share of the concurrency and limits.

Cache and single-flight apply to deterministic requests (temperature 0) unless ``cache_sampled=True``.
Answers served by either carry zero usage, so summed judgment usage equals what was really spent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import httpx
from pydantic_core import from_json

from .._errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    HTTPStatusError,
    JudgeTimeoutError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    ResponseTooLargeError,
    ServerError,
    TransportError,
)
from .._limits import ConcurrencyLimiter, ahead_of_queue
from .._rebuild import Rebuildable
from .._sync import close_with_loop
from .._types import ChatRequest, ChatResponse, Usage
from ..cache import Cache, cache_key
from ..pricing import Price
from ._cache_io import CacheIO
from ._classify import classify
from ._headers import parse_retry_after
from ._protocol import Capabilities, Client
from ._ratelimit import (
    RateLimiter,
    RateLimits,
    RateLimitSnapshot,
    estimate_tokens,
    parse_openai_rate_limit_headers,
)
from ._retry import RetryPolicy
from ._routing import EndpointRouter, HTTPEndpoint, base_urls, http_endpoints
from ._stats import ClientStats
from ._transport import make_http_client, release_pool

__all__ = ["Capabilities", "Client", "HTTPClient"]

logger = logging.getLogger("rftjudge")

_CACHEABLE_FINISH = frozenset({"stop", "tool_use", None})
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
"""8 MiB: a thousand times a long judge answer with logprobs, and no memory spike."""


class HTTPClient(Rebuildable, ABC):
    """Base of rftjudge's own httpx clients (see the module docstring)."""

    provider: ClassVar[str] = "http"
    request_id_header: ClassVar[str] = "x-request-id"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | Sequence[str],
        max_concurrency: int = 32,
        timeout: float = 60.0,
        max_retries: int = 3,
        retry_policy: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        capabilities: Capabilities | None = None,
        limits: RateLimits | None = None,
        cache: Cache | None = None,
        cache_sampled: bool = False,
        coalesce: bool = True,
        prices: Price | Mapping[str, float] | None = None,
        http2: bool = False,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ConfigurationError(f"{type(self).__name__}: model must be a non-empty string")
        if not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ConfigurationError(
                f"{type(self).__name__}: max_concurrency must be a positive int, "
                f"got {max_concurrency!r}"
            )
        if timeout is None or timeout <= 0:
            raise ConfigurationError(f"{type(self).__name__}: timeout must be > 0 seconds")
        if (
            isinstance(max_response_bytes, bool)
            or not isinstance(max_response_bytes, int)
            or max_response_bytes < 1
        ):
            raise ConfigurationError(
                f"{type(self).__name__}: max_response_bytes must be a positive int, "
                f"got {max_response_bytes!r}"
            )
        if http_client is not None and transport is not None:
            raise ConfigurationError("pass either http_client or transport, not both")
        if limits is not None and not isinstance(limits, RateLimits):
            raise ConfigurationError(
                f"{type(self).__name__}: limits must be a RateLimits, got {type(limits).__name__}"
            )
        if cache is not None and not isinstance(cache, Cache):
            raise ConfigurationError(
                f"{type(self).__name__}: cache must have get(key) and set(key, value) "
                "(MemoryCache, SQLiteCache)"
            )
        self.model = model
        urls = base_urls(base_url, type(self).__name__)
        self.base_url = urls[0]
        self.max_concurrency = max_concurrency
        self.timeout = float(timeout)
        self.max_response_bytes = max_response_bytes
        """The longest answer body read (decoded), in bytes; a longer one fails with kind
        ``response_too_large`` without being buffered. Settable on a built client."""
        try:
            self.retry_policy = retry_policy or RetryPolicy(max_retries=max_retries)
        except ValueError as exc:
            raise ConfigurationError(f"{type(self).__name__}: {exc}") from None
        self.capabilities = capabilities or self.default_capabilities()
        self.stats = ClientStats(price=Price.parse(prices))
        self.limits = limits or RateLimits()
        self.endpoints: EndpointRouter[HTTPEndpoint] | None = None
        """With several base URLs: the router (``client.endpoints.stats()`` per endpoint)."""
        self._limiter = ConcurrencyLimiter(max_concurrency)
        if len(urls) == 1:
            self._rate: RateLimiter = self.limits.make_limiter(self._limiter)
        else:  # the client's slot is taken first; the endpoint is picked once a request may go
            self.endpoints = http_endpoints(urls, self.limits, max_concurrency)
            self._rate = self.endpoints.endpoints[0].target.rate
        self.last_rate_limits: RateLimitSnapshot | None = None
        """The server's rate-limit headers as of the latest response that had them."""
        self.cache = cache
        self._cache_io = CacheIO(cache, self.stats) if cache is not None else None
        self.cache_sampled = bool(cache_sampled)
        self.coalesce = bool(coalesce)
        self.http2 = bool(http2)
        self._flights: dict[str, _Flight] = {}
        self._flights_lock = threading.Lock()
        self._parsed_urls: dict[str, httpx.URL] = {}  # parsing a URL string costs ~20 µs a request
        self._extra_headers = dict(headers or {})
        self._user_http = http_client
        self._transport = transport
        self._http: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._shared_http: httpx.AsyncClient | None = None
        # what closes each loop's pool when that loop shuts down (see _sync.close_with_loop)
        self._closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, object] = (
            weakref.WeakKeyDictionary()
        )
        # A client dropped without aclose() still closes its pools (without aiohttp's warnings);
        # the finalizer holds the pools, not the client. At exit the portal closes its own.
        weakref.finalize(self, _release_dropped, self._http).atexit = False

    def _check_portable(self, kwargs: dict[str, Any]) -> None:
        for name in ("http_client", "transport"):
            if kwargs.get(name) is not None:
                raise TypeError(
                    f"{type(self).__name__} built with {name}= cannot be sent to another process "
                    f"(an httpx {name.replace('_', ' ')} is tied to this one); build the client "
                    f"without it, or build it in the receiving process"
                )

    # -- what providers implement (pure) ------------------------------------------------------

    def default_capabilities(self) -> Capabilities:
        return Capabilities()

    @abstractmethod
    def build_request(self, request: ChatRequest) -> tuple[str, dict[str, str], dict[str, Any]]:
        """Map a ChatRequest onto (URL, headers, JSON body) for this provider."""

    @abstractmethod
    def parse_response(self, body: Any, headers: Mapping[str, str]) -> ChatResponse:
        """Map a successful JSON response body onto a ChatResponse."""

    def error_from_response(
        self, status: int, body: Any, text: str, headers: Mapping[str, str]
    ) -> HTTPStatusError:
        """Map an error response onto the exception tree. Default: OpenAI-shaped ``{"error": ...}``."""
        message, code = _openai_style_error(body, text)
        return self.make_status_error(status, message, code, text, headers)

    def make_status_error(
        self,
        status: int,
        message: str,
        code: str | None,
        text: str,
        headers: Mapping[str, str],
        *,
        cls: type[HTTPStatusError] | None = None,
    ) -> HTTPStatusError:
        if cls is None:
            cls = status_error_class(status, code)
        # A gateway may echo the request's headers back (in the body, or in its own headers):
        # everything from the response is scrubbed before it becomes part of an exception.
        scrubbed = {k: self.scrub(v) for k, v in headers.items()}
        request_id = scrubbed.get(self.request_id_header)
        return cls(
            self.scrub(message),
            status_code=status,
            provider=self.provider,
            model=self.model,
            request_id=request_id,
            body=self.scrub(text),
            error_code=self.scrub(code) if code is not None else None,
            retry_after=parse_retry_after(headers),
            headers=scrubbed,
        )

    def rate_limit_state(self, headers: Mapping[str, str]) -> RateLimitSnapshot | None:
        """The rate-limit state a response's headers report, or None. Default: OpenAI's
        ``x-ratelimit-*`` names; Anthropic-style providers return
        :func:`~rftjudge.clients._ratelimit.parse_anthropic_rate_limit_headers`."""
        return parse_openai_rate_limit_headers(headers)

    def sign(self, url: str, headers: dict[str, str], content: bytes) -> dict[str, str]:
        """Last step before sending: add auth that depends on the exact bytes (AWS SigV4).

        Called once per attempt, so time-based signatures stay fresh across retries.
        """
        return headers

    def secrets(self) -> tuple[str, ...]:
        """Strings that must never appear in an error message or log (API keys)."""
        return ()

    def scrub(self, text: str) -> str:
        for secret in self.secrets():
            if secret:
                text = text.replace(secret, "***")
        return text

    # -- the send shell ------------------------------------------------------------------------

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Send one request (cache, single-flight, rate limit, retries); raise a ProviderError."""
        url, headers, body = self.build_request(request)
        return await self.send_built(request, url, headers, body)

    async def send_built(
        self, request: ChatRequest, url: str, headers: dict[str, str], body: dict[str, Any]
    ) -> ChatResponse:
        """:meth:`complete` for a request already in its wire form (a client that builds some
        requests its own way, with something it had to ask the server first)."""
        if request.extra_body:
            merge_extra(body, request.extra_body)
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        if (self.cache is None and not self.coalesce) or not (
            self.cache_sampled or request.temperature == 0
        ):
            return (await self._fetch(request, url, headers, content))[0]
        key = cache_key(self.scrub(url), self._scrub_bytes(content))
        loop = asyncio.get_running_loop()
        while True:
            if self._cache_io is not None:
                hit = await self._cache_get(key)
                if hit is not None:
                    self.stats.cache_hits += 1
                    return hit
                self.stats.cache_misses += 1
            # A follow-up never waits on another request's flight: it belongs to its own
            # conversation (its verdict's replica and slot), which that flight may be waiting for.
            if not self.coalesce or request.follow_up:
                return await self._fetch_and_store(request, url, headers, content, key)
            with self._flights_lock:
                flight = self._flights.get(key)
                if flight is None:
                    flight = self._flights[key] = _Flight(loop)
                    owner = True
                else:
                    owner = False
            if owner:
                return await self._lead(flight, key, request, url, headers, content)
            if flight.loop is not loop:  # a future cannot be awaited from another loop
                return await self._fetch_and_store(request, url, headers, content, key)
            try:
                response = await asyncio.shield(flight.future)
            except _Abandoned:
                continue  # the request we waited for was cancelled: try again ourselves
            self.stats.coalesced += 1
            return _unbilled(response)

    async def _lead(
        self,
        flight: _Flight,
        key: str,
        request: ChatRequest,
        url: str,
        headers: Mapping[str, str],
        content: bytes,
    ) -> ChatResponse:
        """Send the request others wait for, then hand them its outcome."""
        try:
            response = await self._fetch_and_store(request, url, headers, content, key)
        except BaseException as exc:
            flight.future.set_exception(exc if isinstance(exc, Exception) else _Abandoned())
            flight.future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        else:
            flight.future.set_result(response)
            return response
        finally:
            with self._flights_lock:
                if self._flights.get(key) is flight:
                    del self._flights[key]

    async def _fetch_and_store(
        self,
        request: ChatRequest,
        url: str,
        headers: Mapping[str, str],
        content: bytes,
        key: str,
    ) -> ChatResponse:
        response, raw = await self._fetch(request, url, headers, content)
        if (
            self._cache_io is not None
            and response.finish_reason in _CACHEABLE_FINISH
            and not response.refusal
        ):
            await self._cache_io.set(key, self.scrub(raw.decode("utf-8", "replace")))
        return response

    async def _cache_get(self, key: str) -> ChatResponse | None:
        assert self._cache_io is not None
        text = await self._cache_io.get(key)  # off the loop for a blocking (SQLite) cache
        if text is None:
            return None
        try:
            return _unbilled(self.parse_response(json.loads(text), {}))
        except Exception:  # an entry this version cannot read: treat as a miss
            return None

    def _scrub_bytes(self, content: bytes) -> bytes:
        for secret in self.secrets():
            if secret:
                content = content.replace(secret.encode(), b"***")
        return content

    async def _fetch(
        self, request: ChatRequest, url: str, headers: Mapping[str, str], content: bytes
    ) -> tuple[ChatResponse, bytes]:
        """Send with rate limit and retries; the parsed answer and its body bytes."""
        headers = {**headers, **self._extra_headers, "content-type": "application/json"}
        estimated = estimate_tokens(request) if self._rate.estimates_tokens else 0
        attempts = 0
        raw = b""
        endpoints = self.endpoints
        tried: list[Any] = []

        async def attempt() -> ChatResponse:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                self.stats.retries += 1
            if endpoints is None:
                return await send(url, self._rate)
            if not url.startswith(self.base_url):
                raise ConfigurationError(
                    f"{type(self).__name__}: several base URLs need request URLs under base_url"
                )
            path = url[len(self.base_url) :]
            # The endpoint is chosen when a request may go out, not when it starts waiting: a
            # replica that dies has no queue of requests committed to it.
            await self._limiter.acquire()
            try:
                return await endpoints.call(
                    tried, lambda e: send(e.base_url + path, e.rate), follow_up=request.follow_up
                )
            finally:
                self._limiter.release()

        async def send(url: str, rate: RateLimiter) -> ChatResponse:
            nonlocal raw
            permit = await rate.acquire(estimated)
            try:
                # Signed after any wait for budget or a slot: signatures (SigV4) are time-based.
                signed = self.sign(url, headers, content)
                started = time.perf_counter()
                response = await self._send(url, signed, content)
                self.stats.observe_latency(time.perf_counter() - started)
            except BaseException:
                rate.correct(permit, 0)  # no answer: assume nothing was spent
                raise
            finally:
                rate.release(permit)  # the slot is per attempt: retry sleeps hold none
            response_headers = _header_dict(response)
            snapshot = self.rate_limit_state(response_headers)
            if snapshot is not None:
                self.last_rate_limits = snapshot
                rate.observe(permit, snapshot)
            try:
                result = self._handle(response, response_headers)
            except ProviderError as exc:
                rate.correct(permit, 0)  # refused or failed: nothing was spent
                failure = classify(exc)
                if failure.kind == "rate_limit":  # AIMD backs off on rate limits only
                    self.stats.rate_limited += 1
                    rate.on_rate_limited(permit, failure.retry_after)
                raise
            if result.usage.total_tokens:
                rate.correct(permit, result.usage.total_tokens)
            rate.on_success(permit)
            raw = response.content
            return result

        self.stats.requests += 1
        try:
            with ahead_of_queue(request.follow_up):
                result = await self.retry_policy.call(attempt)
        except ProviderError as exc:
            self.stats.count_failure(exc.kind)
            raise
        self.stats.add_usage(result.usage)
        return (replace(result, retries=attempts - 1) if attempts > 1 else result), raw

    def _handle(
        self, response: httpx.Response, headers: Mapping[str, str] | None = None
    ) -> ChatResponse:
        if headers is None:
            headers = _header_dict(response)
        raw = response.content
        try:
            # From bytes: JSON is UTF-8 (RFC 8259), and httpx's charset sniffing for .text costs
            # more than the parse. pydantic-core's parser (already a dependency) reads a reply
            # with top-20 logprobs per token in about half json.loads' time.
            body = from_json(raw) if raw else None
        except ValueError:
            body = None
        if response.status_code >= 400:
            raise self.error_from_response(response.status_code, body, response.text, headers)
        if body is None:
            # A 200 whose body is not JSON: a proxy cut it or the server broke. Worth a retry.
            raise ServerError(
                "response body is not valid JSON",
                status_code=response.status_code,
                provider=self.provider,
                model=self.model,
                request_id=headers.get(self.request_id_header),
                body=self.scrub(response.text),
            )
        try:
            return self.parse_response(body, headers)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise ServerError(
                f"unexpected response shape ({type(exc).__name__}: {exc})",
                status_code=response.status_code,
                provider=self.provider,
                model=self.model,
                request_id=headers.get(self.request_id_header),
                body=self.scrub(response.text),
            ) from exc

    async def _send(self, url: str, headers: dict[str, str], content: bytes) -> httpx.Response:
        http = self._http_client()
        target = self._parsed_urls.get(url)
        if target is None:
            if len(self._parsed_urls) >= 256:  # per-model URLs are few; never grow unbounded
                self._parsed_urls.clear()
            target = self._parsed_urls[url] = httpx.URL(url)
        try:
            # httpx's timeouts bound each read, not the whole exchange: a server that trickles
            # bytes could hold a slot for ever. A deadline bounds the attempt as a whole
            # (asyncio.timeout where available: wait_for creates a task per request).
            if sys.version_info >= (3, 11):
                async with asyncio.timeout(self.timeout):
                    return await self._post(http, target, headers, content)
            return await asyncio.wait_for(self._post(http, target, headers, content), self.timeout)
        except (httpx.TimeoutException, asyncio.TimeoutError) as exc:
            raise JudgeTimeoutError(
                f"request timed out after {self.timeout:g}s ({type(exc).__name__})",
                provider=self.provider,
                model=self.model,
            ) from exc
        except (httpx.TransportError, OSError) as exc:
            raise TransportError(
                f"{type(exc).__name__}: {self.scrub(str(exc)) or 'connection failed'}",
                provider=self.provider,
                model=self.model,
            ) from exc

    async def _post(
        self, http: httpx.AsyncClient, url: httpx.URL, headers: dict[str, str], content: bytes
    ) -> httpx.Response:
        """POST and read the answer, at most ``max_response_bytes`` of it (decoded: a gzip bomb
        counts at its real size); the connection is closed as soon as the cap is passed."""
        limit = self.max_response_bytes
        response = await http.send(
            http.build_request("POST", url, content=content, headers=headers), stream=True
        )
        try:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise self._too_large(f"{int(declared)} bytes announced")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise self._too_large("more than that sent")
                chunks.append(chunk)
        finally:
            await response.aclose()
        # What Response.aread() would have stored: .content / .text / .json() work as usual.
        response._content = b"".join(chunks)
        return response

    def _too_large(self, what: str) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"the answer is over max_response_bytes={self.max_response_bytes} ({what})",
            provider=self.provider,
            model=self.model,
        )

    def _http_client(self) -> httpx.AsyncClient:
        if self._user_http is not None:
            return self._user_http
        if self._transport is not None:
            # A user transport (e.g. httpx.MockTransport) is not tied to an event loop.
            if self._shared_http is None:
                self._shared_http = httpx.AsyncClient(
                    transport=self._transport, timeout=self.timeout
                )
            return self._shared_http
        # Connection pools belong to one event loop: keep one per loop this client is used from.
        loop = asyncio.get_running_loop()
        http = self._http.get(loop)
        if http is None:
            http = make_http_client(self.max_concurrency, self.timeout, http2=self.http2)
            self._http[loop] = http
            pools, closers = self._http, self._closers  # not self: the client stays collectable

            def forget(loop: asyncio.AbstractEventLoop = loop) -> None:
                # The loop is shutting down and its pool is closed. Drop both entries: the closed
                # pool refers to its loop, so as a weak-keyed value it would keep the loop, the
                # pool and their buffers alive for ever (~0.75 MB per finished asyncio.run).
                pools.pop(loop, None)
                closers.pop(loop, None)

            self._closers[loop] = close_with_loop(loop, http, forget)
        return http

    # -- lifecycle -----------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the connection pools this client opened (never a user-supplied http_client)."""
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - aclose is always awaited
            current = None
        for loop, http in list(self._http.items()):
            if loop is current:
                await http.aclose()
            elif not loop.is_closed() and loop.is_running():
                fut = asyncio.run_coroutine_threadsafe(http.aclose(), loop)
                await asyncio.wrap_future(fut)
        self._http.clear()
        self._closers.clear()
        if self._cache_io is not None:
            self._cache_io.close()  # its threads end; a later call starts them again
        if self._shared_http is not None:
            await self._shared_http.aclose()
            self._shared_http = None
        limiters = (
            [self._rate]
            if self.endpoints is None
            else [e.target.rate for e in self.endpoints.endpoints]
        )
        for limiter in limiters:  # a shared backend's connections and lease refresher
            close = getattr(limiter, "aclose", None)
            if close is not None:
                await close()

    def close(self) -> None:
        """Synchronous :meth:`aclose`."""
        from .._sync import run_sync

        run_sync(self.aclose())

    async def __aenter__(self) -> HTTPClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> HTTPClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"


def _release_dropped(
    pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient],
) -> None:
    """Close the pools of a client that was garbage-collected without ``aclose()``.

    On a running loop (the sync API's portal, ``asyncio.run`` still going) the pool is closed there,
    properly; a loop that is idle or closed cannot run anything, so its pool is released
    synchronously (:func:`~rftjudge.clients._transport.release_pool`).
    """
    for loop, http in list(pools.items()):
        if loop.is_running():
            asyncio.run_coroutine_threadsafe(http.aclose(), loop)
        else:
            release_pool(http)
    pools.clear()


def merge_extra(body: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Merge a judge's ``extra_body`` into a provider body: objects key by key, the rest replaced.

    ``{"options": {"repeat_penalty": 1.1}}`` adds to an Ollama client's own ``options`` instead
    of dropping them.
    """
    for key, value in extra.items():
        current = body.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            body[key] = merged = dict(current)
            merge_extra(merged, value)
        else:
            body[key] = value


def _header_dict(response: httpx.Response) -> dict[str, str]:
    """The response's headers with lower-case names, from the raw bytes.

    httpx's ``Headers.items()`` re-derives the header encoding on every access; reading the raw
    pairs once is several times cheaper per request. UTF-8 where it decodes, else Latin-1 (httpx's
    own fallback order).
    """
    out: dict[str, str] = {}
    for key, value in response.headers.raw:
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            text = value.decode("latin-1")
        out[key.decode("latin-1").lower()] = text
    return out


class _Abandoned(Exception):
    """The request a caller was waiting for was cancelled; the caller sends its own."""


class _Flight:
    """An identical request in flight on ``loop``; ``future`` resolves to its outcome."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[ChatResponse] = loop.create_future()


def _unbilled(response: ChatResponse) -> ChatResponse:
    """A response served without a request of its own: no usage, no retries, no request id."""
    return replace(response, usage=Usage(), retries=0, request_id=None)


def check_structured_output(value: object, modes: tuple[str, ...]) -> None:
    """Every provider names its own structured-output modes; a wrong one fails at construction."""
    if value not in modes:
        raise ConfigurationError(
            f"structured_output must be one of {', '.join(modes)}; got {value!r}"
        )


def status_error_class(status: int, code: str | None = None) -> type[HTTPStatusError]:
    """The exception class for an HTTP error status (provider-neutral part of classification)."""
    if status in (401, 403):
        return AuthenticationError
    if status == 429:
        return QuotaExceededError if code == "insufficient_quota" else RateLimitError
    if status >= 500:
        return ServerError
    if status in (408, 409):
        return HTTPStatusError  # retried by status (see _retry)
    return BadRequestError


def _openai_style_error(body: Any, text: str) -> tuple[str, str | None]:
    """(message, code) from ``{"error": {...}}`` or a flat ``{"message": ...}`` body."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            message = str(err.get("message") or err.get("type") or text[:200])
            code = err.get("code") or err.get("type")
            return message, (str(code) if code is not None else None)
        if isinstance(err, str):
            return err, None
    return (text[:200] or "no response body"), None
