"""The exception tree of rftjudge.

Every error rftjudge raises is a ``JudgeError``; the branches group errors by what a caller can do
about them::

    JudgeError
    ├── ConfigurationError        bad arguments, criteria, templates, missing API key (fix the code)
    ├── ProviderError             the judge provider could not give an answer
    │   ├── TransportError        connection refused / reset, DNS, TLS (retried)
    │   │   ├── RateLimitBackendError  the shared budget's store (Redis) failed (retried)
    │   │   └── JudgeTimeoutError the request timed out (retried per request)
    │   │       └── DeadlineExceededError  a whole-batch deadline ran out first (never retried)
    │   └── HTTPStatusError       the provider answered with a non-2xx status
    │       ├── BadRequestError        400/404/413/422: the request is wrong (never retried)
    │       ├── AuthenticationError    401/403: key missing, wrong or without access (never retried)
    │       ├── RateLimitError         429: slow down (retried, honouring Retry-After)
    │       │   └── QuotaExceededError 429 ``insufficient_quota`` / daily quota: never retried
    │       └── ServerError            5xx, 529 overloaded (retried)
    ├── VerdictError              the judge answered, but not with a usable verdict
    │   ├── ParseError            no valid JSON verdict after the bounded re-asks
    │   ├── RefusalError          the judge refused or a content filter stopped it
    │   └── TruncatedError        the answer hit the token limit before the verdict was complete
    └── InputError                one item's input cannot be judged (kind "input")
        ├── ImageError            unreadable/unsupported/oversized image, URL where bytes are needed
        ├── TrajectoryError       malformed tool-call JSON, no assistant turn
        └── ContextLengthError    over the judge's max_context_tokens even with tool outputs clipped

Messages carry evidence (provider, model, status, request id, a clipped body), never secrets: clients
scrub API keys out of anything they put into an error.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ContextLengthError",
    "DeadlineExceededError",
    "HTTPStatusError",
    "ImageError",
    "InputError",
    "JudgeError",
    "JudgeTimeoutError",
    "ParseError",
    "ProviderError",
    "QuotaExceededError",
    "RateLimitBackendError",
    "RateLimitError",
    "RefusalError",
    "ResponseTooLargeError",
    "ServerError",
    "TrajectoryError",
    "TransportError",
    "TruncatedError",
    "VerdictError",
]

_BODY_CLIP = 500


class JudgeError(Exception):
    """Root of every error rftjudge raises."""

    @property
    def kind(self) -> str:
        """A short stable label for counters and logs (``"rate_limit"``, ``"parse"``, ...)."""
        return _KINDS.get(type(self), type(self).__name__)


class ConfigurationError(JudgeError, ValueError):
    """The judge, client or template is configured wrongly; raised at construction where possible."""


class ProviderError(JudgeError):
    """The provider could not give an answer."""

    def __init__(self, message: str, *, provider: str = "", model: str = "") -> None:
        self.provider = provider
        self.model = model
        prefix = f"[{provider}:{model}] " if provider else ""
        super().__init__(prefix + message)


class TransportError(ProviderError):
    """No HTTP response arrived: connection refused, reset, DNS or TLS failure."""


class RateLimitBackendError(TransportError):
    """The shared rate-limit backend (Redis) could not be reached.

    Retried like a transport error, but no fault of the judge endpoint: routers do not eject for it.
    """


class JudgeTimeoutError(TransportError):
    """A request timed out, or a whole-batch deadline ran out."""


class DeadlineExceededError(JudgeTimeoutError):
    """The batch's deadline passed before this item was judged; its work was cancelled.

    Raised (or turned into the ``on_error`` outcome) per unfinished item, so that one slow item
    cannot stall a training step.
    """


class ResponseTooLargeError(ProviderError):
    """The provider's answer was longer than the client's ``max_response_bytes``; not retried.

    A judge answer is a few KB: megabytes are a broken or hostile server, and buffering them (or
    an endless stream) would cost the training job its memory.
    """


class HTTPStatusError(ProviderError):
    """The provider answered with a non-success status.

    Attributes keep the evidence: ``status_code``, ``request_id`` (from the provider's request-id
    header), ``body`` (clipped), ``error_code`` (the provider's own code, e.g. ``insufficient_quota``),
    ``retry_after`` (seconds the provider asked us to wait, if any).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        provider: str = "",
        model: str = "",
        request_id: str | None = None,
        body: str = "",
        error_code: str | None = None,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status_code = status_code
        self.request_id = request_id
        self.body = body[:_BODY_CLIP]
        self.error_code = error_code
        self.retry_after = retry_after
        self.headers = dict(headers or {})
        detail = f"HTTP {status_code}: {message}"
        if request_id:
            detail += f" (request id {request_id})"
        super().__init__(detail, provider=provider, model=model)


class BadRequestError(HTTPStatusError):
    """400/404/413/422 and similar: the request itself is wrong; retrying cannot help."""


class AuthenticationError(HTTPStatusError):
    """401/403: the API key is missing, wrong, or lacks access to the model."""


class RateLimitError(HTTPStatusError):
    """429: the provider asks us to slow down."""


class QuotaExceededError(RateLimitError):
    """429 that will not clear by waiting (``insufficient_quota``, a daily quota): never retried."""


class ServerError(HTTPStatusError):
    """5xx (and Anthropic's 529 overloaded): the provider failed; retried with backoff."""


class VerdictError(JudgeError):
    """The judge answered but the answer is not a usable verdict.

    ``raw`` holds the judge's text so that failures can be inspected and counted.
    """

    def __init__(self, message: str, *, raw: str = "") -> None:
        self.raw = raw
        super().__init__(message)


class ParseError(VerdictError):
    """No valid verdict could be parsed, after the bounded re-asks."""


class RefusalError(VerdictError):
    """The judge refused to answer, or a content filter stopped it."""


class TruncatedError(VerdictError):
    """The judge ran out of tokens (``finish_reason: length``) before finishing the verdict."""


class InputError(JudgeError):
    """One item's input cannot be judged (unreadable image, malformed trajectory, too long for the
    judge's context): a per-item failure, counted by kind, never thrown through the trainer."""


class ImageError(InputError):
    """An image part is unreadable, of an unsupported format, too large, or a URL where the
    provider needs the bytes."""


class TrajectoryError(InputError):
    """A trajectory cannot be rendered: malformed tool-call arguments, no assistant turn."""


class ContextLengthError(InputError):
    """The request would not fit the judge's ``max_context_tokens``, even with tool outputs
    clipped: the item abstains (kind ``"context"``) instead of being cut where it is judged."""


_KINDS: dict[type[JudgeError], str] = {
    JudgeError: "error",
    ConfigurationError: "configuration",
    ProviderError: "provider",
    TransportError: "transport",
    RateLimitBackendError: "transport",
    ResponseTooLargeError: "response_too_large",
    JudgeTimeoutError: "timeout",
    DeadlineExceededError: "deadline",
    HTTPStatusError: "http_status",
    BadRequestError: "bad_request",
    AuthenticationError: "authentication",
    RateLimitError: "rate_limit",
    QuotaExceededError: "quota",
    ServerError: "server",
    VerdictError: "verdict",
    ParseError: "parse",
    RefusalError: "refusal",
    TruncatedError: "truncated",
    InputError: "input",
    ImageError: "image",
    TrajectoryError: "trajectory",
    ContextLengthError: "context",
}
