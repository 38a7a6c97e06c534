"""Provider-neutral request and response types.

Judges build a :class:`ChatRequest`; each client maps it onto its provider's wire format and maps the
answer back into a :class:`ChatResponse`. Requests and responses are plain frozen dataclasses (they are
built thousands of times per training step); :class:`Usage` is a pydantic model because it is part of
the public, serialisable :class:`~rftjudge.Judgment`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ._content import Content, ImagePart, TextPart

__all__ = [
    "ChatRequest",
    "ChatResponse",
    "Content",
    "ImagePart",
    "Message",
    "TextPart",
    "TokenLogprob",
    "Usage",
]

Role = Literal["system", "user", "assistant"]


class Usage(BaseModel):
    """Token usage of one judgment (summed over every request it took, re-asks and swaps included)."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            requests=self.requests + other.requests,
        )


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message: ``content`` is text (sent as is) or a tuple of :class:`TextPart` /
    :class:`ImagePart` (see :mod:`rftjudge._content`); each client maps parts to its wire form."""

    role: Role
    content: Content


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What a judge asks of a client, independent of the provider.

    ``output_schema`` is the JSON schema the answer must follow; each client requests it in the
    structured-output form its server understands (or not at all, in prompt-only mode).
    ``extra_body`` is merged into the provider request last, for provider-specific fields.
    """

    messages: tuple[Message, ...]
    output_schema: Mapping[str, Any] | None = None
    schema_name: str = "verdict"
    temperature: float | None = 0.0
    max_tokens: int | None = 1024
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    extra_body: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token with its log-probability and the top alternatives at that position."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class ChatResponse:
    """A provider's answer, normalised.

    ``finish_reason`` is one of ``"stop"``, ``"length"``, ``"refusal"``, ``"content_filter"``,
    ``"tool_use"`` or ``None`` when the provider does not say.
    """

    text: str
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    logprobs: tuple[TokenLogprob, ...] | None = None
    refusal: str | None = None
    request_id: str | None = None
    model: str | None = None
    retries: int = 0
