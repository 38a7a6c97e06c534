"""Listwise judging: all completions of a prompt scored in one request, relative to each other.

GRPO learns from the differences *inside* a group, so a judge that sees the whole group can grade
on exactly that axis, at one request per group instead of one per completion (or two per pair).
Group scoring in one call exists elsewhere (ART's RULER); this judge is built around its failure
modes:

- **Mapped by id, never by position.** Each distinct completion is fenced under an opaque id (a
  digest of its text); the answer must hold exactly one score per id, which is validated — a
  missing, duplicated or unknown id is re-asked (``max_reasks``) with the validation error, and an
  answer that never validates fails its request, never shifts scores onto the wrong completions.
- **Position bias averaged out.** ``permutations=k`` asks k presentation orders concurrently:
  cyclic shifts of one content-seeded shuffle, spaced evenly (a Latin square when k = G), so a
  completion is shown at k different positions and a first-position bonus is shared out instead of
  going to whoever came first. The scores are averaged (``aggregate="mean"``) or fitted with a
  per-position effect and removed (``aggregate="debiased"``: ``score = quality + position effect
  + request effect``, least squares with a ridge on the effects). The *order sensitivity* — the
  mean spread of a completion's score across orders, on the [0, 1] reward scale — is reported per
  step (``order_sensitivity``): it measures how much the judge's verdicts depend on order at all.
- **Failures abstain explicitly.** An order whose request fails for good is dropped (counted in
  ``failed_order_rate``); when every order failed, every completion of the group gets the error
  (TRL then leaves the group out) — no completion is ever declared the winner by default.
- **Identical completions are judged once**; content-free non-answers are scored 0 by the guard
  without being shown to the judge.
- **Groups larger than ``chunk_size``** (default 8) are split per order into windows of
  ``chunk_size`` consecutive completions of that order, each window starting ``chunk_size −
  overlap`` after the previous one (``overlap = max(1, chunk_size // 4)``), the last ending at the
  last completion. Overlapping windows tie the windows' scales together: the fit's request effect
  absorbs each window's offset. With ``max_prompt_chars`` the window is shrunk until the rendered
  prompt fits; when not even two completions fit, the group fails with a clear error (kind
  ``"context"``) — nothing is ever silently cut (inputs beyond ``max_input_chars`` are shortened
  with a visible marker, as in every judge).

Scores: integers on ``scale`` (default 0–10), or letters A, B, ... (``alphabet="letters"``, one
token per label: exact distributions stay exact on wide scales). With logprobs, each score is the
expected value over the valid labels at its position in the answer (``scoring="expected"``, the
default when the client has logprobs); where the client can prefill and constrain
(``Capabilities.prefill_choice``) the distribution is read exactly (``exact=``): one extra one-token
request per completion and order, sharing the answer's prefix. Every fallback is counted.

The reward is the fitted score mapped to [0, 1]. Prompt layout: everything the orders of a group
share (instructions, prompt, reference, criteria) comes first and the candidates last, and the
orders of a group are sent together, so a server with prefix caching computes the shared part once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from typing_extensions import Unpack

from .._affinity import in_conversation
from .._content import content_size
from .._deprecation import legacy_positionals
from .._errors import ConfigurationError, JudgeError, VerdictError
from .._sinks import MetricsSinkLike
from .._types import ChatResponse, Message, Usage
from ..clients._protocol import Client
from ..rewards import GroupBy, RewardFunc
from ..templates import PromptTemplate
from ._criteria import Criterion, Scale, ScaleSpec, check_criteria
from ._distribution import labels_top_logprobs
from ._exact import ExactReader
from ._group import GroupInfo, GroupReward, group_metrics, seeded_order
from ._inputs import group_inputs
from ._listwise_design import (
    Answer,
    Outcome,
    Request,
    check_settings,
    combine,
    cyclic_shifts,
    opaque_ids,
    windows,
)
from ._listwise_verdict import (
    Alphabet,
    ScoreVocabulary,
    _ContextError,
    exact_scores,
    expected_scores,
    output_schema,
    verdict_model,
)
from ._options import JudgeOptions, Scoring
from ._rationale import DEFAULT_RATIONALE_MAX_CHARS, Rationale, check_rationale
from .base import BaseJudge

__all__ = ["ListwiseJudge", "ListwiseResult"]

logger = logging.getLogger("rftjudge")

Aggregate = Literal["mean", "debiased"]


class ListwiseResult(BaseModel):
    """A single response scored on its own (``ajudge``): ``score`` in [0, 1], the raw score of each
    order asked, the judge's rationale and the usage."""

    score: float
    raw_scores: tuple[float, ...] = ()
    rationale: str = ""
    usage: Usage = Field(default_factory=Usage)


