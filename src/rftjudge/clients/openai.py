"""OpenAI Chat Completions and every OpenAI-compatible server (vLLM, SGLang, llama.cpp, Ollama /v1).

The servers agree on the endpoint but not on structured output, so the mode is selectable
(``structured_output=``):

- ``"json_schema"`` — ``response_format: {"type": "json_schema", "json_schema": {name, strict, schema}}``:
  OpenAI, vLLM, SGLang, Ollama /v1, llama.cpp's ``llama-server``.
- ``"json_object_schema"`` — ``{"type": "json_object", "schema": S}``: llama-cpp-python's server, which
  rejects ``json_schema``.
- ``"json_object"`` — plain JSON mode, schema only in the prompt.
- ``"none"`` — prompt-only; the verdict is parsed out of free text.

``server=`` implies its mode (``json_object_schema`` for llama-cpp-python, ``json_schema`` for the
others), the same as a provider spec (``rftjudge.client("llama-cpp-python:M@URL")``). A server that
rejects the mode (a 4xx/5xx naming ``response_format`` or the schema) makes the client step down one
mode, once, and stay there (logged, counted in ``client.adaptations``; see
:mod:`rftjudge.clients._adapt`). Sampling fields that a model rejects are left out: known models by
the table in :mod:`rftjudge.clients._params`, others after their first 400 naming the field.

The token limit is sent as ``max_completion_tokens`` to OpenAI itself (its reasoning models reject
``max_tokens``) and as ``max_tokens`` elsewhere (several servers silently ignore
``max_completion_tokens``, leaving generation unbounded).

``server=`` names the server family behind ``base_url`` (``"vllm"``, ``"sglang"``, ``"llamacpp"``
for llama.cpp's ``llama-server``, ``"llama-cpp-python"``, ``"ollama"``, ``"openai"``). vLLM, SGLang
and llama-server can continue a prefilled assistant turn with constrained choices, so for them the
client advertises ``Capabilities.prefill_choice`` (override with ``prefill_choice=``) and judges read
exact score distributions; choice requests go out in each family's shape (see
:mod:`rftjudge.clients._prefill`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlparse

from typing_extensions import Unpack

from .._deprecation import legacy_positionals
from .._errors import ConfigurationError
from .._types import ChatRequest, ChatResponse, LazyLogprobs, TokenLogprob, Usage
from ._adapt import Adaptive
from ._llamacpp import LlamaCpp
from ._messages import failed_generation
from ._options import HTTPOptions
from ._params import reasoning_headroom, reasons_by_default, rejected_fields
from ._parts import openai_content
from ._prefill import PREFILL_SERVERS, SERVERS, ServerFamily, choice_fields, choices_of
from ._routing import base_urls
from ._schema import openai_schema
from ._secrets import SecretField
from .base import Capabilities, HTTPClient, check_structured_output

__all__ = ["REASONING_EFFORTS", "OpenAIClient", "ReasoningEffort", "StructuredOutputMode"]

StructuredOutputMode = Literal["json_schema", "json_object_schema", "json_object", "none"]
_MODES = ("json_schema", "json_object_schema", "json_object", "none")
# The mode each server family takes; a family not listed takes json_schema.
SERVER_MODES: Mapping[str, StructuredOutputMode] = {"llama-cpp-python": "json_object_schema"}
OPENAI_BASE_URL = "https://api.openai.com/v1"
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
REASONING_EFFORTS: tuple[str, ...] = ("none", "minimal", "low", "medium", "high", "xhigh")
_SERVER_EFFORTS = ("low", "medium", "high")  # OpenAI's original three; newer ones unchecked there

_FINISH = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
}
# SGLang ends a request it gave up on (scheduler abort, client gone, over length) with "abort" and
# a 200: a server failure to retry, not a verdict to parse.
_FAILED = frozenset({"abort"})


def _is_openai_host(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host == "api.openai.com"


class OpenAIClient(LlamaCpp, Adaptive, HTTPClient):
    """Client for OpenAI's Chat Completions API and OpenAI-compatible servers.

    ``api_key`` falls back to ``OPENAI_API_KEY``; ``base_url`` to ``OPENAI_BASE_URL``, then
    ``https://api.openai.com/v1``. A key is required only for OpenAI's own host, so local servers
    (vLLM, llama.cpp, Ollama) work without one.

    ``base_url`` may list several replicas of the same model (``[url1, url2, url3]``): each request
    goes to the least-loaded healthy one, failing replicas are ejected and probed back, and
    ``max_concurrency`` / ``limits`` are split evenly between them (see
    :mod:`rftjudge.clients.pool`).

    Reasoning judges: ``reasoning_effort`` is sent as is (OpenAI's reasoning models; vLLM and SGLang
    take it too); ``enable_thinking`` turns a Qwen3-style chat template's thinking on or off
    (``chat_template_kwargs``, OpenAI-compatible servers only). Thinking counts against the token
    limit, so ``reasoning_budget`` tokens are added to each verdict request's ``max_tokens``
    (``None``: 8192 when the model reasons — an effort other than ``"none"``, thinking on, or one of
    OpenAI's and Azure's reasoning models — else 0). The verdict is read from ``content`` only; a
    server's ``reasoning_content`` / ``reasoning`` is never parsed. OpenAI's reasoning models return
    no logprobs, so for them ``logprobs`` defaults to False. A client that reasons reads no exact
    distributions unless ``prefill_choice=True``: a read continues the written answer without its
    thinking. vLLM and SGLang take ``reasoning_effort`` low, medium or high.

    ``slots`` (llama.cpp's ``llama-server`` only: its ``--parallel``, or ``"auto"`` to ask its
    ``/props`` on the first request): the client pins each verdict
    and its follow-ups (exact reads, re-asks) to one server slot (``id_slot``) that no other
    request uses until they are done, so the follow-ups find the verdict in that slot's prefix
    cache. A request already carrying ``id_slot`` (``extra_body``) keeps it.

    Throughput options (``limits``, ``cache``, ``cache_sampled``, ``coalesce``, ``prices``,
    ``http2``) are those of :class:`~rftjudge.HTTPClient`; see the README's "Throughput" section.
    """

    provider = "openai"
    _api_key = SecretField()  # stored as a SecretStr; auth headers are built per request
    _mode_ladder: tuple[str, ...] = _MODES  # a rejected mode steps down to the next (_adapt)
    _mode_words = re.compile(r"response_format|json_schema|json_object|schema|structured output")

    @legacy_positionals("base_url", "api_key", after=1)
    def __init__(
        self,
        model: str,
        *,
        base_url: str | Sequence[str] | None = None,
        api_key: str | None = None,
        structured_output: StructuredOutputMode | None = None,
        logprobs: bool | None = None,
        max_tokens_field: Literal["auto", "max_tokens", "max_completion_tokens"] = "auto",
        strict_schema: bool = True,
        organization: str | None = None,
        server: ServerFamily | None = None,
        prefill_choice: bool | None = None,
        reasoning_effort: ReasoningEffort | None = None,
        enable_thinking: bool | None = None,
        reasoning_budget: int | None = None,
        slots: int | Literal["auto"] | None = None,
        **http_options: Unpack[HTTPOptions],
    ) -> None:
        if reasoning_effort is not None and reasoning_effort not in REASONING_EFFORTS:
            raise ConfigurationError(
                f"reasoning_effort must be one of {', '.join(REASONING_EFFORTS)}; "
                f"got {reasoning_effort!r}"
            )
        if server is not None and server not in SERVERS:
            raise ConfigurationError(f"server must be one of {', '.join(SERVERS)}; got {server!r}")
        if prefill_choice and server not in PREFILL_SERVERS:
            raise ConfigurationError(
                "prefill_choice=True needs a server that continues a prefilled assistant turn "
                f"with constrained choices: server= one of {', '.join(sorted(PREFILL_SERVERS))}"
            )
        self.server: ServerFamily | None = server
        self._prefill_choice = (
            (server in PREFILL_SERVERS) if prefill_choice is None else prefill_choice
        )
        if structured_output is None:
            structured_output = SERVER_MODES.get(server or "", "json_schema")
        check_structured_output(structured_output, _MODES)
        resolved = base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL
        urls = base_urls(resolved, type(self).__name__)
        self._init_llamacpp(server, slots, urls)
        resolved_url = urls[0]
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        if not key and any(_is_openai_host(u) for u in urls):
            raise ConfigurationError(
                "OpenAIClient needs an API key for api.openai.com: set the OPENAI_API_KEY "
                "environment variable or pass OpenAIClient(api_key=...). For a local "
                "OpenAI-compatible server pass base_url=... (no key needed)."
            )
        self._api_key = key or None
        self.structured_output: StructuredOutputMode = structured_output
        self.strict_schema = strict_schema
        if max_tokens_field == "auto":
            max_tokens_field = (
                "max_completion_tokens" if _is_openai_host(resolved_url) else "max_tokens"
            )
        self.max_tokens_field = max_tokens_field
        self._organization = organization
        azure = self.provider == "azure"
        openai_host = azure or server == "openai" or any(_is_openai_host(u) for u in urls)
        if enable_thinking is not None and openai_host:
            raise ConfigurationError(
                "enable_thinking is a chat-template switch of OpenAI-compatible servers (vLLM, "
                "SGLang, llama.cpp); for OpenAI's models pass reasoning_effort="
            )
        if server in ("vllm", "sglang") and reasoning_effort not in (None, *_SERVER_EFFORTS):
            raise ConfigurationError(
                f"{server} takes reasoning_effort {', '.join(_SERVER_EFFORTS)}; got "
                f"{reasoning_effort!r} (enable_thinking=False turns a template's thinking off)"
            )
        reasoning_model = openai_host and reasons_by_default(self.provider, model)
        # OpenAI's reasoning models reject logprobs: leave them off unless asked for.
        self._logprobs = logprobs if logprobs is not None else (False if reasoning_model else None)
        self.reasoning_effort = reasoning_effort
        self.enable_thinking = enable_thinking
        reasons = (
            enable_thinking is True
            or (reasoning_effort is not None and reasoning_effort != "none")
            or (reasoning_model and reasoning_effort is None)
        )
        self.reasoning_budget = reasoning_headroom(reasoning_budget, reasons=reasons)
        if reasons and prefill_choice is None:
            # An exact read continues the written answer without its thinking: the distribution
            # it reads would be the model's answer without the reasoning. Off unless asked for.
            self._prefill_choice = False
        super().__init__(model, base_url=urls, **http_options)
        self._url = f"{self.base_url}/chat/completions"
        # The model table applies to OpenAI's own models, not to what a local server calls its model.
        known = rejected_fields(self.provider, model) if server in (None, "openai") else ()
        self._init_adaptive(known)
        # OpenAI's own strict dialect (see _schema): converted once per schema a judge sends
        self._openai_dialect = (
            server == "openai" or self.provider == "azure" or any(_is_openai_host(u) for u in urls)
        )
        self._dialect_schemas: dict[int, tuple[Mapping[str, Any], dict[str, Any]]] = {}
        if server == "openai" or any(_is_openai_host(u) for u in urls):
            # {type: json_object, schema} is llama-cpp-python's extension: OpenAI would reject it too
            self._mode_ladder = tuple(m for m in _MODES if m != "json_object_schema")

    def default_capabilities(self) -> Capabilities:
        # Most OpenAI-compatible servers return logprobs; OpenAI's reasoning models do not, so
        # users of those pass logprobs=False.
        enabled = True if self._logprobs is None else self._logprobs
        return Capabilities(
            structured_output=self.structured_output != "none",
            logprobs=enabled,
            max_top_logprobs=20 if enabled else 0,
            prefill_choice=bool(self._prefill_choice and enabled),
            images=True,
        )

    def _make_auth_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        if self._organization:
            headers["openai-organization"] = self._organization
        return headers

    def secrets(self) -> tuple[str, ...]:
        return (self._api_key,) if self._api_key else ()

    def build_request(self, request: ChatRequest) -> tuple[str, dict[str, str], dict[str, Any]]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": m.role, "content": openai_content(m.content, self.provider)}
                for m in request.messages
            ],
        }
        if request.temperature is not None and "temperature" not in self.dropped:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body[self.max_tokens_field] = request.max_tokens
        if request.seed is not None and "seed" not in self.dropped:
            body["seed"] = request.seed
        if request.top_p is not None and "top_p" not in self.dropped:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop"] = list(request.stop)
        if request.logprobs:
            body["logprobs"] = True
            if request.top_logprobs:
                body["top_logprobs"] = min(request.top_logprobs, 20)
        choices = choices_of(request)
        if choices is not None:  # an exact-distribution read: continue the prefix, constrained
            body.update(choice_fields(self.server, request, choices))
            return self._url, self._make_auth_headers(), body
        # Thinking settings go with verdict requests only: an exact read continues an answer.
        if self.reasoning_effort is not None:
            body["reasoning_effort"] = self.reasoning_effort
        if self.enable_thinking is not None:
            body["chat_template_kwargs"] = {"enable_thinking": self.enable_thinking}
        if request.max_tokens is not None and self.reasoning_budget:
            # room for the thinking, on top of the verdict's
            body[self.max_tokens_field] = request.max_tokens + self.reasoning_budget
        fmt = self._response_format(request)
        if fmt is not None:
            body["response_format"] = fmt
        return self._url, self._make_auth_headers(), body

    def _response_format(self, request: ChatRequest) -> dict[str, Any] | None:
        schema = request.output_schema
        if schema is None or self.structured_output == "none":
            return None
        if self._openai_dialect:
            schema = self._in_dialect(schema)
        if self.structured_output == "json_schema":
            return {
                "type": "json_schema",
                "json_schema": {
                    "name": request.schema_name,
                    "strict": self.strict_schema,
                    "schema": schema,
                },
            }
        if self.structured_output == "json_object_schema":
            return {"type": "json_object", "schema": schema}
        return {"type": "json_object"}

    def _in_dialect(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        """:func:`~rftjudge.clients._schema.openai_schema`, once per schema object (judges keep
        theirs for their lifetime; the entry holds it, so its id is not reused meanwhile)."""
        entry = self._dialect_schemas.get(id(schema))
        if entry is None or entry[0] is not schema:
            if len(self._dialect_schemas) >= 64:
                self._dialect_schemas.clear()
            entry = self._dialect_schemas[id(schema)] = (schema, openai_schema(schema))
        return entry[1]

    def parse_response(self, body: Any, headers: Mapping[str, str]) -> ChatResponse:
        choice = body["choices"][0]
        message = choice.get("message") or {}
        usage = body.get("usage") or {}
        finish = choice.get("finish_reason")
        if finish in _FAILED:
            raise failed_generation(
                finish,
                provider=self.provider,
                model=self.model,
                headers=headers,
                request_id_header=self.request_id_header,
            )
        return ChatResponse(
            text=message.get("content") or choice.get("text") or "",  # chat, or a completion
            finish_reason=_FINISH.get(finish or "", finish),
            usage=Usage(
                input_tokens=int(usage.get("prompt_tokens") or 0),
                output_tokens=int(usage.get("completion_tokens") or 0),
                requests=1,
                cached_input_tokens=_cached_tokens(usage, body.get("timings")),
                reasoning_tokens=_reasoning_tokens(usage),
            ),
            logprobs=_parse_logprobs(choice.get("logprobs")),
            refusal=message.get("refusal") or None,
            request_id=headers.get(self.request_id_header),
            model=body.get("model"),
        )


def _cached_tokens(usage: Any, timings: Any) -> int:
    """Prompt tokens the server reused from its prefix cache: OpenAI's (and vLLM's, llama.cpp's)
    ``usage.prompt_tokens_details.cached_tokens``, else llama.cpp's ``timings.cache_n``."""
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    if not isinstance(cached, int) and isinstance(timings, dict):
        cached = timings.get("cache_n")
    return max(0, cached) if isinstance(cached, int) else 0


