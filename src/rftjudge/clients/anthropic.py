"""Anthropic's Messages API (``POST /v1/messages``), without the vendor SDK.

Structured output is selectable (``structured_output=``) because not every Claude model has the
native form:

- ``"json_schema"`` (default) — ``output_config: {"format": {"type": "json_schema", "schema": S}}``;
  the JSON comes back in a text block (Claude 4.5 and later; GA, no beta header).
- ``"tool"`` — one tool whose ``input_schema`` is the verdict schema, forced with
  ``tool_choice: {"type": "tool", "name": ...}``; the tool input is returned as the response text
  (``json.dumps``), so judges parse it like any other answer. Works on older models too.
- ``"none"`` — the schema is only in the prompt.

Anthropic has no logprobs, no seed and no ``n``: the client says so in its capabilities, and judges
choose a sampling-free strategy. ``max_tokens`` is required by the API, so a request without one is
sent with ``default_max_tokens``. ``thinking`` blocks are skipped; ``stop_reason: refusal`` becomes
``finish_reason="refusal"`` (the judge raises :class:`~rftjudge.RefusalError`), ``max_tokens`` becomes
``"length"`` (:class:`~rftjudge.TruncatedError`), and so does ``pause_turn`` (the turn stopped
before it was complete). Overloaded (529) is a ServerError and is retried.

The verdict schema is sent in Anthropic's dialect (:func:`~rftjudge.clients._schema.anthropic_schema`,
the SDK's transform). Sampling fields are left out for models that reject them
(:mod:`rftjudge.clients._params`), and after a 400 naming one; a model without ``output_config``
steps down to ``"tool"`` (see :mod:`rftjudge.clients._adapt`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any, Literal

from typing_extensions import Unpack

from .._deprecation import legacy_positionals
from .._errors import ConfigurationError, HTTPStatusError, QuotaExceededError
from .._types import ChatRequest, ChatResponse, Usage
from ._adapt import Adaptive
from ._messages import split_system
from ._options import HTTPOptions
from ._params import reasoning_headroom, reasons_by_default, rejected_fields
from ._parts import anthropic_content
from ._ratelimit import RateLimitSnapshot, parse_anthropic_rate_limit_headers
from ._schema import anthropic_schema
from ._secrets import SecretField
from .base import Capabilities, HTTPClient, _openai_style_error, check_structured_output

__all__ = ["ANTHROPIC_VERSION", "AnthropicClient", "AnthropicEffort", "AnthropicStructuredOutput"]

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
AnthropicStructuredOutput = Literal["json_schema", "tool", "none"]
AnthropicEffort = Literal["low", "medium", "high", "xhigh", "max"]
_EFFORTS = ("low", "medium", "high", "xhigh", "max")
_MODES = ("json_schema", "tool", "none")

_STOP = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "refusal",
    "tool_use": "tool_use",
    # A server-tool loop paused mid-turn: what came back is not the finished answer.
    "pause_turn": "length",
}


class AnthropicClient(Adaptive, HTTPClient):
    """Client for Anthropic's Messages API.

    ``api_key`` falls back to ``ANTHROPIC_API_KEY``; ``base_url`` to ``ANTHROPIC_BASE_URL``, then
    ``https://api.anthropic.com``. A key is required for Anthropic's own host only (a proxy given as
    ``base_url`` may authenticate otherwise).

    ``send_temperature``: ``None`` (default) omits ``temperature`` for models known to reject it
    (Opus 4.7 and later, the Claude 5 family: :mod:`rftjudge.clients._params`) and sends it
    otherwise; ``True``/``False`` force either.

    Reasoning judges: ``thinking`` is an int (extended thinking with that ``budget_tokens``, at
    least 1024: Claude 4.5 and earlier, deprecated on the 4.6 models, rejected by Opus 4.7+) or
    ``"adaptive"`` (the model decides: Claude 4.6 and later); ``effort`` (``"low"`` ... ``"max"``)
    goes into ``output_config``. With thinking on, the API takes no ``temperature`` or ``top_k``,
    ``top_p`` only from 0.95 and no forced tool: the client leaves those out
    (``structured_output="tool"`` offers the tool with ``tool_choice: auto``; judges send Anthropic
    no assistant prefill). ``max_tokens`` covers
    thinking and answer together, so the budget (``"adaptive"`` and the always-thinking models:
    ``reasoning_budget``, default 8192) is added to the verdict's ``max_tokens``. Thinking blocks
    are never read for a verdict.

    Other keyword arguments are :class:`~rftjudge.HTTPClient`'s: ``max_concurrency``, ``timeout``,
    ``max_retries``, ``retry_policy``, ``headers``, ``http_client``, ``transport``, ``capabilities`` and
    the throughput options (``limits``, ``cache``, ...).
    """

    provider = "anthropic"
    _api_key = SecretField()  # stored as a SecretStr; the auth header is added per request
    request_id_header = "request-id"
    _mode_ladder = _MODES
    _mode_words = re.compile(
        r"output_config|output_format|output format|structured output|json_schema"
    )

    @legacy_positionals("api_key", "base_url", after=1)
    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        structured_output: AnthropicStructuredOutput = "json_schema",
        send_temperature: bool | None = None,
        default_max_tokens: int = 1024,
        anthropic_version: str = ANTHROPIC_VERSION,
        thinking: int | Literal["adaptive"] | None = None,
        effort: AnthropicEffort | None = None,
        reasoning_budget: int | None = None,
        **http_options: Unpack[HTTPOptions],
    ) -> None:
        check_structured_output(structured_output, _MODES)
        _check_thinking(thinking, effort)
        if not isinstance(default_max_tokens, int) or default_max_tokens < 1:
            raise ConfigurationError(
                f"default_max_tokens must be a positive int (the API requires max_tokens); "
                f"got {default_max_tokens!r}"
            )
        explicit_url = base_url or os.environ.get("ANTHROPIC_BASE_URL")
        key = api_key if api_key is not None else os.environ.get("ANTHROPIC_API_KEY")
        if not key and not explicit_url:
            raise ConfigurationError(
                "AnthropicClient needs an API key: set the ANTHROPIC_API_KEY environment variable "
                "or pass AnthropicClient(api_key=...)."
            )
        self._api_key = key or None
        self.structured_output: AnthropicStructuredOutput = structured_output
        self._init_adaptive(rejected_fields(self.provider, model), send_temperature)
        self.default_max_tokens = default_max_tokens
        self.thinking = thinking
        self.effort = effort
        always = reasons_by_default(self.provider, model)
        headroom = reasoning_headroom(reasoning_budget, reasons=thinking is not None or always)
        if isinstance(thinking, int):
            if always:
                raise ConfigurationError(
                    f"{model} takes no thinking budget (Anthropic refuses budget_tokens on Opus "
                    '4.7 and later): pass thinking="adaptive", with effort= for its depth'
                )
            if reasoning_budget is not None and reasoning_budget < thinking:
                raise ConfigurationError(
                    f"reasoning_budget ({reasoning_budget}) must be at least the thinking budget "
                    f"({thinking}): budget_tokens has to stay below max_tokens"
                )
            headroom = thinking if reasoning_budget is None else headroom
        self.reasoning_budget = headroom
        super().__init__(
            model,
            base_url=explicit_url or ANTHROPIC_BASE_URL,
            **http_options,
        )
        self._url = f"{self.base_url}/v1/messages"
        self._headers = {"anthropic-version": anthropic_version}

    @property
    def thinks(self) -> bool:
        """Whether requests turn thinking on (then sampling fields and forced tools are left out)."""
        return self.thinking is not None

    def default_capabilities(self) -> Capabilities:
        return Capabilities(
            structured_output=self.structured_output != "none",
            logprobs=False,
            max_top_logprobs=0,
            images=True,
        )

    def secrets(self) -> tuple[str, ...]:
        return (self._api_key,) if self._api_key else ()

    def rate_limit_state(self, headers: Mapping[str, str]) -> RateLimitSnapshot | None:
        return parse_anthropic_rate_limit_headers(headers)

    def build_request(self, request: ChatRequest) -> tuple[str, dict[str, str], dict[str, Any]]:
        key = self._api_key
        headers = {**self._headers, "x-api-key": key} if key else self._headers
        return self._url, headers, build_messages_body(self, request)

    def parse_response(self, body: Any, headers: Mapping[str, str]) -> ChatResponse:
        return parse_messages_response(body, request_id=headers.get(self.request_id_header))

    def error_from_response(
        self, status: int, body: Any, text: str, headers: Mapping[str, str]
    ) -> HTTPStatusError:
        # {"type": "error", "error": {"type": "overloaded_error", "message": ...}, "request_id": ...}
        message, code = _openai_style_error(body, text)
        # 402 billing_error: the account is out of credit — waiting will not help.
        cls = QuotaExceededError if status == 402 or code == "billing_error" else None
        error = self.make_status_error(status, message, code, text, headers, cls=cls)
        if error.request_id is None and isinstance(body, dict) and body.get("request_id"):
            error.request_id = str(body["request_id"])
        return error


def build_messages_body(client: AnthropicClient, request: ChatRequest) -> dict[str, Any]:
    """The Messages API body for ``request`` (pure)."""
    system, turns = split_system(request.messages)
    thinks = client.thinks
    body: dict[str, Any] = {
        "model": client.model,
        "max_tokens": (request.max_tokens or client.default_max_tokens) + client.reasoning_budget,
        "messages": [{"role": role, "content": anthropic_content(c)} for role, c in turns],
    }
    if system:
        body["system"] = system
    if thinks:
        body["thinking"] = (
            {"type": "adaptive"}
            if client.thinking == "adaptive"
            else {"type": "enabled", "budget_tokens": client.thinking}
        )
    if request.temperature is not None and "temperature" not in client.dropped and not thinks:
        body["temperature"] = request.temperature
    top_p = request.top_p
    if top_p is not None and "top_p" not in client.dropped and (not thinks or top_p >= 0.95):
        body["top_p"] = top_p
    if client.effort is not None:
        body["output_config"] = {"effort": client.effort}
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    schema = request.output_schema
    if schema is not None and client.structured_output == "json_schema":
        body.setdefault("output_config", {})["format"] = {
            "type": "json_schema",
            "schema": anthropic_schema(schema),
        }
    elif schema is not None and client.structured_output == "tool":
        body["tools"] = [
            {
                "name": request.schema_name,
                "description": "Record your verdict. Call this tool exactly once.",
                "input_schema": dict(schema),
            }
        ]
        # Thinking allows no forced tool: offered, and the prompt asks for it.
        body["tool_choice"] = (
            {"type": "auto"} if thinks else {"type": "tool", "name": request.schema_name}
        )
    return body


def _check_thinking(thinking: object, effort: object) -> None:
    budget_ok = isinstance(thinking, int) and not isinstance(thinking, bool) and thinking >= 1024
    if thinking is not None and thinking != "adaptive" and not budget_ok:
        raise ConfigurationError(
            'thinking must be "adaptive" or an int budget of at least 1024 tokens '
            f"(Anthropic's minimum); got {thinking!r}"
        )
    if effort is not None and effort not in _EFFORTS:
        raise ConfigurationError(f"effort must be one of {', '.join(_EFFORTS)}; got {effort!r}")


def parse_messages_response(body: Any, *, request_id: str | None = None) -> ChatResponse:
    """A ChatResponse from a Messages API body (pure): text blocks joined, thinking skipped, a
    forced tool's input returned as JSON text."""
    texts: list[str] = []
    tool_input: Any = None
    for block in body["content"]:
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use" and tool_input is None:
            tool_input = block.get("input")
        # thinking / redacted_thinking / server tool blocks carry no verdict
    stop = body.get("stop_reason")
    refusal = None
    if stop == "refusal":
        details = body.get("stop_details") or {}
        refusal = str(details.get("explanation") or details.get("category") or "refusal")
    usage = body.get("usage") or {}
    return ChatResponse(
        text=json.dumps(tool_input, ensure_ascii=False)
        if tool_input is not None
        else "".join(texts),
        finish_reason=_STOP.get(stop or "", stop),
        usage=Usage(
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            requests=1,
        ),
        refusal=refusal,
        request_id=request_id,
        model=body.get("model"),
    )
