"""Which models reject which request fields — the one table — and how a 400 naming a field is read.

Sampling fields are the judges' default (``temperature=0``), and newer reasoning-first models answer
them with a 400: Claude Opus 4.7+ and the Claude 5 family ("`temperature` is deprecated for this
model"; the ``anthropic`` SDK removed the field in 1.0.0), the same ids on Bedrock, and OpenAI's
``gpt-5*`` and o-series (``unsupported_value``: only the default temperature). A request to those
models leaves the fields out from the start (:func:`rejected_fields`).

The table cannot know the next model family, so the clients also recover at run time
(:func:`rejected_field`): a 400 whose message names one of the fields a client may drop as
unsupported, deprecated or not allowed drops it for that client and the request is sent once more
(see :mod:`rftjudge.clients._adapt`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .._errors import ConfigurationError

__all__ = [
    "DEFAULT_REASONING_BUDGET",
    "DROPPABLE",
    "SAMPLING",
    "reasoning_headroom",
    "reasons_by_default",
    "rejected_field",
    "rejected_fields",
]

SAMPLING: frozenset[str] = frozenset({"temperature", "top_p", "top_k"})
"""The sampling fields models reject together (Anthropic: ``temperature``/``top_p``/``top_k``)."""

DROPPABLE: frozenset[str] = SAMPLING | {"seed"}
"""Fields a client may leave out without changing what is asked (only how it is sampled)."""

# provider → (pattern over the lower-cased model id, fields that model rejects)
_CLAUDE = (
    # Opus 4.7 and later; a date suffix (claude-opus-4-20250514) is not a minor version.
    re.compile(r"claude-opus-(?:4[-.](?:[7-9]|[1-9]\d)(?!\d)|[5-9]|[1-9]\d)"),
    re.compile(r"claude-sonnet-[5-9]"),
    re.compile(r"claude-haiku-(?:5[-.][5-9]|[6-9])"),
    re.compile(r"claude-fable-[5-9]"),
    re.compile(r"claude-mythos-"),
)
_OPENAI = (
    # gpt-5, gpt-5-mini, gpt-5.1 ...; o1, o3-mini, o4-mini ... (after any "org/" prefix of a gateway)
    re.compile(r"(?:^|/)(?:gpt-[5-9]|o\d)(?![a-z])"),
)
_TABLE: dict[str, tuple[tuple[re.Pattern[str], ...], frozenset[str]]] = {
    "anthropic": (_CLAUDE, SAMPLING),
    "bedrock": (_CLAUDE, SAMPLING),
    "openai": (_OPENAI, frozenset({"temperature", "top_p"})),
    "azure": (_OPENAI, frozenset({"temperature", "top_p"})),
}

_VERDICT = re.compile(
    r"unsupported|not supported|deprecated|does not support|doesn't support|not allowed|"
    r"not permitted|unrecognized|unknown (?:field|parameter|argument)|extra inputs|"
    r"only the default|is not available|cannot be used|may not be"
)


def rejected_fields(provider: str, model: str) -> frozenset[str]:
    """The request fields ``model`` on ``provider`` is known to reject (empty if none)."""
    entry = _TABLE.get(provider)
    if entry is None or not isinstance(model, str):
        return frozenset()
    patterns, fields = entry
    lowered = model.lower()
    return fields if any(p.search(lowered) for p in patterns) else frozenset()


def rejected_field(message: str, candidates: Iterable[str]) -> str | None:
    """The field among ``candidates`` that an error ``message`` names as unsupported, or None.

    The name must appear as a word (``temperature``, ```temperature```, ``'temperature'``) and the
    message must say it is unsupported, deprecated or not allowed — a 400 about the prompt that
    happens to mention "temperature" drops nothing.
    """
    lowered = message.lower()
    if not _VERDICT.search(lowered):
        return None
    for name in sorted(candidates):
        if re.search(rf"(?<![a-z_]){re.escape(name.lower())}(?![a-z_])", lowered):
            return name
    return None


DEFAULT_REASONING_BUDGET = 8192
"""Tokens added to a judge's ``max_tokens`` for a reasoning model's thinking, where no explicit
budget says how much (OpenAI's reasoning models, Claude's adaptive thinking, Gemini's dynamic
thinking). The limit is a cap, not a spend: a model that thinks less costs less."""


def reasoning_headroom(budget: int | None, *, reasons: bool) -> int:
    """Tokens to add to the verdict's ``max_tokens`` so that thinking cannot use up its room.

    Every provider counts thinking against the request's token limit (OpenAI's
    ``max_completion_tokens``, Anthropic's ``max_tokens``, Gemini's ``maxOutputTokens``, vLLM's and
    SGLang's ``max_tokens``); a judge's ``max_tokens`` is sized for its verdict, so a reasoning model
    would otherwise stop at the limit inside its thinking and every judgment fail as ``truncated``.
    ``budget``: the client's ``reasoning_budget`` (``None``: :data:`DEFAULT_REASONING_BUDGET` when
    the model ``reasons``, else 0).
    """
    if budget is None:
        return DEFAULT_REASONING_BUDGET if reasons else 0
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise ConfigurationError(f"reasoning_budget must be an int >= 0 or None; got {budget!r}")
    return budget


def reasons_by_default(provider: str, model: str) -> bool:
    """Whether ``model`` thinks before answering unless told otherwise: the reasoning-first models
    of the table above (OpenAI's o-series and ``gpt-5*``, Claude Opus 4.7+ and the Claude 5
    family), which are the same ones that reject sampling fields."""
    return bool(rejected_fields(provider, model))
