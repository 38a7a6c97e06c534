"""Rubric judging: one response scored against weighted criteria, on a Likert or pass/fail scale.

Everything derived from the judge's configuration — the verdict model, its JSON schema, the compiled
template and the schema text shown in the prompt — is built once in ``__init__``: rebuilding the
schema per request costs more CPU than the HTTP exchange itself.

The reward is the weighted mean of per-criterion scores normalised to [0, 1]:
``(s - low) / (high - low)`` on a Likert scale, 1/0 for pass/fail.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
)
from typing_extensions import Unpack

from .._affinity import in_conversation
from .._deprecation import legacy_positionals
from .._errors import ConfigurationError
from .._types import ChatRequest, Usage
from ..clients._protocol import Client
from ..templates import PromptTemplate
from ._aggregate import row_metrics
from ._criteria import Criterion, Scale, ScaleSpec, check_criteria, verdict_field
from ._distribution import labels_top_logprobs
from ._exact import ExactReader
from ._options import JudgeOptions, Scoring
from ._rationale import DEFAULT_RATIONALE_MAX_CHARS, Rationale, check_rationale
from ._rubric_ask import ShapeCache
from ._rubric_items import InvalidRubricError, RubricError, RubricItem, criteria_items
from ._rubric_rows import (
    Aggregate,
    RowInput,
    RowRubrics,
    RowSettings,
    check_row_options,
    judge_row,
    with_rubric,
)
from ._rubric_verdict import verdict_model as _verdict_model
from ._rubric_verdict import verdict_schema_for as _verdict_schema
from ._scoring import exact_scores, expected_scores

logger = logging.getLogger("rftjudge")

__all__ = [
    "Criterion",
    "InvalidRubricError",
    "Judgment",
    "RubricError",
    "RubricItem",
    "RubricJudge",
    "Scale",
    "ScaleSpec",
    "with_rubric",
]


class Judgment(BaseModel):
    """The verdict of a rubric judge on one response.

    ``score`` is the reward in [0, 1]: the weighted mean of ``normalized``.
    ``criteria``: the per-criterion values the score is computed from, on the judge's scale — the
    probability-weighted (expected) value where the judge's score distribution was read
    (``scoring`` ``"expected"`` or ``"exact"``), else the sampled one; the mean over the samples
    with ``samples > 1``; for pass/fail, the probability of pass (1/0 when sampled).
    ``criteria_sampled``: the integers the judge wrote in its verdict (the first sample's; 1/0 for
    pass/fail) — equal to ``criteria`` when ``scoring == "sampled"`` and ``samples == 1``.
    ``normalized``: ``criteria`` mapped to [0, 1]; ``expected``: the distribution-weighted values of
    a single read (None when sampled or averaged); ``usage`` the tokens of every request it took;
    ``raw`` the judge's text.

    (rftjudge 0.1 put the sampled integers in ``criteria``: see CHANGELOG.md.)
    """

    score: float
    criteria: dict[str, float]
    normalized: dict[str, float]
    criteria_sampled: dict[str, int] = Field(default_factory=dict)
    rationale: str = ""
    usage: Usage = Field(default_factory=Usage)
    raw: str = ""
    reasks: int = 0
    expected: dict[str, float] | None = None
    scoring: Literal["exact", "expected", "sampled"] = "sampled"
    samples: int = 1
    exact_fallbacks: int = 0
    """Criteria whose exact distribution could not be read (in-band logprobs or sampled used)."""
    guarded: str | None = None
    """Set when the guard failed a non-answer without a judge call: the guard's reason."""
    aggregate: Literal["explicit", "implicit"] | None = None
    """Set when the row was judged against its own rubric (or with chunks / implicitly)."""
    items: int = 0
    """Rubric items of the row (judged and programs); 0 on the judge-wide path."""
    items_passed: int = 0
    """Items met (pitfalls: absent), normalised score >= 0.5."""
    categories: dict[str, float] | None = None
    """Per-category mean of the items' normalised scores (pitfalls: how present)."""
    chunk_reasks: int = 0
    """Re-asks of a chunk whose verdict lacked an item id, named an unknown one, or gave a bad value."""
    requests: int = 0
    """Requests the row took on the per-row path (chunks and re-asks, exact reads excluded)."""
    clipped: bool = False
    """The weighted sum fell outside [0, 1] (pitfalls) and was clipped."""


