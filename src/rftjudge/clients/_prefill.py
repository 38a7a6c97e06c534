"""Exact label distributions: prefill the assistant turn, constrain the next token to the choices.

Reading a score's probabilities out of an ordinary verdict works only approximately: the score
token must be found in the text, and servers report logprobs before their grammar mask, so the top
list holds tokens the schema forbids and may miss valid ones. Servers that continue a prefilled
assistant message and constrain generation to a list of strings make it exact: the judge's own
verdict up to the score is sent back as the start of the assistant turn, generation is restricted
to the valid labels, and the first generated token's top logprobs are the distribution over the
labels at exactly the place the score is written (LLM-as-a-Verifier's method).

A judge asks for this with a *choice request*: a :class:`~rftjudge.ChatRequest` whose last message
is the assistant prefix and whose ``output_schema`` is :func:`choice_schema` (``schema_name`` =
:data:`CHOICE_SCHEMA_NAME`). Each server family spells it differently (:func:`choice_fields`):

| server | continue the prefilled turn | constrain to the choices |
|---|---|---|
| vLLM | ``continue_final_message: true, add_generation_prompt: false`` | ``structured_outputs: {"choice": [...]}`` |
| SGLang | ``continue_final_message: true`` | ``regex: "(A|B|tie)"`` |
| llama.cpp ``llama-server`` | automatic when the last message is the assistant's | ``grammar: root ::= "A" \\| "B"`` (GBNF) |

llama-server refuses a prefill while the chat template's thinking is on ("Assistant response prefill
is incompatible with enable_thinking", Qwen3-style templates), so its choice requests also send
``chat_template_kwargs: {"enable_thinking": false}`` (ignored by templates without the variable).

Others (OpenAI, Ollama, llama-cpp-python's server, which closes the assistant turn before
generating) cannot, and their clients do not advertise ``Capabilities.prefill_choice``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from .._errors import ConfigurationError
from .._types import ChatRequest

__all__ = [
    "CHOICE_SCHEMA_NAME",
    "PREFILL_SERVERS",
    "SERVERS",
    "ServerFamily",
    "choice_fields",
    "choice_schema",
    "choices_of",
]

ServerFamily = Literal["openai", "vllm", "sglang", "llamacpp", "llama-cpp-python", "ollama"]
SERVERS: tuple[str, ...] = ("openai", "vllm", "sglang", "llamacpp", "llama-cpp-python", "ollama")
PREFILL_SERVERS: frozenset[str] = frozenset({"vllm", "sglang", "llamacpp"})
CHOICE_SCHEMA_NAME = "choice"

_REGEX_SPECIAL = set(r"\^$.|?*+()[]{}/")


def choice_schema(choices: Sequence[str]) -> dict[str, Any]:
    """The ``output_schema`` of a choice request: a string that is one of ``choices``."""
    return {"type": "string", "enum": list(choices)}


def choices_of(request: ChatRequest) -> tuple[str, ...] | None:
    """The choices of a choice request, or None for an ordinary request."""
    schema = request.output_schema
    if request.schema_name != CHOICE_SCHEMA_NAME or not isinstance(schema, Mapping):
        return None
    enum = schema.get("enum")
    if schema.get("type") != "string" or not isinstance(enum, list) or not enum:
        return None
    return tuple(str(c) for c in enum)


def choice_fields(
    server: str | None, request: ChatRequest, choices: Sequence[str]
) -> dict[str, Any]:
    """The body fields that make ``server`` continue the prefilled turn with one of ``choices``."""
    if not request.messages or request.messages[-1].role != "assistant":
        raise ConfigurationError("a choice request must end with the assistant prefix to continue")
    if server == "vllm":
        return {
            "continue_final_message": True,
            "add_generation_prompt": False,
            "structured_outputs": {"choice": list(choices)},
        }
    if server == "sglang":
        return {"continue_final_message": True, "regex": _alternation(choices)}
    if server == "llamacpp":
        return {
            "grammar": "root ::= " + " | ".join(json.dumps(c) for c in choices),
            "chat_template_kwargs": {"enable_thinking": False},
        }
    raise ConfigurationError(
        f"server {server!r} cannot continue a prefilled assistant turn with constrained choices; "
        f"use one of {', '.join(sorted(PREFILL_SERVERS))} (OpenAIClient(server=...))"
    )


def _alternation(choices: Sequence[str]) -> str:
    escaped = ("".join("\\" + ch if ch in _REGEX_SPECIAL else ch for ch in c) for c in choices)
    return "(" + "|".join(escaped) + ")"
