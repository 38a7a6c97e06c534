"""What a listwise answer must look like, and where its scores are.

The verdict of one request holds exactly one score per candidate id: the JSON schema sent to the
judge, the pydantic model that validates the answer (a missing, duplicated or unknown id is a
re-ask, phrased for the judge), and the offsets of each score in the answer text from which the
expected scores are read (in band from logprobs, or exactly by prefill). Apart from
:class:`~.listwise.ListwiseJudge` so that the judge module keeps to the group and its orders.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from .._errors import VerdictError
from .._types import ChatResponse, Message, Usage
from ._criteria import Scale
from ._distribution import Labels, exact_each, expectation, in_band
from ._exact import ExactReader, letter_labels
from ._rationale import DEFAULT_RATIONALE_MAX_CHARS, Rationale, verdict_schema

__all__ = ["ScoreVocabulary", "exact_scores", "expected_scores", "output_schema", "verdict_model"]

Alphabet = Literal["digits", "letters"]
_ENTRY = re.compile(r'\{\s*"id"\s*:\s*"(?P<id>[^"\\]*)"\s*,\s*"score"\s*:\s*"?')


class _ContextError(VerdictError):
    """Not even two completions fit into ``max_prompt_chars``: the group fails, explicitly."""

    @property
    def kind(self) -> str:
        return "context"


class ScoreVocabulary:
    """The labels a score may take on ``scale`` (digits, or one letter per value), their values,
    the entry model that validates one ``{"id", "score"}`` and its JSON schema."""

    def __init__(self, scale: Scale, alphabet: Alphabet) -> None:
        values = scale.values
        self.label_values: dict[str, float] = (
            {k: float(v) for k, v in letter_labels(values).items()}
            if alphabet == "letters"
            else {str(v): float(v) for v in values}
        )
        self.labels = list(self.label_values)
        self.distribution_labels: Labels[float] = (
            Labels.of(self.label_values, self.labels)
            if alphabet == "letters"
            else Labels.scores(values)
        )
        score_type: Any = (
            Literal[tuple(self.labels)]
            if alphabet == "letters"
            else Annotated[int, Field(ge=scale.low, le=scale.high)]
        )
        self.entry_model = create_model(
            "ListwiseEntry",
            __config__=ConfigDict(extra="ignore"),
            id=(str, ...),
            score=(score_type, ...),
        )
        self.score_schema: dict[str, Any] = (
            {"type": "string", "enum": self.labels}
            if alphabet == "letters"
            else {"type": "integer", "enum": values}
        )


def output_schema(
    ids: Sequence[str],
    score_schema: dict[str, Any],
    rationale: Rationale = "before",
    max_chars: int | None = DEFAULT_RATIONALE_MAX_CHARS,
) -> dict[str, Any]:
    """The verdict schema for one request: exactly ``len(ids)`` entries, ids from ``ids``; the
    rationale where ``rationale`` puts it (:mod:`._rationale`)."""
    scores = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "id": {"type": "string", "enum": list(ids)},
                "score": dict(score_schema),
            },
            "required": ["id", "score"],
            "additionalProperties": False,
        },
        "minItems": len(ids),
        "maxItems": len(ids),
    }
    return verdict_schema(rationale, max_chars, "scores", scores)


def verdict_model(ids: Sequence[str], entry_model: type[BaseModel]) -> type[BaseModel]:
    """A verdict model that accepts exactly one score per id of ``ids``."""
    expected = tuple(ids)

    def one_per_id(verdict: Any) -> Any:
        problem = _id_problem([e.id for e in verdict.scores], expected)
        if problem:
            raise ValueError(problem)
        return verdict

    return create_model(
        "ListwiseVerdict",
        __config__=ConfigDict(extra="ignore"),
        __validators__={"one_per_id": model_validator(mode="after")(one_per_id)},  # type: ignore[dict-item]
        rationale=(str, ""),
        scores=(list[entry_model], ...),  # type: ignore[valid-type]
    )


def expected_scores(
    response: ChatResponse, ids: Sequence[str], labels: Labels[float]
) -> dict[str, float | None]:
    """Each id's expected score from the answer's own logprobs (None where unreadable)."""
    if not response.logprobs:
        return {cid: None for cid in ids}
    offsets = _score_offsets(response.text)
    return {cid: expectation(in_band(response, offsets.get(cid), labels)) for cid in ids}


async def exact_scores(
    exact: ExactReader,
    messages: Sequence[Message],
    answer: ChatResponse,
    ids: Sequence[str],
    labels: Labels[float],
) -> tuple[dict[str, float | None], Usage, int]:
    """Each id's expected score read by prefill + constrained choice; the reads of one answer
    share its prefix and go out together."""
    offsets = _score_offsets(answer.text)
    dists, usage = await exact_each(
        exact,
        messages,
        answer,
        {cid: offsets.get(cid) for cid in ids},
        labels,
        lambda cid: f"id {cid}",
    )
    return {cid: expectation(dist) for cid, dist in dists.items()}, usage, len(ids)


def _id_problem(got: Sequence[str], expected: Sequence[str]) -> str | None:
    """What is wrong with the ids of an answer (phrased for the judge), or None."""
    counts: dict[str, int] = {}
    for cid in got:
        counts[cid] = counts.get(cid, 0) + 1
    missing = [cid for cid in expected if cid not in counts]
    duplicated = [cid for cid, c in counts.items() if c > 1]
    unknown = [cid for cid in counts if cid not in set(expected)]
    if not (missing or duplicated or unknown):
        return None
    parts = []
    if missing:
        parts.append("no score for " + ", ".join(missing))
    if duplicated:
        parts.append("more than one score for " + ", ".join(duplicated))
    if unknown:
        parts.append("scores for ids that do not exist: " + ", ".join(unknown))
    return (
        "scores must hold exactly one entry per candidate id ("
        + ", ".join(expected)
        + "): "
        + "; ".join(parts)
    )


def _score_offsets(text: str) -> dict[str, int]:
    """Where each entry's score value starts in an answer text (past an opening quote)."""
    return {m.group("id"): m.end() for m in _ENTRY.finditer(text)}