@dataclass(frozen=True)
class _Read:
    raw: dict[str, float]
    expected: dict[str, float] | None
    rationale: str
    text: str
    usage: Usage
    reasks: int
    exact: bool = False
    exact_fallbacks: int = 0

    @property
    def values(self) -> dict[str, float]:
        """What this read scores: the expected values where read, else the sampled ones."""
        return self.raw if self.expected is None else self.expected


class RubricJudge(RowRubrics[Judgment]):
    """Score a response against weighted criteria, optionally against a reference answer.

    ``template`` replaces the bundled ``prompts/rubric.j2`` (a template string, a Path, or a bundled
    name); it receives ``prompt``, ``response``, ``reference``, ``criteria``, ``scale`` and
    ``output_schema``. ``on_error`` decides what a failed judgment becomes at the reward boundary:
    ``"abstain"`` (``None``), ``"raise"``, or a number in [0, 1].

    ``scoring="expected"`` scores each criterion by the expected value over the score tokens'
    probabilities (needs a client with logprobs; ``"auto"``, the default, uses it when the client's
    capabilities say logprobs are available), falling back — counted in
    ``stats.expected_fallbacks`` — to the sampled value where a distribution cannot be read.
    ``samples=k`` averages k sampled verdicts (for providers without logprobs; needs
    ``temperature > 0``). ``ignore_length=True`` tells the judge explicitly that length is no merit.

    ``exact`` (default: what the client's ``capabilities.prefill_choice`` allows) reads each
    criterion's distribution exactly in expected scoring: the verdict up to the score is sent back
    as a prefilled assistant turn with the next token constrained to the valid scores (one extra
    short request per criterion, sharing the verdict's prefix; see :mod:`rftjudge.judges._exact`).
    A read that fails falls back to the in-band logprobs, then to the sampled value — counted in
    ``Judgment.exact_fallbacks`` and the ``exact_fallback_rate`` metric.

    **Per-row rubrics** (see ``docs/rubrics.md``): a row's own rubric arrives through ``rubric=`` on
    ``ajudge``/``areward`` (``rubrics=`` on the batch methods) or the ``rubric_column`` of a
    trainer's data; ``criteria`` (optional then) are the judge-wide items every row also gets.
    ``aggregate="explicit"`` scores every item (weighted mean in [0, 1], pitfalls subtracting,
    clipped and counted); ``"implicit"`` shows the whole rubric and asks for one score.
    ``max_criteria=k`` sends at most k items per request (the requests of one row go together and
    share the prompt prefix). A rubric with more than ``max_rubric_items`` items, or otherwise
    unusable, fails its row with kind ``"invalid_rubric"``; an item that never gets a valid verdict
    fails it with kind ``"rubric"``.
    ``rationale`` says where the verdict's rationale goes (``"before"`` the scores, the default;
    ``"after"``; ``"none"``) and ``rationale_max_chars`` bounds it in the schema (``None``: no
    bound) so that a judge looping in its rationale still ends with a valid verdict.
    """

    @legacy_positionals("scale", "template", "on_error", after=2)
    def __init__(
        self,
        client: Client,
        criteria: Sequence[Criterion] | None = None,
        *,
        scale: ScaleSpec = (1, 5),
        template: str | Path | None = None,
        scoring: Scoring = "auto",
        samples: int = 1,
        top_logprobs: int | None = None,
        ignore_length: bool = False,
        exact: bool | None = None,
        rubric_column: str | None = "rubric",
        aggregate: Aggregate = "explicit",
        max_criteria: int | None = None,
        max_rubric_items: int = 64,
        rationale: Rationale = "before",
        rationale_max_chars: int | None = DEFAULT_RATIONALE_MAX_CHARS,
        **options: Unpack[JudgeOptions],
    ) -> None:
        self.criteria = () if criteria is None else check_criteria(criteria)
        check_row_options(aggregate, max_criteria, max_rubric_items)
        self.rubric_column = rubric_column
        self.aggregate: Aggregate = aggregate
        self.max_criteria = max_criteria
        self.max_rubric_items = max_rubric_items
        self.base_items: tuple[RubricItem, ...] = criteria_items(self.criteria)
        check_rationale(rationale, rationale_max_chars)
        self.rationale: Rationale = rationale
        self.rationale_max_chars = rationale_max_chars
        self.scale = Scale.parse(scale)
        if scoring not in ("auto", "expected", "sampled"):
            raise ConfigurationError(
                f'scoring must be "auto", "expected" or "sampled"; got {scoring!r}'
            )
        if not isinstance(samples, int) or samples < 1:
            raise ConfigurationError(f"samples must be an int >= 1; got {samples!r}")
        if scoring == "auto":
            capabilities = getattr(client, "capabilities", None)
            scoring = "expected" if getattr(capabilities, "logprobs", False) else "sampled"
        self.scoring: Literal["expected", "sampled"] = scoring
        self.samples = samples
        self.top_logprobs = (
            labels_top_logprobs(self.scale)
            if top_logprobs is None
            else max(1, min(int(top_logprobs), 20))
        )
        self.ignore_length = ignore_length
        if not options.get("name"):
            options["name"] = "_".join(["rubric", *(c.name for c in self.criteria)])
        super().__init__(client, **options)
        if samples > 1 and not self.temperature:
            raise ConfigurationError(
                "samples > 1 averages several sampled verdicts, which needs temperature > 0 "
                f"(got temperature={self.temperature!r})"
            )
        if exact and self.scoring != "expected":
            raise ConfigurationError('exact=True reads distributions: it needs scoring="expected"')
        self.exact = ExactReader(self, exact if self.scoring == "expected" else False)
        self._weights = {c.name: c.weight for c in self.criteria}
        self._total_weight = sum(self._weights.values())
        self.verdict_model = _verdict_model(self.criteria, self.scale)
        self.output_schema = _verdict_schema(
            self.criteria, self.scale, rationale, rationale_max_chars
        )
        self._schema_text = json.dumps(self.output_schema, indent=None)
        self._criteria_vars = [c.model_dump() for c in self.criteria]
        self.template = PromptTemplate(template if template is not None else "rubric.j2")
        # Render once with placeholders: a broken template fails here, not mid-training.
        if self.criteria:
            self.render("prompt", "response", "reference")
            self.render("prompt", "response", None)
        self.row_settings = RowSettings(
            scale=self.scale,
            aggregate=aggregate,
            max_criteria=max_criteria,
            expected=self.scoring == "expected",
            top_logprobs=self.top_logprobs,
            template=PromptTemplate("rubric_items.j2"),
            ignore_length=ignore_length,
            samples=samples,
            exact=self.exact if self.exact.enabled else None,
            shapes=ShapeCache(rationale=rationale, max_chars=rationale_max_chars),
        )

    def render(self, prompt: str, response: str, reference: str | None) -> Any:
        return self.template.render(
            prompt=prompt,
            response=response,
            reference=reference,
            criteria=self._criteria_vars,
            scale=self.scale,
            output_schema=self._schema_text,
            ignore_length=self.ignore_length,
            rationale=self.rationale,
        )

    async def ajudge(
        self, prompt: Any, response: Any, reference: Any = None, *, rubric: Any = None
    ) -> Judgment:
        """Judge one response (raises a :class:`~rftjudge.JudgeError` on unrecoverable failure).

        ``rubric``: this row's own rubric (a list of items, a dict, JSON or one item per line).
        """
        row = None
        if isinstance(reference, RowInput):
            rubric, row, reference = reference.rubric, reference.row, reference.reference
        per_row = (
            rubric is not None or self.aggregate != "explicit" or self.max_criteria is not None
        )
        parsed = self.rubric_of(rubric, row) if per_row or not self.criteria else None
        reason = self.non_answer(response)
        if reason is not None:
            return self._failed_by_guard(reason)
        if parsed is not None:
            texts = self.prepare(prompt, response, reference)
            outcome = await judge_row(self, self.row_settings, parsed, texts, row)
            return Judgment(**outcome.judgment_fields(self.aggregate, len(parsed.items)))
        messages = self.messages_for(prompt, response, reference, self.render)
        expected_mode = self.scoring == "expected"
        request = self.make_request(
            messages,
            self.output_schema,
            logprobs=expected_mode,
            top_logprobs=self.top_logprobs if expected_mode else 0,
        )
        if self.samples == 1:
            reads = [await self._read(request)]
        else:
            # Distinct seeds keep the samples distinct through caches and request coalescing.
            base = self.seed or 0
            outcomes = await asyncio.gather(
                *(self._read(replace(request, seed=base + i)) for i in range(self.samples)),
                return_exceptions=True,
            )
            reads = [o for o in outcomes if not isinstance(o, BaseException)]
            if not reads:
                error = outcomes[0]
                assert isinstance(error, BaseException)
                raise error
        values = {  # what the score is computed from: expected where read, else sampled
            c.name: sum(r.values[c.name] for r in reads) / len(reads) for c in self.criteria
        }
        normalized = {k: self.scale.normalise(v) for k, v in values.items()}
        score = sum(self._weights[k] * v for k, v in normalized.items()) / self._total_weight
        usage = Usage()
        for r in reads:
            usage = usage + r.usage
        first = reads[0]
        return Judgment(
            score=min(1.0, max(0.0, score)),
            criteria=values,
            normalized=normalized,
            criteria_sampled={k: int(v) for k, v in first.raw.items()},
            rationale=first.rationale,
            usage=usage,
            raw=first.text,
            reasks=sum(r.reasks for r in reads),
            expected=first.expected if len(reads) == 1 else None,
            scoring=(
                "exact"
                if any(r.exact for r in reads)
                else "expected"
                if any(r.expected for r in reads)
                else "sampled"
            ),
            samples=len(reads),
            exact_fallbacks=sum(r.exact_fallbacks for r in reads),
        )

    @in_conversation
    async def _read(self, request: ChatRequest) -> _Read:
        """One verdict: raw scores, and expected scores where the logprobs allow."""
        asked = await self._ask(request, self.verdict_model)
        verdict: Any = asked.verdict  # a model built from the criteria at run time
        raw: dict[str, float] = {}
        for criterion in self.criteria:
            value = getattr(verdict.scores, verdict_field(criterion))
            raw[criterion.name] = float(int(value)) if self.scale.binary else float(value)
        expected: dict[str, float] | None = None
        usage, exact_hits, exact_misses = asked.usage, 0, 0
        if self.scoring == "expected":
            found = expected_scores(asked.verdict_response, self.criteria, self.scale)
            if self.exact.enabled:
                exact, exact_usage = await exact_scores(
                    self.exact, asked.messages, asked.verdict_response, self.criteria, self.scale
                )
                usage = usage + exact_usage
                exact_hits = sum(v is not None for v in exact.values())
                exact_misses = len(exact) - exact_hits
                found.update({k: v for k, v in exact.items() if v is not None})
            misses = [k for k, v in found.items() if v is None]
            self.stats.expected_fallbacks += len(misses)
            if misses:
                logger.debug("rftjudge: expected score unavailable for %s; sampled used", misses)
            if len(misses) < len(found):
                expected = {k: (raw[k] if v is None else v) for k, v in found.items()}
        return _Read(
            raw=raw,
            expected=expected,
            rationale=verdict.rationale,
            text=asked.response.text,
            usage=usage,
            reasks=asked.reasks,
            exact=exact_hits > 0,
            exact_fallbacks=exact_misses,
        )

    def _failed_by_guard(self, reason: str) -> Judgment:
        """A non-answer fails every criterion: the lowest score on each, no judge call."""
        return Judgment(
            score=0.0,
            criteria={c.name: float(self.scale.low) for c in self.criteria},
            normalized={c.name: 0.0 for c in self.criteria},
            criteria_sampled={c.name: self.scale.low for c in self.criteria},
            rationale=f"[guard {self.guard.name if self.guard else ''}: {reason}] not an answer",
            guarded=reason,
        )

    def score_of(self, result: Judgment) -> float:
        return result.score

    def metrics_of(self, outcomes: Sequence[Judgment | float | BaseException]) -> dict[str, float]:
        metrics = super().metrics_of(outcomes)
        judged = [o for o in outcomes if isinstance(o, Judgment)]
        if judged:
            for criterion in self.criteria:
                values = [j.normalized[c] for j in judged if (c := criterion.name) in j.normalized]
                if values:
                    metrics[criterion.name] = sum(values) / len(values)
            if self.scoring == "expected":
                sampled = sum(j.scoring == "sampled" for j in judged)
                metrics["sampled_fallback_rate"] = sampled / len(judged)
            metrics.update(row_metrics(judged))
            read = [j for j in judged if j.guarded is None and j.aggregate is None]
            if self.exact.enabled and read:
                misses = sum(j.exact_fallbacks for j in read)
                metrics["exact_fallback_rate"] = misses / (len(read) * len(self.criteria))
        return metrics

    def __repr__(self) -> str:
        names = ", ".join(c.name for c in self.criteria)
        row = f", rubric_column={self.rubric_column!r}" if self.rubric_column else ""
        return (
            f"RubricJudge(client={self.client!r}, criteria=[{names}], scale={self.scale!r}{row}, "
            f"aggregate={self.aggregate!r})"
        )
