"""Provider-neutral request and response types.

Judges build a :class:`ChatRequest`; each client maps it onto its provider's wire format and maps the
answer back into a :class:`ChatResponse`. Requests and responses are plain frozen dataclasses (they are
built thousands of times per training step); :class:`Usage` is a pydantic model because it is part of
the public, serialisable :class:`~rftjudge.Judgment`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

from pydantic import BaseModel, ConfigDict

from ._content import Content, ImagePart, TextPart

__all__ = [
    "ChatRequest",
    "ChatResponse",
    "Content",
    "ImagePart",
    "LazyLogprobs",
    "Message",
    "TextPart",
    "TokenLogprob",
    "Usage",
]

Role = Literal["system", "user", "assistant"]


class Usage(BaseModel):
    """Token usage of one judgment (summed over every request it took, re-asks and swaps included).

    ``cached_input_tokens``: the part of ``input_tokens`` the server reused from its prefix cache
    instead of evaluating (OpenAI's ``usage.prompt_tokens_details.cached_tokens``, llama.cpp's
    ``timings.cache_n``; 0 where a provider does not say). ``reasoning_tokens``: the part of
    ``output_tokens`` a reasoning model spent thinking (OpenAI's
    ``usage.completion_tokens_details.reasoning_tokens``, Gemini's ``thoughtsTokenCount``; 0 where a
    provider does not say). It is billed as output, so cost needs no separate price.
    """

    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            requests=self.requests + other.requests,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
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
    ``extra_body`` is merged into the provider request last, for provider-specific fields (a
    nested object such as Ollama's ``options`` is merged key by key). ``top_p`` and ``stop`` are
    sent by the providers that take them (``None``: not sent). ``follow_up`` marks a request that
    extends one just answered (an exact read, a re-ask): it waits ahead of queued first requests
    for a concurrency slot, so that the server's prefix cache still holds the shared part.
    ``prefill_tokens``: the final assistant prefix as the token ids the server itself generated
    (an exact read continuing a verdict): a client whose server takes token prompts (llama.cpp)
    sends those instead of the text, which the server would tokenize differently from what it
    generated and so compute again instead of reusing its cache; others send the text.
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
    top_p: float | None = None
    stop: tuple[str, ...] | None = None
    follow_up: bool = False
    prefill_tokens: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token with its log-probability and the top alternatives at that position."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


class LazyLogprobs(Sequence[TokenLogprob]):
    """A provider's per-token logprobs, turned into :class:`TokenLogprob` only where read.

    With top-20 alternatives per generated token, building every token's alternatives costs more
    than the whole rest of a judgment, while a judge reads a handful of positions (where its scores
    were written). This keeps the provider's parsed list and converts one item on access;
    :meth:`texts` gives every token's text without the alternatives (what locating a position
    needs). It compares equal to the tuple of the same tokens.
    """

    __slots__ = ("_convert", "_done", "_id_of", "_items", "_text_of", "_texts")

    def __init__(
        self,
        items: Sequence[Any],
        convert: Callable[[Any], TokenLogprob],
        text_of: Callable[[Any], str],
        id_of: Callable[[Any], int | None] | None = None,
    ) -> None:
        self._items = items
        self._convert = convert
        self._text_of = text_of
        self._id_of = id_of
        self._done: dict[int, TokenLogprob] = {}
        self._texts: tuple[str, ...] | None = None

    def texts(self) -> tuple[str, ...]:
        """Every token's text, in order."""
        if self._texts is None:
            self._texts = tuple(map(self._text_of, self._items))
        return self._texts

    def ids(self, end: int) -> tuple[int, ...] | None:
        """The server's token ids of the first ``end`` tokens, or None where it gave none."""
        if self._id_of is None:
            return None
        found = tuple(map(self._id_of, self._items[:end]))
        return None if None in found else found  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> TokenLogprob: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[TokenLogprob, ...]: ...

    def __getitem__(self, index: int | slice) -> TokenLogprob | tuple[TokenLogprob, ...]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self._items))))
        if index < 0:
            index += len(self._items)
        done = self._done.get(index)
        if done is None:
            if not 0 <= index < len(self._items):
                raise IndexError("token index out of range")
            done = self._done[index] = self._convert(self._items[index])
        return done

    def __iter__(self) -> Iterator[TokenLogprob]:
        return (self[i] for i in range(len(self._items)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LazyLogprobs({len(self._items)} tokens)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (tuple, (tuple(self),))  # sent to another process as the plain tuple


@dataclass(frozen=True, slots=True)
class ChatResponse:
    """A provider's answer, normalised.

    ``finish_reason`` is one of ``"stop"``, ``"length"``, ``"refusal"``, ``"content_filter"``,
    ``"tool_use"`` or ``None`` when the provider does not say.
    """

    text: str
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    logprobs: Sequence[TokenLogprob] | None = None
    refusal: str | None = None
    request_id: str | None = None
    model: str | None = None
    retries: int = 0
