"""The judge-wide rubric verdict: its pydantic model and its JSON schema (one field per criterion).

The schema is flat and ``$ref``-free so that every structured-output backend (and llama.cpp's
grammar) accepts it; the model reads the same shape back, an integer scale refusing ``true``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from ._criteria import Criterion, Scale, verdict_field
from ._rationale import DEFAULT_RATIONALE_MAX_CHARS, Rationale, verdict_schema

__all__ = ["verdict_model", "verdict_schema_for"]


def _not_bool(value: Any) -> Any:
    """``true`` on an integer scale is no score: pydantic would read it as 1 (the lowest)."""
    if isinstance(value, bool):
        raise ValueError("expected an integer score, not true/false")
    return value


def verdict_model(criteria: Sequence[Criterion], scale: Scale) -> type[BaseModel]:
    score_type: Any = (
        bool
        if scale.binary
        else Annotated[int, BeforeValidator(_not_bool), Field(ge=scale.low, le=scale.high)]
    )
    fields: dict[str, Any] = {verdict_field(c): (score_type, Field(alias=c.name)) for c in criteria}
    scores = create_model(
        "RubricScores", __config__=ConfigDict(extra="ignore", populate_by_name=True), **fields
    )
    return create_model(
        "RubricVerdict",
        __config__=ConfigDict(extra="ignore"),
        rationale=(str, Field(default="")),
        scores=(scores, ...),
    )


def verdict_schema_for(
    criteria: Sequence[Criterion],
    scale: Scale,
    rationale: Rationale = "before",
    max_chars: int | None = DEFAULT_RATIONALE_MAX_CHARS,
) -> dict[str, Any]:
    """A flat, $ref-free schema every structured-output backend (and llama.cpp's grammar) accepts;
    the rationale's place and bound: see :mod:`._rationale`."""
    score: dict[str, Any] = (
        {"type": "boolean"} if scale.binary else {"type": "integer", "enum": scale.values}
    )
    names = [c.name for c in criteria]
    scores = {
        "type": "object",
        "properties": {n: dict(score) for n in names},
        "required": names,
        "additionalProperties": False,
    }
    return verdict_schema(rationale, max_chars, "scores", scores)
