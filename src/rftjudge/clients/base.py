"""The client contract judges depend on, and the one HTTP send shell every provider shares.

A judge only needs :class:`Client`: ``await client.complete(ChatRequest) -> ChatResponse``. Anything
with that method (and ``model`` / ``provider`` / ``capabilities`` attributes) works as a judge client,
including user-written ones.

:class:`HTTPClient` implements the contract for HTTP APIs. A provider subclass supplies only pure
functions — :meth:`HTTPClient.build_request` (ChatRequest → URL, headers, JSON body),
:meth:`HTTPClient.parse_response` (JSON → ChatResponse) and, when its error bodies differ,
:meth:`HTTPClient.error_from_response` — and this shell does the rest once: concurrency limit,
retries, timeouts, translation of transport errors, usage counters, connection pools per event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol, runtime_checkable

import httpx

from .._errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    HTTPStatusError,
    JudgeTimeoutError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    TransportError,
)
from .._limits import ConcurrencyLimiter
from .._types import ChatRequest, ChatResponse
from ._headers import parse_retry_after
from ._retry import RetryPolicy
from ._stats import ClientStats
from ._transport import make_http_client

__all__ = ["Capabilities", "Client", "HTTPClient"]

logger = logging.getLogger("rftjudge")


@dataclass(frozen=True)
class Capabilities:
    """What a client's provider can do; judges pick their strategy from it."""

    structured_output: bool = True
    logprobs: bool = False
    max_top_logprobs: int = 0


@runtime_checkable
class Client(Protocol):
    """What a judge needs from a client (attributes may be plain, class-level or properties)."""

    @property
    def model(self) -> str: ...

    @property
    def provider(self) -> str: ...

    @property
    def capabilities(self) -> Capabilities: ...

    async def complete(self, request: ChatRequest) -> ChatResponse: ...


class HTTPClient(ABC):
    """Base of rftjudge's own httpx clients (see the module docstring)."""

    provider: ClassVar[str] = "http"
    request_id_header: ClassVar[str] = "x-request-id"

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        max_concurrency: int = 32,
        timeout: float = 60.0,
        max_retries: int = 3,
        retry_policy: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        capabilities: Capabilities | None = None,
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
        if http_client is not None and transport is not None:
            raise ConfigurationError("pass either http_client or transport, not both")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.max_concurrency = max_concurrency
        self.timeout = float(timeout)
        try:
            self.retry_policy = retry_policy or RetryPolicy(max_retries=max_retries)
        except ValueError as exc:
            raise ConfigurationError(f"{type(self).__name__}: {exc}") from None
        self.capabilities = capabilities or self.default_capabilities()
        self.stats = ClientStats()
        self._limiter = ConcurrencyLimiter(max_concurrency)
        self._extra_headers = dict(headers or {})
        self._user_http = http_client
        self._transport = transport
        self._http: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._shared_http: httpx.AsyncClient | None = None

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
        return cls(
            self.scrub(message),
            status_code=status,
            provider=self.provider,
            model=self.model,
            request_id=headers.get(self.request_id_header),
            body=self.scrub(text),
            error_code=code,
            retry_after=parse_retry_after(headers),
            headers=headers,
        )

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
        """Send one request with concurrency limit and retries; raise a ProviderError on failure."""
        url, headers, body = self.build_request(request)
        if request.extra_body:
            body.update(request.extra_body)
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {**headers, **self._extra_headers, "content-type": "application/json"}
        attempts = 0

        async def attempt() -> ChatResponse:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                self.stats.retries += 1
            signed = self.sign(url, headers, content)
            async with self._limiter.slot():
                started = time.perf_counter()
                response = await self._send(url, signed, content)
                self.stats.observe_latency(time.perf_counter() - started)
            return self._handle(response)

        self.stats.requests += 1
        try:
            result = await self.retry_policy.call(attempt)
        except ProviderError as exc:
            self.stats.count_failure(exc.kind)
            raise
        self.stats.add_usage(result.usage)
        return replace(result, retries=attempts - 1) if attempts > 1 else result

    def _handle(self, response: httpx.Response) -> ChatResponse:
        headers = {k.lower(): v for k, v in response.headers.items()}
        text = response.text
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None
        if response.status_code >= 400:
            raise self.error_from_response(response.status_code, body, text, headers)
        if body is None:
            # A 200 whose body is not JSON: a proxy cut it or the server broke. Worth a retry.
            raise ServerError(
                "response body is not valid JSON",
                status_code=response.status_code,
                provider=self.provider,
                model=self.model,
                request_id=headers.get(self.request_id_header),
                body=self.scrub(text),
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
                body=self.scrub(text),
            ) from exc

    async def _send(self, url: str, headers: dict[str, str], content: bytes) -> httpx.Response:
        http = self._http_client()
        try:
            # httpx's timeouts bound each read, not the whole exchange: a server that trickles
            # bytes could hold a slot for ever. wait_for bounds the attempt as a whole.
            return await asyncio.wait_for(
                http.post(url, content=content, headers=headers), self.timeout
            )
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
            http = make_http_client(self.max_concurrency, self.timeout)
            self._http[loop] = http
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
        if self._shared_http is not None:
            await self._shared_http.aclose()
            self._shared_http = None

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
