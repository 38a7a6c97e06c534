"""Google's Gemini API (``POST {base}/models/{model}:generateContent``), without the vendor SDK.

Structured output is ``responseMimeType: application/json`` + ``responseJsonSchema`` (plain JSON
Schema; the older ``responseSchema`` takes an OpenAPI subset). Parts with ``thought: true`` are the
model's reasoning and are skipped. A blocked prompt comes back with no candidates and a
``promptFeedback.blockReason``: it is returned as ``finish_reason="content_filter"`` with the reason
in ``refusal``, so the judge raises :class:`~rftjudge.RefusalError` instead of a parse failure.

Every ``finishReason`` of the API has its outcome: ``MAX_TOKENS`` and ``CONTINUATION`` are
truncations; the content filters (``SAFETY``, ``RECITATION``, ``BLOCKLIST``, ``PROHIBITED_CONTENT``,
``SPII``, ``LANGUAGE``, ``MODEL_ARMOR``, ``ESCALATION``, ``PUP_LIMITED_DISABLED`` and the image ones)
are refusals; a failed generation (``MALFORMED_FUNCTION_CALL``, ``UNEXPECTED_TOOL_CALL``,
``TOO_MANY_TOOL_CALLS``, ``MISSING_THOUGHT_SIGNATURE``, ``MALFORMED_RESPONSE``, ``OTHER`` …) is
retried like a 5xx. The schema is sent in Gemini's dialect
(:func:`~rftjudge.clients._schema.gemini_schema`).

Logprobs (``responseLogprobs`` + ``logprobs``) are rejected by most 2.5+ models with a 400, so they
are opt-in: ``GeminiClient(logprobs=True)`` advertises them to judges.

Errors are ``{"error": {code, message, status, details}}``. A 429 may carry
``google.rpc.RetryInfo.retryDelay`` (``"12s"``), which becomes the error's ``retry_after`` (honoured by
the retry policy); a 429 whose ``QuotaFailure`` names a per-day quota is a
:class:`~rftjudge.QuotaExceededError` and is not retried; a 400 ``API_KEY_INVALID`` is an
:class:`~rftjudge.AuthenticationError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote

from typing_extensions import Unpack

from .._deprecation import legacy_positionals
from .._errors import AuthenticationError, ConfigurationError, HTTPStatusError, QuotaExceededError
from .._types import ChatRequest, ChatResponse, TokenLogprob, Usage
from ._adapt import Adaptive
from ._messages import failed_generation, split_system
from ._options import HTTPOptions
from ._params import reasoning_headroom
from ._parts import gemini_parts
from ._schema import gemini_schema
from ._secrets import SecretField
from .base import Capabilities, HTTPClient, check_structured_output

__all__ = ["GeminiClient", "GeminiStructuredOutput", "parse_retry_delay"]

GEMINI_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
GeminiStructuredOutput = Literal["json_schema", "json", "none"]
_MODES = ("json_schema", "json", "none")
_MAX_TOP_LOGPROBS = 20
# Gemini 2.5 and later think unless told not to (and 2.5 Pro cannot be told).
_THINKS_BY_DEFAULT = re.compile(r"gemini-(?:2\.5|[3-9])")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")

_FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "LANGUAGE",
        "MODEL_ARMOR",
        "ESCALATION",  # filtered by an escalation rule
        # the account is limited for Prohibited Use Policy violations: no answer will come, and a
        # refusal (abstain, not retried) is the outcome that spends nothing more
        "PUP_LIMITED_DISABLED",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)
_FINISH = {
    "STOP": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
    "MAX_TOKENS": "length",
    "CONTINUATION": "length",  # the per-request token limit, generation not complete
    **{k: "content_filter" for k in _FILTERED},
}
# The generation went wrong without a verdict or a refusal in it: retried like a 5xx.
_FAILED = frozenset(
    {
        "OTHER",
        "MALFORMED_FUNCTION_CALL",
        "UNEXPECTED_TOOL_CALL",
        "TOO_MANY_TOOL_CALLS",
        "MISSING_THOUGHT_SIGNATURE",
        "MALFORMED_RESPONSE",
        "NO_IMAGE",
        "IMAGE_OTHER",
    }
)


class GeminiClient(Adaptive, HTTPClient):
    """Client for the Gemini API (Google AI Studio keys).

    ``api_key`` falls back to ``GEMINI_API_KEY``, then ``GOOGLE_API_KEY``; it is sent in the
    ``x-goog-api-key`` header (never in the URL, where proxies log it). ``base_url`` replaces
    ``https://generativelanguage.googleapis.com/v1beta``; with it, a key is optional.

    ``thinking_budget`` (2.5 models: ``0`` turns thinking off where allowed, ``-1`` dynamic) and
    ``thinking_level`` (Gemini 3) go into ``thinkingConfig``. Thinking tokens count against
    ``maxOutputTokens``, so the client adds room for them to the verdict's ``max_tokens``: a positive
    ``thinking_budget`` itself, else ``reasoning_budget`` (``None``: 8192 for models that think by
    default — Gemini 2.5 and later — unless ``thinking_budget=0``). Thought parts are never read
    for a verdict; ``thoughtsTokenCount`` is counted as output (billed so) and as
    ``Usage.reasoning_tokens``.

    Other keyword arguments are :class:`~rftjudge.HTTPClient`'s (``max_concurrency``, ``timeout``,
    ``max_retries``, ``retry_policy``, ``headers``, ``http_client``, ``transport``, ``capabilities``,
    the throughput options).
    """

    provider = "gemini"
    _api_key = SecretField()  # stored as a SecretStr; the auth header is added per request
    _mode_ladder = _MODES
    _mode_words = re.compile(
        r"responsejsonschema|response_json_schema|responsemimetype|response_mime_type|"
        r"response_schema|responseschema"
    )

    @legacy_positionals("api_key", "base_url", after=1)
    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        structured_output: GeminiStructuredOutput = "json_schema",
        logprobs: bool = False,
        thinking_budget: int | None = None,
        thinking_level: str | None = None,
        reasoning_budget: int | None = None,
        **http_options: Unpack[HTTPOptions],
    ) -> None:
        check_structured_output(structured_output, _MODES)
        if thinking_budget is not None and thinking_level is not None:
            raise ConfigurationError("pass thinking_budget or thinking_level, not both")
        key = api_key
        if key is None:
            key = os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
        if not key and not base_url:
            raise ConfigurationError(
                "GeminiClient needs an API key: set the GEMINI_API_KEY (or GOOGLE_API_KEY) "
                "environment variable or pass GeminiClient(api_key=...)."
            )
        self._api_key = key or None
        self.structured_output: GeminiStructuredOutput = structured_output
        self.logprobs = bool(logprobs)
        self.thinking_budget = thinking_budget
        self.thinking_level = thinking_level
        if thinking_budget is not None and thinking_budget > 0 and reasoning_budget is None:
            self.reasoning_budget = thinking_budget
        else:
            thinks = thinking_budget != 0 and (
                thinking_level is not None or _THINKS_BY_DEFAULT.search(model.lower()) is not None
            )
            self.reasoning_budget = reasoning_headroom(reasoning_budget, reasons=thinks)
        super().__init__(
            model,
            base_url=base_url or GEMINI_BASE_URL,
            **http_options,
        )
        # "gemini-2.5-flash", "models/gemini-2.5-flash" and "tunedModels/x" name the same kind of
        # resource; a bare id lives under models/.
        resource = model if "/" in model else f"models/{model}"
        self._url = f"{self.base_url}/{quote(resource, safe='/')}:generateContent"
        self._init_adaptive()

    def default_capabilities(self) -> Capabilities:
        return Capabilities(
            structured_output=self.structured_output != "none",
            logprobs=self.logprobs,
            max_top_logprobs=_MAX_TOP_LOGPROBS if self.logprobs else 0,
            images=True,
        )

    def secrets(self) -> tuple[str, ...]:
        return (self._api_key,) if self._api_key else ()

    def build_request(self, request: ChatRequest) -> tuple[str, dict[str, str], dict[str, Any]]:
        system, turns = split_system(request.messages)
        body: dict[str, Any] = {
            "contents": [
                {"role": "model" if role == "assistant" else "user", "parts": gemini_parts(c)}
                for role, c in turns
            ]
        }
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        config: dict[str, Any] = {}
        if request.temperature is not None and "temperature" not in self.dropped:
            config["temperature"] = request.temperature
        if request.max_tokens is not None:
            config["maxOutputTokens"] = request.max_tokens + self.reasoning_budget
        if request.seed is not None and "seed" not in self.dropped:
            config["seed"] = request.seed
        if request.top_p is not None and "top_p" not in self.dropped:
            config["topP"] = request.top_p
        if request.stop:
            config["stopSequences"] = list(request.stop)
        if request.output_schema is not None and self.structured_output != "none":
            config["responseMimeType"] = "application/json"
            if self.structured_output == "json_schema":
                config["responseJsonSchema"] = gemini_schema(request.output_schema)
        if request.logprobs:
            config["responseLogprobs"] = True
            if request.top_logprobs:
                config["logprobs"] = min(request.top_logprobs, _MAX_TOP_LOGPROBS)
        if self.thinking_budget is not None:
            config["thinkingConfig"] = {"thinkingBudget": self.thinking_budget}
        elif self.thinking_level is not None:
            config["thinkingConfig"] = {"thinkingLevel": self.thinking_level}
        if config:
            body["generationConfig"] = config
        key = self._api_key
        return self._url, ({"x-goog-api-key": key} if key else {}), body

    def parse_response(self, body: Any, headers: Mapping[str, str]) -> ChatResponse:
        usage = _usage(body.get("usageMetadata") or {})
        candidates = body.get("candidates") or []
        if not candidates:
            feedback = body.get("promptFeedback") or {}
            reason = feedback.get("blockReason")
            if reason is None:
                raise ValueError("no candidates and no promptFeedback.blockReason")
            message = feedback.get("blockReasonMessage") or ""
            return ChatResponse(
                text="",
                finish_reason="content_filter",
                usage=usage,
                refusal=f"prompt blocked ({reason}){': ' + message if message else ''}",
                request_id=body.get("responseId"),
                model=body.get("modelVersion"),
            )
        candidate = candidates[0]
        parts = (candidate.get("content") or {}).get("parts") or []
        text = "".join(
            str(part["text"]) for part in parts if "text" in part and not part.get("thought")
        )
        finish = candidate.get("finishReason")
        if finish in _FAILED:
            raise failed_generation(
                finish,
                provider=self.provider,
                model=self.model,
                headers={"x-request-id": body.get("responseId") or ""},
                request_id_header="x-request-id",
            )
        return ChatResponse(
            text=text,
            finish_reason=_FINISH.get(finish or "", finish.lower() if finish else None),
            usage=usage,
            logprobs=_parse_logprobs(candidate.get("logprobsResult")),
            request_id=body.get("responseId"),
            model=body.get("modelVersion"),
        )

    def error_from_response(
        self, status: int, body: Any, text: str, headers: Mapping[str, str]
    ) -> HTTPStatusError:
        err = body.get("error") if isinstance(body, dict) else None
        if not isinstance(err, dict):
            return super().error_from_response(status, body, text, headers)
        message = str(err.get("message") or err.get("status") or text[:200])
        code = str(err["status"]) if err.get("status") else None
        details = [d for d in err.get("details") or () if isinstance(d, dict)]
        cls: type[HTTPStatusError] | None = None
        if any(
            _detail_type(d) == "ErrorInfo" and d.get("reason") == "API_KEY_INVALID" for d in details
        ):
            cls = AuthenticationError  # Gemini answers a bad key with 400 INVALID_ARGUMENT
        elif status == 429 and _daily_quota(details):
            cls = QuotaExceededError
        error = self.make_status_error(status, message, code, text, headers, cls=cls)
        for detail in details:
            if _detail_type(detail) == "RetryInfo":
                delay = parse_retry_delay(detail.get("retryDelay"))
                if delay is not None:
                    error.retry_after = delay
        return error


def parse_retry_delay(value: Any) -> float | None:
    """Seconds from a protobuf Duration in JSON form (``"12s"``, ``"0.5s"``), else None."""
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value)
    return float(match.group(1)) if match else None


def _detail_type(detail: Mapping[str, Any]) -> str:
    # "@type": "type.googleapis.com/google.rpc.RetryInfo" → "RetryInfo"
    return str(detail.get("@type") or "").rsplit(".", 1)[-1]


def _daily_quota(details: list[dict[str, Any]]) -> bool:
    for detail in details:
        if _detail_type(detail) != "QuotaFailure":
            continue
        for violation in detail.get("violations") or ():
            if "PerDay" in str(violation.get("quotaId") or ""):
                return True
    return False


def _usage(meta: Mapping[str, Any]) -> Usage:
    # Thinking tokens are billed as output: count them with the answer.
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    return Usage(
        input_tokens=int(meta.get("promptTokenCount") or 0),
        output_tokens=int(meta.get("candidatesTokenCount") or 0) + thoughts,
        requests=1,
        cached_input_tokens=int(meta.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
    )


def _parse_logprobs(data: Any) -> tuple[TokenLogprob, ...] | None:
    """``logprobsResult`` → TokenLogprobs: ``chosenCandidates[i]`` with ``topCandidates[i]``."""
    if not isinstance(data, dict):
        return None
    chosen = data.get("chosenCandidates")
    if not isinstance(chosen, list):
        return None
    tops = data.get("topCandidates") or []
    result = []
    for i, item in enumerate(chosen):
        top = (tops[i].get("candidates") or []) if i < len(tops) else []
        result.append(
            TokenLogprob(
                token=str(item.get("token", "")),
                logprob=float(item.get("logProbability", float("-inf"))),
                top=tuple(
                    (str(t.get("token", "")), float(t.get("logProbability", float("-inf"))))
                    for t in top
                ),
            )
        )
    return tuple(result)