class ListwiseJudge(BaseJudge[ListwiseResult]):
    """Score all completions of a prompt relative to each other (see the module docstring).

    ``criteria`` (optional) name what "better" means; ``scale`` is the integer score range (default
    0–10); ``permutations`` how many presentation orders to ask and combine (default 3);
    ``aggregate`` how (``"mean"`` or ``"debiased"``); ``chunk_size`` the most completions per
    request; ``max_prompt_chars`` an optional budget for a rendered request. ``template`` replaces
    the bundled ``prompts/listwise.j2``. ``rationale`` (``"before"`` the scores, the default;
    ``"after"``; ``"none"``) and ``rationale_max_chars`` as for :class:`~rftjudge.RubricJudge`.
    """

    @legacy_positionals("scale", "permutations", "on_error", after=2)
    def __init__(
        self,
        client: Client,
        criteria: Sequence[Criterion] | None = None,
        *,
        scale: ScaleSpec = (0, 10),
        permutations: int = 3,
        template: str | Path | None = None,
        aggregate: Aggregate = "debiased",
        alphabet: Alphabet = "digits",
        chunk_size: int = 8,
        max_prompt_chars: int | None = None,
        scoring: Scoring = "auto",
        exact: bool | None = None,
        ridge: float = 1.0,
        rationale: Rationale = "before",
        rationale_max_chars: int | None = DEFAULT_RATIONALE_MAX_CHARS,
        **options: Unpack[JudgeOptions],
    ) -> None:
        self.criteria = check_criteria(criteria) if criteria else ()
        self.scale = Scale.parse(scale)
        if self.scale.binary:
            raise ConfigurationError("a listwise judge needs an integer scale, not pass/fail")
        check_settings(permutations, aggregate, alphabet, chunk_size, max_prompt_chars, ridge)
        if scoring not in ("auto", "expected", "sampled"):
            raise ConfigurationError(
                f'scoring must be "auto", "expected" or "sampled"; got {scoring!r}'
            )
        check_rationale(rationale, rationale_max_chars)
        self.rationale: Rationale = rationale
        self.rationale_max_chars = rationale_max_chars
        if not options.get("name"):
            options["name"] = "listwise"
        options.setdefault("max_tokens", 2048)  # one verdict holds a score per candidate
        super().__init__(client, **options)
        capabilities = getattr(client, "capabilities", None)
        if scoring == "auto":
            scoring = "expected" if getattr(capabilities, "logprobs", False) else "sampled"
        if exact and scoring != "expected":
            raise ConfigurationError('exact=True reads distributions: it needs scoring="expected"')
        self.scoring: Literal["expected", "sampled"] = scoring
        self.exact = ExactReader(self, exact if scoring == "expected" else False)
        self.permutations = permutations
        self.aggregate: Aggregate = aggregate
        self.alphabet: Alphabet = alphabet
        self.chunk_size = chunk_size
        self.max_prompt_chars = max_prompt_chars
        self.ridge = float(ridge)
        vocabulary = ScoreVocabulary(self.scale, alphabet)
        self.label_values = vocabulary.label_values
        self.labels = vocabulary.labels
        self._labels = vocabulary.distribution_labels
        self._entry_model = vocabulary.entry_model
        self._score_schema = vocabulary.score_schema
        self._criteria_vars = [c.model_dump() for c in self.criteria]
        self.template = PromptTemplate(template if template is not None else "listwise.j2")
        # Render once with placeholders: a broken template fails here, not mid-training.
        self.render("prompt", None, [("CAAA", "a"), ("CBBB", "b")])
        self.render("prompt", "reference", [("CAAA", "a")])

    # -- prompt and answer -----------------------------------------------------------------------

    def output_schema(self, ids: Sequence[str]) -> dict[str, Any]:
        """The verdict schema for one request: exactly ``len(ids)`` entries, ids from ``ids``."""
        return output_schema(ids, self._score_schema, self.rationale, self.rationale_max_chars)

    def render(
        self, prompt: str, reference: str | None, candidates: Sequence[tuple[str, str]]
    ) -> tuple[Message, ...]:
        ids = [cid for cid, _ in candidates]
        return self.template.render(
            prompt=prompt,
            reference=reference,
            criteria=self._criteria_vars,
            labels=self.labels,
            candidates=[{"id": cid, "text": text} for cid, text in candidates],
            ids=ids,
            output_schema=json.dumps(self.output_schema(ids)),
            rationale=self.rationale,
        )

    def _verdict_model(self, ids: Sequence[str]) -> type[BaseModel]:
        """A verdict model that accepts exactly one score per id of ``ids``."""
        return verdict_model(ids, self._entry_model)

    # -- the group ---------------------------------------------------------------------------------

    async def ajudge_group(
        self, prompt: Any, responses: Sequence[Any], reference: Any = None
    ) -> list[float | BaseException]:
        """One reward per response in [0, 1] (a :class:`GroupReward`), or the error that left the
        group without scores (the same for every completion of a failed group; counted)."""
        results, _ = await self._group(prompt, responses, reference)
        self.stats.judgments += len(results)
        for result in results:
            if isinstance(result, BaseException):
                self.stats.failures[
                    result.kind if isinstance(result, JudgeError) else "internal"
                ] += 1
        return results

    async def _group(
        self, prompt: Any, responses: Sequence[Any], reference: Any
    ) -> tuple[list[float | BaseException], Outcome]:
        prompt_text, rendered, ref = group_inputs(self, prompt, responses, reference)
        texts = [t if isinstance(t, str) else "" for t in rendered]  # failed items: set back below
        guarded = {t: reason for t in dict.fromkeys(texts) if (reason := self.non_answer(t))}
        unique = [t for t in dict.fromkeys(texts) if t not in guarded]
        outcome = (
            await self._score(prompt_text, [self.clip(t) for t in unique], ref)
            if unique
            else Outcome([], None, "")
        )
        info = GroupInfo(size=len(texts), distinct=len(unique), **outcome.info_fields)
        index = {t: k for k, t in enumerate(unique)}
        results: list[float | BaseException] = []
        for text in texts:
            if text in guarded:
                reason = guarded[text]
                results.append(GroupReward(0.0, info, f"[guard: {reason}] not an answer", reason))
                continue
            value = outcome.scores[index[text]]
            if value is None:
                results.append(
                    outcome.error or VerdictError("the completion was in no answered request")
                )
                continue
            reward = min(1.0, max(0.0, self.scale.normalise(value)))
            results.append(GroupReward(reward, info, outcome.rationale))
        results = [
            t if isinstance(t, BaseException) else r for t, r in zip(rendered, results, strict=True)
        ]
        return results, outcome

    async def _score(self, prompt: str, unique: list[str], reference: str | None) -> Outcome:
        """Ask every order (concurrently) and combine their scores."""
        n = len(unique)
        ids = opaque_ids(unique)
        try:
            size = self._window_size(prompt, reference, unique, ids)
        except _ContextError as exc:
            logger.warning("rftjudge: %s: %s", self.name, exc)
            return Outcome([None] * n, exc, "")
        base = seeded_order(n, "listwise", self.seed, prompt, *unique)
        shifts = cyclic_shifts(n, self.permutations, connected=self.aggregate == "debiased")
        requests = [
            Request(order, window)
            for order, shift in enumerate(shifts)
            for window in windows(base[shift:] + base[:shift], size)
        ]
        answers = await asyncio.gather(
            *(self._ask_request(prompt, reference, unique, ids, r) for r in requests)
        )
        return self._combine(n, requests, answers, len(shifts))

    @in_conversation
    async def _ask_request(
        self,
        prompt: str,
        reference: str | None,
        unique: Sequence[str],
        ids: Sequence[str],
        request: Request,
    ) -> Answer | BaseException:
        shown = [ids[k] for k in request.items]
        messages = self.render(prompt, reference, [(ids[k], unique[k]) for k in request.items])
        expected_mode = self.scoring == "expected"
        chat = self.make_request(
            messages,
            self.output_schema(shown),
            logprobs=expected_mode,
            top_logprobs=labels_top_logprobs(self.scale) if expected_mode else 0,
        )
        try:
            asked = await self._ask(chat, self._verdict_model(shown))
        except (asyncio.CancelledError, ConfigurationError):
            raise
        except JudgeError as exc:
            logger.warning(
                "rftjudge: %s: a listwise order failed (%s): %s", self.name, exc.kind, exc
            )
            return exc
        except Exception as exc:  # a bug must not crash a days-long training run either
            logger.exception("rftjudge: %s: a listwise order failed unexpectedly", self.name)
            return exc
        verdict: Any = asked.verdict
        by_id = {e.id: self._value(e.score) for e in verdict.scores}
        if expected_mode:
            found = self._expected(asked.verdict_response, shown)
            usage, reads, misses = asked.usage, 0, 0
            if self.exact.enabled:
                exact, usage_x, reads = await self._exact(
                    asked.messages, asked.verdict_response, shown
                )
                usage = usage + usage_x
                misses = sum(v is None for v in exact.values())
                found.update({k: v for k, v in exact.items() if v is not None})
            fallbacks = [cid for cid in shown if found.get(cid) is None]
            self.stats.expected_fallbacks += len(fallbacks)
            if fallbacks:
                logger.debug(
                    "rftjudge: %s: expected score unavailable for %s", self.name, fallbacks
                )
            by_id.update({k: v for k, v in found.items() if v is not None})
        else:
            usage, reads, misses = asked.usage, 0, 0
        position = {cid: k for cid, k in zip(shown, request.items, strict=True)}
        return Answer(
            values={position[cid]: value for cid, value in by_id.items()},
            rationale=str(verdict.rationale),
            usage=usage,
            reasks=asked.reasks,
            exact_reads=reads,
            exact_fallbacks=misses,
        )

    def _value(self, label: Any) -> float:
        return self.label_values[str(label)]

    def _expected(self, response: ChatResponse, ids: Sequence[str]) -> dict[str, float | None]:
        """Each id's expected score from the answer's own logprobs (None where unreadable)."""
        return expected_scores(response, ids, self._labels)

    async def _exact(
        self, messages: Sequence[Message], answer: ChatResponse, ids: Sequence[str]
    ) -> tuple[dict[str, float | None], Usage, int]:
        """Each id's expected score read by prefill + constrained choice."""
        return await exact_scores(self.exact, messages, answer, ids, self._labels)

    def _combine(
        self,
        n: int,
        requests: Sequence[Request],
        answers: Sequence[Answer | BaseException],
        orders: int,
    ) -> Outcome:
        return combine(
            n,
            requests,
            answers,
            orders,
            span=self.scale.high - self.scale.low,
            positions=self.aggregate == "debiased",
            ridge=self.ridge,
            max_reasks=self.max_reasks,
        )

    def _window_size(
        self, prompt: str, reference: str | None, unique: Sequence[str], ids: Sequence[str]
    ) -> int:
        """The most completions per request: ``chunk_size``, shrunk to fit ``max_prompt_chars``."""
        size = min(self.chunk_size, len(unique))
        if self.max_prompt_chars is None:
            return size
        base = _chars(self.render(prompt, reference, []))
        # What one more candidate adds: its text plus the id list, fence and schema entry.
        costs = sorted(
            (
                _chars(self.render(prompt, reference, [(cid, text)])) - base
                for cid, text in zip(ids, unique, strict=True)
            ),
            reverse=True,
        )
        while size >= 1 and base + sum(costs[:size]) > self.max_prompt_chars:
            size -= 1
        if size < min(2, len(unique)):
            raise _ContextError(
                f"a request with {min(2, len(unique))} of the longest completions needs "
                f"{base + sum(costs[:2])} characters, more than max_prompt_chars="
                f"{self.max_prompt_chars}; raise it or shorten the completions (max_input_chars)"
            )
        return size

    # -- one response on its own ---------------------------------------------------------------

    async def ajudge(self, prompt: Any, response: Any, reference: Any = None) -> ListwiseResult:
        """Score one response on its own (a group of one; ``ajudge_safe`` does the counting)."""
        results, outcome = await self._group(prompt, [response], reference)
        result = results[0]
        if isinstance(result, BaseException):
            raise result
        info = result.info if isinstance(result, GroupReward) else None
        return ListwiseResult(
            score=float(result),
            raw_scores=tuple(outcome.raw[0]) if outcome.raw else (),
            rationale=getattr(result, "rationale", ""),
            usage=info.usage if info is not None else Usage(),
        )

    def score_of(self, result: ListwiseResult) -> float:
        return result.score

    def metrics_of(
        self, outcomes: Sequence[ListwiseResult | float | BaseException]
    ) -> dict[str, float]:
        """The base metrics plus the per-step group figures (``order_sensitivity``,
        ``requests_per_group``, ``tokens_per_group``, ``failed_order_rate``, ...)."""
        metrics = super().metrics_of(outcomes)
        metrics.update(group_metrics(outcomes))
        return metrics

    def as_reward_func(
        self,
        name: str | None = None,
        reference_column: str = "reference",
        *,
        metrics_sink: MetricsSinkLike | None = None,
        group_by: GroupBy = "auto",
    ) -> RewardFunc:
        """TRL reward function scoring each group's completions together (picklable; groups
        found per ``group_by``, see :class:`rftjudge.rewards.GroupRewardFunction`)."""
        from ..rewards import trl_group_reward_func

        return trl_group_reward_func(
            self,
            name=name,
            reference_column=reference_column,
            metrics_sink=metrics_sink,
            group_by=group_by,
        )

    def __repr__(self) -> str:
        return (
            f"ListwiseJudge(client={self.client!r}, permutations={self.permutations}, "
            f"scale={self.scale!r})"
        )


def _chars(messages: Sequence[Message]) -> int:
    return sum(content_size(m.content) for m in messages)
