"""How a row's rubric reaches the judge, and one row judged against it.

The reward API is ``reward(prompt, response, reference)``: it has no place for a rubric, and every
layer between a trainer and a judge (batches with deduplication and deadlines, ensembles, the cohort
and Ray paths, ``rftjudge score``) passes those three values through. So a row's rubric travels
*with its reference*, wrapped in a :class:`RowInput` — by the judge's ``rubric=`` / ``rubrics=``
keywords (``ajudge``, ``areward``, ``ajudge_batch`` ...), by :func:`with_rubric` in the trainer
adapters, or by hand. Only the rubric judge unwraps it; deduplication sees the rubric in the
wrapper's ``repr`` and so never merges two rows with different rubrics.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .._affinity import in_conversation
from .._errors import ConfigurationError
from .._sync import run_sync
from .._types import Usage
from ..templates import PromptTemplate
from ._aggregate import Combined, chunks, combine_explicit, combine_implicit
from ._criteria import Scale
from ._rubric_ask import ChunkRead, Shape, ShapeCache, ask_chunk, gather_all, read_expected
from ._rubric_items import InvalidRubricError, Rubric, RubricItem, parse_rubric
from .base import BaseJudge, R, RewardBase

if TYPE_CHECKING:
    from ._exact import ExactReader

__all__ = [
    "RowInput",
    "RowOutcome",
    "RowRubrics",
    "RowSettings",
    "RubricKeywords",
    "judge_row",
    "member_reference",
    "members_column",
    "with_rubric",
]

Aggregate = Literal["explicit", "implicit"]
_BASE = ("judge-wide criteria",)  # the cache key of the rubric of rows without their own


@dataclass(frozen=True)
class RowInput:
    """A reference carrying the row's rubric (and the row's index, for error messages)."""

    reference: Any
    rubric: Any
    row: int | None = field(default=None, compare=False, repr=False)


def with_rubric(reference: Any, rubric: Any, row: int | None = None) -> Any:
    """``reference`` with ``rubric`` attached (unchanged when there is no rubric)."""
    return reference if _missing(rubric) else RowInput(reference, rubric, row)


def _missing(rubric: Any) -> bool:
    """No rubric in this cell (None, pandas' NaN): the judge-wide criteria apply."""
    return rubric is None or (isinstance(rubric, float) and math.isnan(rubric))


def reads_rubrics(judge: Any) -> bool:
    """Whether ``judge`` takes per-row rubrics: it names a ``rubric_column``."""
    column = getattr(judge, "rubric_column", None)
    return isinstance(column, str) and bool(column)


def member_reference(member: Any, reference: Any) -> Any:
    """What a composite judge (ensemble, cascade) passes ``member`` as its reference: the row's
    rubric still attached when the member reads rubrics, the bare reference otherwise — a member
    that takes no rubric is judged exactly as it would be alone."""
    if isinstance(reference, RowInput) and not reads_rubrics(member):
        return reference.reference
    return reference


def members_column(members: Sequence[Any]) -> str | None:
    """A composite judge's ``rubric_column``: the one its rubric-reading members share (None when
    no member reads rubrics). Members naming different columns are a configuration error: a row
    carries one rubric."""
    columns = sorted({m.rubric_column for m in members if reads_rubrics(m)})
    if len(columns) > 1:
        raise ConfigurationError(
            f"members read per-row rubrics from different columns ({', '.join(map(repr, columns))}):"
            " a row carries one rubric, so give them one rubric_column"
        )
    return columns[0] if columns else None


def row_rubric(judge: Any, reference: Any, row: Mapping[str, Any], index: int | None = None) -> Any:
    """``reference`` with the rubric of a data row attached, when ``judge`` reads a rubric column."""
    column = getattr(judge, "rubric_column", None)
    if not column or column not in row:
        return reference
    return with_rubric(reference, row[column], index)


def check_row_options(aggregate: object, max_criteria: object, max_rubric_items: object) -> None:
    """The per-row options of the rubric judge, checked at construction."""
    if aggregate not in ("explicit", "implicit"):
        raise ConfigurationError(f'aggregate must be "explicit" or "implicit"; got {aggregate!r}')
    for label, value in (("max_criteria", max_criteria), ("max_rubric_items", max_rubric_items)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ConfigurationError(f"{label} must be an int >= 1; got {value!r}")


@dataclass(frozen=True)
class RowSettings:
    """What judging a row against its rubric needs of the rubric judge (fixed at construction)."""

    scale: Scale
    aggregate: Aggregate
    max_criteria: int | None
    expected: bool
    top_logprobs: int
    template: PromptTemplate
    ignore_length: bool
    samples: int
    exact: ExactReader | None
    shapes: ShapeCache = field(default_factory=ShapeCache)


@dataclass(frozen=True)
class RowOutcome:
    """One row judged against its rubric, before it becomes a ``Judgment``."""

    combined: Combined
    raw: dict[str, float]
    normalized: dict[str, float]
    rationale: str
    text: str
    usage: Usage
    reasks: int
    chunk_reasks: int
    requests: int
    scoring: Literal["exact", "expected", "sampled"]
    exact_fallbacks: int
    expected_misses: int
    samples: int

    def judgment_fields(self, aggregate: Aggregate, items: int) -> dict[str, Any]:
        """The rubric judge's ``Judgment`` fields for this row."""
        combined = self.combined
        return {
            "score": combined.score,
            "criteria": self.raw,
            "normalized": self.normalized,
            "rationale": self.rationale,
            "usage": self.usage,
            "raw": self.text,
            "reasks": self.reasks + self.chunk_reasks,
            "scoring": self.scoring,
            "samples": self.samples,
            "exact_fallbacks": self.exact_fallbacks,
            "aggregate": aggregate,
            "items": items,
            "items_passed": combined.passed,
            "categories": combined.categories,
            "chunk_reasks": self.chunk_reasks,
            "requests": self.requests,
            "clipped": combined.clipped,
        }


class RubricKeywords(RewardBase[R]):
    """The ``rubric=`` / ``rubrics=`` keywords on a judge's reward methods: each attaches the
    row's rubric to its reference (:class:`RowInput`), which the judge's ``ajudge`` unwraps —
    the rubric judge parses it, a composite judge hands it to the members that read rubrics."""

    rubric_column: str | None = None

    async def areward(
        self, prompt: Any, response: Any, reference: Any = None, *, rubric: Any = None
    ) -> float | None:
        """Reward in [0, 1] (``rubric``: this row's rubric, see :mod:`._rubric_items`)."""
        return self.reward_of(
            await self.ajudge_safe(prompt, response, with_rubric(reference, rubric))
        )

    async def ajudge_batch(
        self,
        prompts: Sequence[Any],
        responses: Sequence[Any],
        references: Sequence[Any] | None = None,
        *,
        deadline: float | None = None,
        rubrics: Sequence[Any] | None = None,
    ) -> list[R | BaseException]:
        """As ``BaseJudge.ajudge_batch``; ``rubrics``: one rubric (or None) per item."""
        if rubrics is not None:
            if isinstance(rubrics, str) or len(rubrics) != len(responses):
                raise ConfigurationError(
                    f"rubrics must be a list with one rubric per response ({len(responses)})"
                )
            refs = list(references) if references is not None else [None] * len(responses)
            references = [
                RowInput(ref, None if _missing(rub) else rub, i)
                for i, (ref, rub) in enumerate(zip(refs, rubrics, strict=False))
            ]
        return await super().ajudge_batch(prompts, responses, references, deadline=deadline)

    async def areward_batch(
        self,
        prompts: Sequence[Any],
        responses: Sequence[Any],
        references: Sequence[Any] | None = None,
        *,
        deadline: float | None = None,
        rubrics: Sequence[Any] | None = None,
    ) -> list[float | None]:
        outcomes = await self.ajudge_batch(
            prompts, responses, references, deadline=deadline, rubrics=rubrics
        )
        return [self.reward_of(o) for o in outcomes]

    def judge(self, prompt: Any, response: Any, reference: Any = None, *, rubric: Any = None) -> R:
        """Synchronous ``ajudge`` with this row's ``rubric``."""
        return run_sync(self.ajudge(prompt, response, with_rubric(reference, rubric)))

    def reward(
        self, prompt: Any, response: Any, reference: Any = None, *, rubric: Any = None
    ) -> float | None:
        return run_sync(self.areward(prompt, response, reference, rubric=rubric))

    def reward_batch(
        self,
        prompts: Sequence[Any],
        responses: Sequence[Any],
        references: Sequence[Any] | None = None,
        *,
        deadline: float | None = None,
        rubrics: Sequence[Any] | None = None,
    ) -> list[float | None]:
        return run_sync(
            self.areward_batch(prompts, responses, references, deadline=deadline, rubrics=rubrics)
        )


class RowRubrics(RubricKeywords[R], BaseJudge[R]):
    """A model judge with per-row rubrics: the keywords, and parsing with a cache (a GRPO group
    shares one rubric; training revisits it every epoch)."""

    rubric_column: str | None = "rubric"
    max_rubric_items: int = 64
    base_items: tuple[RubricItem, ...] = ()

    def rubric_of(self, raw: Any, row: int | None) -> Rubric:
        """The row's rubric (judge-wide criteria first), or InvalidRubricError naming the row."""
        where = "this row" if row is None else f"row {row}"
        cache: OrderedDict[Any, Rubric] = self.__dict__.setdefault("_rubric_cache", OrderedDict())
        if raw is None:
            if not self.base_items:
                column = f"column {self.rubric_column!r}" if self.rubric_column else "rubric="
                raise InvalidRubricError(
                    f"{where} has no rubric ({column} empty) and the judge has no criteria"
                )
            return cache.setdefault(_BASE, Rubric(self.base_items))
        try:
            key: Any = raw if isinstance(raw, str) else repr(raw)
        except Exception:  # pragma: no cover - repr of user objects
            key = None
        found = cache.get(key) if key is not None else None
        if found is not None:
            cache.move_to_end(key)
            return found
        rubric = parse_rubric(raw, base=self.base_items, max_items=self.max_rubric_items, row=row)
        if key is not None:
            cache[key] = rubric
            if len(cache) > 4096:
                cache.popitem(last=False)
        return rubric


async def judge_row(
    judge: BaseJudge[Any],
    settings: RowSettings,
    rubric: Rubric,
    texts: tuple[str, str, str | None],
    row: int | None,
) -> RowOutcome:
    """Judge one row against ``rubric``: programs locally, judged items in (chunked) requests."""
    prompt, response, reference = texts
    normalized: dict[str, float] = {}
    raw: dict[str, float] = {}
    for item in rubric.programs:
        value = min(1.0, max(0.0, float(item.check(prompt, response, reference))))  # type: ignore[misc]
        raw[item.id] = normalized[item.id] = value
    judged = rubric.judged
    where = "this row" if row is None else f"row {row}"
    reads: list[list[ChunkRead]] = []
    if judged:
        seeds = (
            [judge.seed]
            if settings.samples == 1
            else [(judge.seed or 0) + i for i in range(settings.samples)]
        )
        reads = await gather_all(
            [_ask_row(judge, settings, rubric, texts, where, s) for s in seeds]
        )
    per_sample = [{k: v for read in sample for k, v in read.normalized.items()} for sample in reads]
    for sample_raw in reads[:1]:
        for read in sample_raw:
            raw.update(read.raw)
    flat = [read for sample in reads for read in sample]
    if settings.aggregate == "implicit" and judged:
        overall = sum(s["score"] for s in per_sample) / len(per_sample)
        normalized["score"] = overall
        combined = combine_implicit(overall, judged, rubric.programs, normalized)
    else:
        for item in judged:
            normalized[item.id] = sum(s[item.id] for s in per_sample) / len(per_sample)
        combined = combine_explicit(rubric.items, normalized)
    order = [i.id for i in rubric.items if i.id in normalized] + (
        ["score"] if "score" in normalized else []
    )
    normalized = {k: normalized[k] for k in order}
    raw = {k: raw[k] for k in order if k in raw}
    usage = Usage()
    for read in flat:
        usage = usage + read.usage
    exact = sum(r.exact_hits for r in flat)
    judge.stats.expected_fallbacks += sum(r.expected_misses for r in flat)  # sampled value used
    return RowOutcome(
        combined=combined,
        raw=raw,
        normalized=normalized,
        rationale=" | ".join(r.rationale for r in reads[0] if r.rationale) if reads else "",
        text="\n".join(r.text for r in reads[0]) if reads else "",
        usage=usage,
        reasks=sum(r.reasks for r in flat),
        chunk_reasks=sum(r.id_reasks for r in flat),
        requests=sum(1 + r.reasks + r.id_reasks for r in flat),
        scoring="exact" if exact else "expected" if any(r.expected for r in flat) else "sampled",
        exact_fallbacks=sum(r.exact_misses for r in flat),
        expected_misses=sum(r.expected_misses for r in flat),
        samples=max(1, len(reads)),
    )


def row_plan(settings: RowSettings, rubric: Rubric) -> list[tuple[tuple[RubricItem, ...], Shape]]:
    """The requests of a row: its chunks and their verdict shapes, memoised on the rubric."""
    key = (settings.aggregate, settings.max_criteria, id(settings.shapes))
    plan: list[tuple[tuple[RubricItem, ...], Shape]] | None = rubric.memo.get(key)
    if plan is None:
        if settings.aggregate == "implicit":
            plan = [(rubric.judged, settings.shapes.implicit(settings.scale))]
        else:
            plan = [
                (items, settings.shapes.explicit(items, settings.scale))
                for items in chunks(rubric.judged, settings.max_criteria)
            ]
        rubric.memo[key] = plan
    return plan


async def _ask_row(
    judge: BaseJudge[Any],
    settings: RowSettings,
    rubric: Rubric,
    texts: tuple[str, str, str | None],
    where: str,
    seed: int | None,
) -> list[ChunkRead]:
    prompt, response, reference = texts
    implicit = settings.aggregate == "implicit"
    plan = row_plan(settings, rubric)

    @in_conversation
    async def one(items: tuple[RubricItem, ...], shape: Shape) -> ChunkRead:
        messages = settings.template.render(
            prompt=prompt,
            response=response,
            reference=reference,
            items=items,
            scale=settings.scale,
            implicit=implicit,
            output_schema=shape.text,
            ignore_length=settings.ignore_length,
            rationale=settings.shapes.rationale,
        )
        request = judge.make_request(
            messages,
            shape.schema,
            logprobs=settings.expected,
            top_logprobs=settings.top_logprobs if settings.expected else 0,
        )
        if seed != judge.seed:
            request = _seeded(request, seed)

        def count() -> None:
            judge.stats.reasks += 1

        read, sent, answer = await ask_chunk(
            judge._ask, request, shape, max_reasks=judge.max_reasks, on_reask=count, row=where
        )
        if settings.expected:
            read = await read_expected(read, sent, answer, shape, settings.exact)
        return read

    return await gather_all([one(items, shape) for items, shape in plan])


def _seeded(request: Any, seed: int | None) -> Any:
    from dataclasses import replace

    return replace(request, seed=seed)
