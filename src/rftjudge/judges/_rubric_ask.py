"""Judging one row against its own rubric: verdict shapes, chunked requests, id-level re-asks.

A per-row rubric has its own verdict schema (one score per item id). Building a pydantic model per
row would cost about a millisecond, more than the rest of a judgment; instead every verdict is
validated as one generic model (``{"rationale", "scores": {id: value}}``) and the ids and values are
checked here against the row's items, and the JSON schema sent for structured output is built once
per *shape* (the ids and their scales) and cached — rows of one prompt, and rubrics whose ids are
generated (``c1, c2, ...``), share it.

With ``max_criteria=k`` the judged items go in requests of at most ``k``; the requests of one row are
sent together and share their prefix (instructions, prompt, reference, response). A chunk whose
verdict lacks an id, names an unknown one, or gives an invalid value is re-asked — that chunk only,
at most ``max_reasks`` times, naming the problem. An item that never validates fails the row with
:class:`~._rubric_items.RubricError` (kind ``"rubric"``): it is never dropped.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict

from .._types import ChatRequest, Message, Usage
from ..parsing import json_value_offset
from ._aggregate import item_scale
from ._criteria import Scale
from ._distribution import exact_each, expectation, gather_all, in_band
from ._rationale import Rationale, verdict_schema
from ._rubric_items import RubricError, RubricItem
from ._scoring import scale_labels

if TYPE_CHECKING:
    from ._exact import ExactReader
    from .base import Asked

__all__ = [
    "ChunkRead",
    "ItemsVerdict",
    "OverallVerdict",
    "Shape",
    "ShapeCache",
    "ask_chunk",
    "gather_all",
]

T = TypeVar("T")


class ItemsVerdict(BaseModel):
    """Every explicit verdict: ids and values are checked against the row's items afterwards."""

    model_config = ConfigDict(extra="ignore")
    rationale: str = ""
    scores: dict[str, Any]


class OverallVerdict(BaseModel):
    """Every implicit verdict: one score for the whole rubric."""

    model_config = ConfigDict(extra="ignore")
    rationale: str = ""
    score: Any


@dataclass(frozen=True)
class Shape:
    """A verdict layout: the ids (``("score",)`` when implicit), their scales, the schema."""

    ids: tuple[str, ...]
    scales: tuple[Scale, ...]
    schema: dict[str, Any]
    text: str
    implicit: bool


def _value_schema(scale: Scale) -> dict[str, Any]:
    return {"type": "boolean"} if scale.binary else {"type": "integer", "enum": scale.values}


class ShapeCache:
    """Verdict shapes by (ids, scales), least recently used dropped beyond ``size``."""

    def __init__(
        self, size: int = 1024, *, rationale: Rationale = "before", max_chars: int | None = None
    ) -> None:
        self.size = size
        self.rationale: Rationale = rationale  # where the judge's rationale option puts it
        self.max_chars = max_chars
        self._shapes: OrderedDict[tuple[Any, ...], Shape] = OrderedDict()
        self.misses = 0

    def explicit(self, items: Sequence[RubricItem], scale: Scale) -> Shape:
        scales = tuple(item_scale(i, scale) for i in items)
        key = tuple((i.id, s.low, s.high, s.binary) for i, s in zip(items, scales, strict=True))
        found = self._shapes.get(key)
        if found is not None:
            self._shapes.move_to_end(key)
            return found
        ids = tuple(i.id for i in items)
        scores = {
            "type": "object",
            "properties": {i: _value_schema(s) for i, s in zip(ids, scales, strict=True)},
            "required": list(ids),
            "additionalProperties": False,
        }
        schema = verdict_schema(self.rationale, self.max_chars, "scores", scores)
        return self._keep(key, Shape(ids, scales, schema, json.dumps(schema), implicit=False))

    def implicit(self, scale: Scale) -> Shape:
        key = ("implicit", scale.low, scale.high, scale.binary)
        found = self._shapes.get(key)
        if found is not None:
            return found
        schema = verdict_schema(self.rationale, self.max_chars, "score", _value_schema(scale))
        return self._keep(key, Shape(("score",), (scale,), schema, json.dumps(schema), True))

    def _keep(self, key: tuple[Any, ...], shape: Shape) -> Shape:
        self.misses += 1
        self._shapes[key] = shape
        if len(self._shapes) > self.size:
            self._shapes.popitem(last=False)
        return shape


@dataclass(frozen=True)
class ChunkRead:
    """One chunk's validated verdict: raw and normalised values per id, and what it cost."""

    raw: dict[str, float]
    normalized: dict[str, float]
    rationale: str
    text: str
    usage: Usage
    reasks: int
    """Re-asks for unusable JSON (inside the judge's ask)."""
    id_reasks: int
    """Re-asks for missing or extra ids or invalid values (this chunk only)."""
    expected: bool = False
    exact_hits: int = 0
    exact_misses: int = 0
    expected_misses: int = 0


