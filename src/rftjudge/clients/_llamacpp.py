"""llama.cpp's server: exact reads that continue a verdict token for token.

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

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .._types import ChatRequest, Message
from ._prefill import choice_fields

__all__ = ["completion_read", "server_root", "template_body", "template_prompt"]


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
    model: str, request: ChatRequest, choices: Sequence[str], prompt: str
) -> dict[str, Any]:
    """The ``/v1/completions`` body of an exact read: the rendered prompt, then the verdict's
    own token ids; generation constrained to ``choices`` (the chat read's grammar)."""
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
    return body
