"""Where a verdict's rationale goes, and its bound: one option shared by the model judges.

Constrained decoders (structured output, llama.cpp's grammar) write an object's properties in
schema order, so the rationale's place in the verdict schema decides what the judge generates:
``before`` its scores or winner (it reasons first), ``after`` them (it explains them), or ``none``
(no rationale at all: the fewest generated tokens, for scores read from logprobs). The judges'
prompts ask for the same order, for servers that do not constrain.

``maxLength`` bounds the rationale where the server enforces it (llama.cpp, vLLM, SGLang): a judge
looping inside its rationale is cut off with a valid verdict instead of running into
``max_tokens`` (see :mod:`rftjudge.clients._schema` for providers that take no ``maxLength``). The
verdict models do not check the length: a longer rationale from a server that does not enforce it
is no reason to re-ask. Wherever the rationale goes, a score or label is read at its own place in
the judge's final JSON object (``json_value_offset`` finds the key, not a position).
"""

from __future__ import annotations

from typing import Any, Literal

from .._errors import ConfigurationError

__all__ = ["DEFAULT_RATIONALE_MAX_CHARS", "Rationale", "check_rationale", "verdict_schema"]

Rationale = Literal["before", "after", "none"]
"""Where the verdict's rationale goes: ``before`` the scores (the judge reasons first), ``after``
them (scores written first; the rationale explains them), or ``none`` (scores only: the fewest
generated tokens, for scoring from logprobs)."""
DEFAULT_RATIONALE_MAX_CHARS = 800
"""The rationale's ``maxLength`` in the verdict schema (about 200 tokens)."""


def check_rationale(rationale: object, max_chars: object) -> None:
    """``rationale`` and ``rationale_max_chars`` checked when the judge is built."""
    if rationale not in ("before", "after", "none"):
        raise ConfigurationError(
            f'rationale must be "before", "after" or "none"; got {rationale!r}'
        )
    if max_chars is not None and (
        isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1
    ):
        raise ConfigurationError(
            f"rationale_max_chars must be a positive int or None; got {max_chars!r}"
        )


def verdict_schema(
    rationale: Rationale, max_chars: int | None, key: str, value: dict[str, Any]
) -> dict[str, Any]:
    """A flat verdict schema: ``key`` (the scores, the winner) with ``value`` as its schema, and
    the rationale where ``rationale`` puts it; ``required`` in the same order."""
    text: dict[str, Any] = {"type": "string"}
    if max_chars is not None:
        text["maxLength"] = max_chars
    properties: dict[str, Any] = {
        "before": {"rationale": text, key: value},
        "after": {key: value, "rationale": text},
        "none": {key: value},
    }[rationale]
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