def _check_value(value: Any, scale: Scale) -> float | None:
    if scale.binary:
        return float(value) if isinstance(value, bool) else None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not scale.low <= value <= scale.high
    ):
        return None
    return float(value)


def _problems(values: Mapping[str, Any], shape: Shape) -> tuple[dict[str, float], list[str]]:
    raw: dict[str, float] = {}
    problems: list[str] = []
    missing = [i for i in shape.ids if i not in values]
    extra = [k for k in values if k not in shape.ids]
    if missing:
        problems.append(f"no score for {', '.join(missing)}")
    if extra:
        problems.append(f"unknown id(s) {', '.join(map(repr, extra[:5]))}")
    for ident, scale in zip(shape.ids, shape.scales, strict=True):
        if ident not in values:
            continue
        checked = _check_value(values[ident], scale)
        if checked is None:
            want = "true or false" if scale.binary else f"an integer {scale.low}-{scale.high}"
            problems.append(f"{ident}: expected {want}, got {values[ident]!r}")
        else:
            raw[ident] = checked
    return raw, problems


Ask = Callable[[ChatRequest, type[Any]], Awaitable["Asked[Any]"]]


async def ask_chunk(
    ask: Ask,
    request: ChatRequest,
    shape: Shape,
    *,
    max_reasks: int,
    on_reask: Callable[[], None],
    row: str,
) -> tuple[ChunkRead, ChatRequest, Any]:
    """Ask until the verdict has exactly the shape's ids with valid values (bounded re-asks).

    Returns the read, the request that produced it (for exact reads) and the provider's response.
    """
    usage = Usage()
    json_reasks = 0
    messages = request.messages
    model = OverallVerdict if shape.implicit else ItemsVerdict
    for attempt in range(max_reasks + 1):
        current = request if attempt == 0 else replace(request, messages=messages, follow_up=True)
        asked = await ask(current, model)
        usage = usage + asked.usage
        json_reasks += asked.reasks
        verdict = asked.verdict
        values = {"score": verdict.score} if shape.implicit else verdict.scores
        raw, problems = _problems(values, shape)
        if not problems:
            normalized = {
                i: s.normalise(raw[i]) for i, s in zip(shape.ids, shape.scales, strict=True)
            }
            read = ChunkRead(
                raw, normalized, verdict.rationale, asked.response.text, usage, json_reasks, attempt
            )
            # the request as the verdict answered it (with any re-asks): what exact reads continue
            return (
                read,
                replace(current, messages=asked.messages or current.messages),
                asked.response,
            )
        if attempt == max_reasks:
            raise RubricError(
                f"{row}: item(s) without a valid verdict after {attempt + 1} request(s): "
                f"{'; '.join(problems)}",
                raw=asked.response.text,
            )
        on_reask()
        expected_ids = ", ".join(shape.ids)
        messages = (
            *messages,
            Message("assistant", asked.response.text),
            Message(
                "user",
                f"Your answer could not be used: {'; '.join(problems)}. Reply again with only the "
                f"corrected JSON object, with a score for exactly these ids: {expected_ids}.",
            ),
        )
    raise AssertionError("unreachable")  # pragma: no cover


async def read_expected(
    read: ChunkRead,
    request: ChatRequest,
    response: Any,
    shape: Shape,
    reader: ExactReader | None,
) -> ChunkRead:
    """Expected values per id from the verdict's logprobs, and exact reads where enabled; an id
    that cannot be read keeps its sampled value (counted in ``expected_misses``)."""
    found: dict[str, float | None] = {}
    for ident, scale in zip(shape.ids, shape.scales, strict=True):
        offset = json_value_offset(read.text, ident)
        found[ident] = expectation(in_band(response, offset, scale_labels(scale)))
    usage, hits, misses = read.usage, 0, 0
    if reader is not None and reader.enabled:
        groups: dict[Scale, list[str]] = {}
        for ident, scale in zip(shape.ids, shape.scales, strict=True):
            groups.setdefault(scale, []).append(ident)
        for scale, ids in groups.items():
            offsets = {i: json_value_offset(read.text, i) for i in ids}
            dists, extra = await exact_each(
                reader, request.messages, response, offsets, scale_labels(scale), repr
            )
            usage = usage + extra
            for ident, dist in dists.items():
                value = expectation(dist)
                hits += value is not None
                misses += value is None
                if value is not None:
                    found[ident] = value
    scales = dict(zip(shape.ids, shape.scales, strict=True))
    normalized = {
        i: read.normalized[i] if v is None else scales[i].normalise(v) for i, v in found.items()
    }
    expected_misses = sum(v is None for v in found.values())
    return replace(
        read,
        normalized=normalized,
        usage=usage,
        expected=expected_misses < len(found),
        exact_hits=hits,
        exact_misses=misses,
        expected_misses=expected_misses,
    )