def _reasoning_tokens(usage: Any) -> int:
    """Output tokens spent thinking: ``usage.completion_tokens_details.reasoning_tokens`` (OpenAI,
    vLLM), or a top-level ``usage.reasoning_tokens`` (some gateways); 0 where not said."""
    details = usage.get("completion_tokens_details")
    count = details.get("reasoning_tokens") if isinstance(details, dict) else None
    if not isinstance(count, int):
        count = usage.get("reasoning_tokens")
    return max(0, count) if isinstance(count, int) and not isinstance(count, bool) else 0


def _token_text(item: Any) -> str:
    return str(item.get("token", ""))


def _token_id(item: Any) -> int | None:
    """llama.cpp's token id (``id``); None where the server gives none."""
    found = item.get("id")
    return found if type(found) is int else None


def _token_logprob(item: Any) -> TokenLogprob:
    try:
        return TokenLogprob(
            token=str(item.get("token", "")),
            logprob=float(item.get("logprob", float("-inf"))),
            top=tuple(
                (str(t.get("token", "")), float(t.get("logprob", float("-inf"))))
                for t in item.get("top_logprobs") or ()
            ),
        )
    except (AttributeError, TypeError, ValueError):
        # Read after the response was accepted: a malformed entry reads as "no alternatives
        # here" (the judge then falls back to the written value and counts it), not as a crash.
        return TokenLogprob(token=_token_text(item), logprob=float("-inf"))


def _parse_logprobs(data: Any) -> Sequence[TokenLogprob] | None:
    if not isinstance(data, dict):
        return None
    content = data.get("content")
    if isinstance(content, list):
        if not all(type(item) is dict for item in content):
            raise TypeError("a logprobs.content entry is not an object")
        # Read where a judge looks (its score positions), not all of top-20 × every token.
        return LazyLogprobs(content, _token_logprob, _token_text, _token_id)
    # Legacy completions shape (llama-cpp-python may answer so): tokens / token_logprobs / top_logprobs
    tokens = data.get("tokens")
    if isinstance(tokens, list):
        lps = data.get("token_logprobs") or [float("-inf")] * len(tokens)
        tops = data.get("top_logprobs") or [None] * len(tokens)
        return tuple(
            TokenLogprob(
                token=str(tok),
                logprob=float(lp if lp is not None else float("-inf")),
                top=tuple((str(k), float(v)) for k, v in (top or {}).items()),
            )
            for tok, lp, top in zip(tokens, lps, tops, strict=False)
        )
    return None
