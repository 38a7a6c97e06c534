"""llama.cpp's server: pinned slots, and exact reads that continue a verdict token for token.

:class:`LlamaCpp` is the part of :class:`~rftjudge.OpenAIClient` that only ``server="llamacpp"``
uses. **Slots**: with ``slots=`` the client leases each conversation (a verdict and its follow-ups,
:mod:`rftjudge._affinity`) one of the server's slots and sends it as ``id_slot``
(:mod:`rftjudge.clients._slots`); ``slots="auto"`` asks the server's ``/props`` how many it has.
**Token reads**, below.

An exact read prefills the verdict up to a score and asks for one constrained token. Sent as
chat text, the prefill is tokenized again by the server, and not into the tokens it generated: a
grammar-constrained judge writes ``"r" "ational" "e"`` where the tokenizer would write
``"rational" "e"``, and llama.cpp's server strips a code fence it generated from the content. The
cache of the verdict (in its slot) then matches only up to the prompt, and every read evaluates the
verdict's text again: 18-36 tokens, ~0.4 s per read for SmolLM2-135M on one CPU thread, where the
verdict itself took ~2.5 s (measured, ``benchmarks/slot_cache.py``).

llama-server's ``/v1/completions`` takes a prompt mixing text and token ids, and
``/apply-template`` renders chat messages to the text its chat endpoint would evaluate. A read is
then ``[template(messages), *generated ids up to the score]``: token for token the state in which
the judge wrote the score, all of it in the slot's cache. The template is rendered once per
conversation (:mod:`rftjudge._affinity`), shared by the verdict's reads; rendering costs the server
no model time.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import httpx

from .._affinity import current_conversation
from .._errors import ConfigurationError, HTTPStatusError
from .._types import ChatRequest, ChatResponse, Message
from ._prefill import choice_fields, choices_of
from ._slots import SlotPool, with_slot

if TYPE_CHECKING:
    from .base import HTTPClient

    _Client = HTTPClient
else:
    _Client = object

__all__ = [
    "LlamaCpp",
    "completion_read",
    "server_root",
    "template_body",
    "template_prompt",
]

logger = logging.getLogger("rftjudge")
# What a server answers for an endpoint it does not have (a 400 is about one request).
_NO_SUCH_FEATURE = frozenset({404, 405, 501})
_ASK_AGAIN_S = 10.0  # how long after a /props that went unanswered it is asked again


class LlamaCpp(_Client):
    """Mixin for :class:`~rftjudge.OpenAIClient` (listed before the HTTP client): slots pinned
    per conversation, and exact reads continuing the verdict's own token ids. Inert for other
    server families."""

    enable_thinking: bool | None
    dropped: set[str]  # Adaptive's: sampling fields the server refused

    if TYPE_CHECKING:

        def _make_auth_headers(self) -> dict[str, str]: ...

    def _init_llamacpp(
        self, server: str | None, slots: int | Literal["auto"] | None, urls: Sequence[str]
    ) -> None:
        self.slots: SlotPool | None = None
        self._ask_slots = slots == "auto"  # the server's /props says, on the first request
        self._asking: asyncio.Future[None] | None = None
        self._ask_after = 0.0  # loop time before which /props is not asked again
        if slots is not None:
            if server != "llamacpp":
                raise ConfigurationError(
                    "slots= pins requests to llama.cpp server slots (id_slot): it needs "
                    'server="llamacpp"'
                )
            if len(urls) > 1:
                raise ConfigurationError(
                    "slots= pins requests to the slots of one llama.cpp server; for several, "
                    "pass EndpointPool([OpenAIClient(..., base_url=url, slots=n) for url in urls])"
                )
            if slots != "auto":
                self.slots = SlotPool(slots)
        # Exact reads continue the verdict's own tokens; off for good once the server shows it
        # cannot (an older build without /apply-template).
        self.token_reads = server == "llamacpp" and len(urls) == 1

    async def complete(self, request: ChatRequest) -> ChatResponse:
        choices = choices_of(request) if request.prefill_tokens and self.token_reads else None
        if choices is not None:
            prompt = await self._prompt_before(request)
            if prompt is not None:
                body = completion_read(self.model, request, choices, prompt, self.dropped)
                url = f"{self.base_url}/completions"
                try:
                    return await self.send_built(request, url, self._make_auth_headers(), body)
                except HTTPStatusError as exc:
                    if exc.status_code in _NO_SUCH_FEATURE:
                        self._no_token_reads(exc)
                    elif exc.status_code != 400:
                        raise
                    # then this read as chat text, below (a 400: this one only)
                    logger.debug("rftjudge: a token read was refused (%s); read as text", exc)
        return await super().complete(request)

    async def _prompt_before(self, request: ChatRequest) -> str | None:
        """The server's chat template applied to the messages before the prefill, as the verdict's
        were (the client's and the request's ``chat_template_kwargs``): once per conversation,
        shared by a verdict's reads. None where it cannot be had (the read then goes as text)."""
        kwargs: dict[str, Any] = {}
        if self.enable_thinking is not None:
            kwargs["enable_thinking"] = self.enable_thinking
        extra = request.extra_body.get("chat_template_kwargs")
        if isinstance(extra, Mapping):
            kwargs.update(extra)  # merged last into the verdict's body, as here
        content = template_body(request.messages[:-1], kwargs)
        if content is None:
            return None
        current = current_conversation()
        try:
            if current is None:
                return await self._render(content)
            return await current.hold(
                ("template", self, content), lambda: self._render(content), _keep
            )
        except HTTPStatusError as exc:
            if exc.status_code in _NO_SUCH_FEATURE:
                self._no_token_reads(exc)
                return None
            if exc.status_code == 400:
                return None  # this conversation's messages only
            raise
        except ValueError as exc:
            if self.token_reads:  # not an answer to render: this server cannot
                self._no_token_reads(exc)
            return None

    async def _render(self, content: bytes) -> str:
        if not self.token_reads:  # another read of the conversation found that the server cannot
            raise ValueError("token reads are off")
        headers = {**self._make_auth_headers(), **self._extra_headers}
        headers["content-type"] = "application/json"
        response = await self._send(
            f"{server_root(self.base_url)}/apply-template", headers, content
        )
        if response.status_code >= 400:
            raise self.error_from_response(
                response.status_code, None, response.text, dict(response.headers)
            )
        return template_prompt(json.loads(response.content))

    async def _count(self) -> SlotPool | None:
        """``slots="auto"``: the server's slot count from its ``/props`` (``total_slots``). Asked
        by one request at a time (those that come meanwhile wait for its answer); a definite
        answer settles it, a failure to answer is asked again a while later (no pinning till
        then)."""
        loop = asyncio.get_running_loop()
        asking = self._asking
        if asking is not None and asking.get_loop() is loop and not asking.done():
            await asyncio.wait([asking])
            return self.slots
        if loop.time() < self._ask_after:
            return None
        asking = self._asking = loop.create_future()
        try:
            return await self._ask_props(loop)
        finally:
            asking.set_result(None)
            if self._asking is asking:
                self._asking = None

    async def _ask_props(self, loop: asyncio.AbstractEventLoop) -> SlotPool | None:
        headers = {**self._make_auth_headers(), **self._extra_headers}
        try:
            answer = await self._http_client().get(
                f"{server_root(self.base_url)}/props",
                headers=headers,
                timeout=min(self.timeout, 10.0),
            )
        except (httpx.HTTPError, OSError) as exc:  # no answer: ask again later
            self._ask_after = loop.time() + _ASK_AGAIN_S
            logger.info(
                "rftjudge: %s: /props unanswered (%s); slots not pinned yet", self.base_url, exc
            )
            return None
        if answer.status_code >= 500 or answer.status_code == 429:  # loading, busy: later
            self._ask_after = loop.time() + _ASK_AGAIN_S
            return None
        try:
            count = answer.json().get("total_slots") if answer.status_code == 200 else None
        except (ValueError, AttributeError):
            count = None
        if self._ask_slots:  # a definite answer settles it
            self._ask_slots = False
            if type(count) is int and count >= 1:
                self.slots = SlotPool(count)
            else:
                logger.warning(
                    "rftjudge: %s: slots not pinned: /props answered status %d without a slot "
                    "count",
                    self.base_url,
                    answer.status_code,
                )
        return self.slots

    def _no_token_reads(self, why: Exception) -> None:
        if self.token_reads:
            logger.warning(
                "rftjudge: %s: exact reads go as chat text from now on; the server cannot "
                "continue token ids (%s)",
                self.base_url,
                why,
            )
        self.token_reads = False

    async def _fetch(
        self, request: ChatRequest, url: str, headers: Mapping[str, str], content: bytes
    ) -> tuple[ChatResponse, bytes]:
        # A pinned slot joins the body after the cache key is taken: it is where, not what.
        pool = self.slots if self.slots is not None or not self._ask_slots else await self._count()
        if pool is None or b'"id_slot":' in content:  # the caller pinned it already
            return await super()._fetch(request, url, headers, content)
        async with pool.lease(content) as slot:
            return await super()._fetch(request, url, headers, with_slot(content, slot))


