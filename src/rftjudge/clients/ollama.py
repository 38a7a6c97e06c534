"""Ollama's native chat API (``POST /api/chat``).

Why native rather than Ollama's ``/v1`` (which :class:`~rftjudge.OpenAIClient` also speaks): the
native API takes ``think`` (``false`` keeps a thinking model from spending the token budget on
reasoning before the verdict), ``keep_alive`` and the model ``options`` (``num_ctx``) directly.

The request always sends ``stream: false`` (the API streams by default) and the sampling options
(``temperature`` defaults to the model's Modelfile value, often 0.8, when omitted). Structured output
is ``format`` = the JSON schema (``structured_output="json_schema"``), ``"json"`` (JSON mode), or
nothing. Logprobs (Ollama ≥ 0.12.11) are sent when a request asks for them; ``logprobs=True``
advertises them in the capabilities, so that judges may rely on them (older servers silently return
none).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from typing_extensions import Unpack

from .._deprecation import legacy_positionals
from .._errors import ConfigurationError, HTTPStatusError
from .._types import ChatRequest, ChatResponse, TokenLogprob, Usage
from ._options import HTTPOptions
from ._parts import ollama_message
from ._secrets import SecretField
from .base import Capabilities, HTTPClient, _openai_style_error, check_structured_output

__all__ = ["OllamaClient", "OllamaStructuredOutput", "ollama_base_url"]

OLLAMA_DEFAULT_URL = "http://localhost:11434"
OllamaStructuredOutput = Literal["json_schema", "json", "none"]
_MODES = ("json_schema", "json", "none")
_MAX_TOP_LOGPROBS = 20
_DONE = {"stop": "stop", "length": "length"}


def ollama_base_url(host: str | None) -> str:
    """The server URL from an ``OLLAMA_HOST``-style value, as the ``ollama`` CLI reads it.

    ``0.0.0.0:11434``, ``myhost`` and ``https://ollama.example`` are all valid: no scheme means
    ``http``, and without a scheme a missing port means 11434.
    """
    if not host or not host.strip():
        return OLLAMA_DEFAULT_URL
    host = host.strip().rstrip("/")
    if "://" in host:
        return host
    parts = urlsplit(f"http://{host}")
    try:
        port = parts.port
    except ValueError:  # "host:abc": leave it for the connection error to name
        port = None
    netloc = parts.netloc if port is not None else f"{parts.netloc}:11434"
    return f"http://{netloc}{parts.path}"


class OllamaClient(HTTPClient):
    """Client for a local (or remote) Ollama server's native ``/api/chat``.

    ``base_url`` falls back to ``OLLAMA_HOST`` (``host:port`` or a URL), then
    ``http://localhost:11434``. ``api_key`` (or ``OLLAMA_API_KEY``) is sent as a bearer token, for
    ollama.com or an authenticating proxy; a local server needs none.

    ``think``: ``False`` (default) asks a thinking model not to think — safe on models that cannot;
    ``True`` or ``"low"``/``"medium"``/``"high"`` turn it on (``True`` on a non-thinking model is a 400);
    ``None`` leaves the field out. ``options`` are merged into the request's ``options`` (e.g.
    ``{"num_ctx": 8192}``). ``timeout`` defaults to 120 s: a local server may load the model first.

    Other keyword arguments are :class:`~rftjudge.HTTPClient`'s (``max_concurrency``,
    ``max_retries``, ``retry_policy``, ``headers``, ``http_client``, ``transport``, ``capabilities``,
    the throughput options).
    """

    provider = "ollama"
    _api_key = SecretField()  # stored as a SecretStr; the auth header is added per request

    @legacy_positionals("base_url", after=1)
    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        structured_output: OllamaStructuredOutput = "json_schema",
        think: bool | str | None = False,
        logprobs: bool = False,
        keep_alive: str | int | None = None,
        options: Mapping[str, Any] | None = None,
        **http_options: Unpack[HTTPOptions],
    ) -> None:
        check_structured_output(structured_output, _MODES)
        if think is not None and not isinstance(think, bool | str):
            raise ConfigurationError(f"think must be a bool, a level string or None; got {think!r}")
        self.structured_output: OllamaStructuredOutput = structured_output
        self.think = think
        self.logprobs = bool(logprobs)
        self.keep_alive = keep_alive
        self.options = dict(options or {})
        key = api_key if api_key is not None else os.environ.get("OLLAMA_API_KEY")
        self._api_key = key or None
        http_options.setdefault("timeout", 120.0)  # local models load slowly: a longer default
        super().__init__(
            model,
            base_url=base_url or ollama_base_url(os.environ.get("OLLAMA_HOST")),
            **http_options,
        )
        self._url = f"{self.base_url}/api/chat"

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
        options: dict[str, Any] = {}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        if request.seed is not None:
            options["seed"] = request.seed
        if request.top_p is not None:
            options["top_p"] = request.top_p
        if request.stop:
            options["stop"] = list(request.stop)
        options.update(self.options)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [ollama_message(m.role, m.content) for m in request.messages],
            "stream": False,
            "options": options,
        }
        if request.output_schema is not None and self.structured_output == "json_schema":
            body["format"] = dict(request.output_schema)
        elif request.output_schema is not None and self.structured_output == "json":
            body["format"] = "json"
        if self.think is not None:
            body["think"] = self.think
        if self.keep_alive is not None:
            body["keep_alive"] = self.keep_alive
        if request.logprobs:
            body["logprobs"] = True
            if request.top_logprobs:
                body["top_logprobs"] = min(request.top_logprobs, _MAX_TOP_LOGPROBS)
        key = self._api_key
        return self._url, ({"authorization": f"Bearer {key}"} if key else {}), body

    def parse_response(self, body: Any, headers: Mapping[str, str]) -> ChatResponse:
        message = body["message"]
        done_reason = body.get("done_reason")
        return ChatResponse(
            text=str(message.get("content") or ""),  # message.thinking is not the verdict
            finish_reason=_DONE.get(done_reason or "", done_reason or None),
            usage=Usage(
                input_tokens=int(body.get("prompt_eval_count") or 0),
                output_tokens=int(body.get("eval_count") or 0),
                requests=1,
            ),
            logprobs=_parse_logprobs(body.get("logprobs")),
            request_id=headers.get(self.request_id_header),
            model=body.get("model"),
        )

    def error_from_response(
        self, status: int, body: Any, text: str, headers: Mapping[str, str]
    ) -> HTTPStatusError:
        # {"error": "model 'qwen3:8b' not found"}
        message, code = _openai_style_error(body, text)
        if status == 404 and "not found" in message:
            message += f" (pull it first: `ollama pull {self.model}`)"
        return self.make_status_error(status, message, code, text, headers)


def _parse_logprobs(data: Any) -> tuple[TokenLogprob, ...] | None:
    """``[{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]`` → TokenLogprobs."""
    if not isinstance(data, list):
        return None
    return tuple(
        TokenLogprob(
            token=str(item.get("token", "")),
            logprob=float(item.get("logprob", float("-inf"))),
            top=tuple(
                (str(t.get("token", "")), float(t.get("logprob", float("-inf"))))
                for t in item.get("top_logprobs") or ()
            ),
        )
        for item in data
    )