def _keep(_: object) -> None:
    """Nothing to give back: a rendered template is not a lease."""


def server_root(base_url: str) -> str:
    """The server's own root (``/apply-template`` lives there, not under ``/v1``)."""
    return base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url


def template_body(
    messages: Sequence[Message], template_kwargs: Mapping[str, Any] | None
) -> bytes | None:
    """The ``/apply-template`` request for the messages before the prefill (None: not all text,
    e.g. images, which only the chat endpoint can place)."""
    if not all(isinstance(m.content, str) for m in messages):
        return None
    body: dict[str, Any] = {"messages": [{"role": m.role, "content": m.content} for m in messages]}
    if template_kwargs:
        body["chat_template_kwargs"] = dict(template_kwargs)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def template_prompt(payload: Any) -> str:
    """The rendered prompt from an ``/apply-template`` answer (ValueError when there is none)."""
    prompt = payload.get("prompt") if isinstance(payload, dict) else None
    if not isinstance(prompt, str) or not prompt:
        raise ValueError("the server's /apply-template answer has no prompt")
    return prompt


def completion_read(
    model: str,
    request: ChatRequest,
    choices: Sequence[str],
    prompt: str,
    dropped: Collection[str] = (),
) -> dict[str, Any]:
    """The ``/v1/completions`` body of an exact read: the rendered prompt, then the verdict's
    own token ids; generation constrained to ``choices`` (the chat read's grammar). ``dropped``:
    sampling fields the client no longer sends."""
    assert request.prefill_tokens is not None
    body: dict[str, Any] = {
        "model": model,
        "prompt": [prompt, *request.prefill_tokens],
        "grammar": choice_fields("llamacpp", request, choices)["grammar"],
        "temperature": 0.0 if request.temperature is None else request.temperature,
        "logprobs": max(1, min(request.top_logprobs or 1, 20)),
    }
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.seed is not None:
        body["seed"] = request.seed
    for name in dropped:  # fields the server refused before (see _adapt)
        body.pop(name, None)
    return body
