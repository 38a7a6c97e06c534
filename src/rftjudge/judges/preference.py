"""Preference judging: which of two responses is better, asked in both orders.

Position bias is the best-documented failure of LLM judges: many prefer whichever answer is shown
first. With ``swap=True`` each comparison is asked twice, concurrently — (A, B) and (B, A) — and
reconciled: agreeing orders give the winner, disagreeing orders give a tie and count as inconsistent.

``prob_a`` is P(A beats B), with a tie worth half. When the client returns token logprobs it is read
from the probabilities of the label tokens at the position where the label was written (valid labels
only, renormalised) and averaged over both orders; otherwise it follows the reconciled label (1, 0 or
0.5).

Rewards: against a reference (``reward(prompt, response, reference)`` = P(response beats reference)),
or within a GRPO group (``areward_group`` / ``as_reward_func(mode="group")``), which gives graded
rewards where absolute scores tie:

- ``group_reward="bradley_terry"`` (default): Bradley–Terry strengths fitted to every comparison
  made (MAP with a weak prior, :mod:`._bradley_terry`), mapped to [0, 1] as the mean predicted
  probability of beating each other completion of the group. Unlike win rates, these stay
  comparable when the schedule is sparse (completions met different opponents): on
  ``benchmarks/pairwise_estimators.md`` the default circular schedule reaches Spearman 0.998 / 1.000
  (without / with a position bias) where win rates reach 0.946 / 0.957 from the same comparisons;
- ``group_reward="win_rate"`` (the default before 0.2): each completion's mean ``prob_a`` over its
  comparisons — equal to Bradley–Terry's order only when every pair is compared.

Which pairs are compared is ``schedule=`` (``"auto"``, ``"all_pairs"``, ``"circular"``,
``"adaptive"``; costs in :mod:`._schedules`). Every group outcome is a
:class:`~rftjudge.judges._group.GroupReward` carrying the group's comparisons and swap-disagreements,
so that ``metrics_of`` logs ``swap_consistency`` per training step — pairs whose orders disagree count
as ties, never skipped silently.

With a client whose capabilities include ``prefill_choice`` the label probabilities are read
exactly (``exact=``, see :mod:`._exact`): one extra one-token request per order.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Sequence
from typing import Any, Literal

from typing_extensions import Unpack

from .._affinity import in_conversation
from .._content import carries_image
from .._deprecation import legacy_positionals
from .._errors import ConfigurationError, JudgeError
from .._sinks import MetricsSinkLike
from .._text import as_text
from .._types import ChatResponse, Message, Usage
from ..clients._protocol import Client
from ..parsing import json_value_offset
from ..rewards import GroupBy, RewardFunc
from ..templates import PromptTemplate
from ._criteria import Criterion, check_criteria
from ._distribution import Labels, exact, in_band
from ._exact import ExactReader
from ._group import group_metrics
from ._inputs import group_inputs
from ._options import UNSET, JudgeOptions, Scoring, Unset, scoring_from_logprobs
from ._preference_group import GroupRewardMode, group_values, tournament
from ._preference_verdict import (
    _LABEL_PROB,
    Label,
    Preference,
    _NoReference,
    _Order,
    _StrictVerdict,
    _Verdict,
)
from ._rationale import DEFAULT_RATIONALE_MAX_CHARS, Rationale, check_rationale, verdict_schema
from ._schedules import SCHEDULES, Schedule
from .base import BaseJudge

__all__ = ["Preference", "PreferenceJudge"]


class PreferenceJudge(BaseJudge[Preference]):
    """Compare two responses with position-swap debiasing.

    ``criteria`` (optional) name what "better" means; ``allow_ties=False`` forces the judge to pick a
    side (ties can still result from disagreeing orders). ``scoring``: ``"expected"`` reads P(A wins)
    from the label's logprobs, ``"sampled"`` takes the written label, ``"auto"`` (default) expected
    where the client reports logprobs (``use_logprobs=`` is the deprecated spelling).

    Group mode: ``group_reward`` (``"bradley_terry"``, the default, or ``"win_rate"``), ``schedule`` (which pairs;
    ``comparisons_per_completion`` is k of ``"circular"``/``"auto"`` and the number of rounds of
    ``"adaptive"``), ``bt_prior_sd`` (the Bradley–Terry prior's spread). ``exact``: read label
    probabilities by prefill + constrained choice (default: when the client can).
    ``rationale`` (``"before"`` the winner, the default; ``"after"``; ``"none"``) and
    ``rationale_max_chars`` as for :class:`~rftjudge.RubricJudge` (see :mod:`._rationale`).
    """

    @legacy_positionals("swap", "allow_ties", "on_error", after=2)
    def __init__(
        self,
        client: Client,
        criteria: Sequence[Criterion] | None = None,
        *,
        swap: bool = True,
        allow_ties: bool = True,
        template: str | None = None,
        scoring: Scoring = "auto",
        comparisons_per_completion: int | None = None,
        group_reward: GroupRewardMode = "bradley_terry",
        schedule: Schedule = "auto",
        bt_prior_sd: float = 4.0,
        exact: bool | None = None,
        rationale: Rationale = "before",
        rationale_max_chars: int | None = DEFAULT_RATIONALE_MAX_CHARS,
        use_logprobs: bool | Unset | None = UNSET,
        **options: Unpack[JudgeOptions],
    ) -> None:
        self.criteria = check_criteria(criteria) if criteria else ()
        check_rationale(rationale, rationale_max_chars)
        self.rationale: Rationale = rationale
        self.rationale_max_chars = rationale_max_chars
        if not isinstance(use_logprobs, Unset):
            scoring = scoring_from_logprobs(use_logprobs, "PreferenceJudge")
        if scoring not in ("auto", "expected", "sampled"):
            raise ConfigurationError(
                f'scoring must be "auto", "expected" or "sampled"; got {scoring!r}'
            )
        if not options.get("name"):
            options["name"] = "preference"
        super().__init__(client, **options)
        if comparisons_per_completion is not None and comparisons_per_completion < 1:
            raise ConfigurationError("comparisons_per_completion must be >= 1")
        if group_reward not in ("win_rate", "bradley_terry"):
            raise ConfigurationError(
                f'group_reward must be "win_rate" or "bradley_terry"; got {group_reward!r}'
            )
        if schedule not in SCHEDULES:
            raise ConfigurationError(
                f"schedule must be one of {', '.join(SCHEDULES)}; got {schedule!r}"
            )
        if not (isinstance(bt_prior_sd, int | float) and 0 < bt_prior_sd < float("inf")):
            raise ConfigurationError(f"bt_prior_sd must be a number > 0; got {bt_prior_sd!r}")
        self.group_reward: GroupRewardMode = group_reward
        self.schedule: Schedule = schedule
        self.bt_prior_sd = float(bt_prior_sd)
        self.swap = bool(swap)
        self.allow_ties = bool(allow_ties)
        self.comparisons_per_completion = comparisons_per_completion
        if scoring == "auto":
            capabilities = getattr(client, "capabilities", None)
            scoring = "expected" if getattr(capabilities, "logprobs", False) else "sampled"
        self.scoring: Literal["expected", "sampled"] = scoring
        self.exact = ExactReader(self, exact)
        self.labels: tuple[Label, ...] = ("A", "B", "tie") if allow_ties else ("A", "B")
        self._verdict_model = _Verdict if allow_ties else _StrictVerdict
        self.output_schema: dict[str, Any] = verdict_schema(
            rationale,
            rationale_max_chars,
            "winner",
            {"type": "string", "enum": list(self.labels)},
        )
        self._schema_text = json.dumps(self.output_schema)
        self._criteria_vars = [c.model_dump() for c in self.criteria]
        self.template = PromptTemplate(template if template is not None else "preference.j2")
        self.render("prompt", "a", "b")  # a broken template fails here, not mid-training
        self.comparisons = 0
        self.inconsistent = 0

    @property
    def use_logprobs(self) -> bool:
        """Deprecated spelling of ``scoring == "expected"``."""
        return self.scoring == "expected"

    @property
    def _expected(self) -> bool:
        return self.scoring == "expected"

    def render(self, prompt: str, response_a: str, response_b: str) -> Any:
        return self.template.render(
            prompt=prompt,
            response_a=response_a,
            response_b=response_b,
            criteria=self._criteria_vars,
            allow_ties=self.allow_ties,
            output_schema=self._schema_text,
            rationale=self.rationale,
        )

    # -- one comparison --------------------------------------------------------------------------

    async def acompare(self, prompt: Any, response_a: Any, response_b: Any) -> Preference:
        """Compare two responses (both orders concurrently when ``swap``)."""
        if self.view is not None or carries_image([prompt, response_a, response_b]):
            prompt_text, rendered, _ = group_inputs(self, prompt, [response_a, response_b], None)
            a, b = (self.clip(_text_or_raise(t)) for t in rendered)
        else:
            prompt_text = self.clip(as_text(prompt, what="prompt"))
            a = self.clip(as_text(response_a, what="response_a"))
            b = self.clip(as_text(response_b, what="response_b"))
        if self.swap:
            first, second = await asyncio.gather(
                self._one_order(prompt_text, a, b), self._one_order(prompt_text, b, a)
            )
            orders = [first, second.flipped()]
        else:
            orders = [await self._one_order(prompt_text, a, b)]
        labels = tuple(o.label for o in orders)
        consistent = None if len(orders) == 1 else labels[0] == labels[1]
        winner: Label = labels[0] if consistent is not False else "tie"
        from_logprobs = all(o.from_logprobs for o in orders)
        if from_logprobs:
            prob_a = sum(o.prob_a for o in orders) / len(orders)
        else:
            prob_a = _LABEL_PROB[winner]
        self.comparisons += 1
        self.inconsistent += consistent is False
        usage = Usage()
        for o in orders:
            usage = usage + o.usage
        return Preference(
            winner=winner,
            prob_a=min(1.0, max(0.0, prob_a)),
            consistent=consistent,
            rationale=orders[0].rationale,
            usage=usage,
            orders=labels,
            from_logprobs=from_logprobs,
            raw=tuple(o.text for o in orders),
        )

    @in_conversation
    async def _one_order(self, prompt: str, a: str, b: str) -> _Order:
        """The verdict of one presentation order (A shown first)."""
        request = self.make_request(
            self.render(prompt, a, b),
            self.output_schema,
            logprobs=self._expected,
            top_logprobs=5 if self._expected else 0,
        )
        asked = await self._ask(request, self._verdict_model)
        label: Label = asked.verdict.winner
        usage = asked.usage
        probs: dict[Label, float] | None = None
        if self.exact.enabled:
            probs, read_usage = await self._exact_probs(asked.messages, asked.verdict_response)
            usage = usage + read_usage
        if probs is None and self._expected:
            probs = self._label_probs(asked.verdict_response)
        if probs is None:
            prob_a, from_logprobs = _LABEL_PROB[label], False
        else:
            prob_a, from_logprobs = probs.get("A", 0.0) + 0.5 * probs.get("tie", 0.0), True
        return _Order(
            label, prob_a, from_logprobs, asked.verdict.rationale, asked.response.text, usage
        )

    async def _exact_probs(
        self, messages: Sequence[Message], answer: ChatResponse
    ) -> tuple[dict[Label, float] | None, Usage]:
        """The label distribution read by prefill + constrained choice (see :mod:`._exact`)."""
        offset = json_value_offset(answer.text, "winner")
        return await exact(self.exact, messages, answer, offset, self._labels, what="winner")

    def _label_probs(self, response: ChatResponse) -> dict[Label, float] | None:
        offset = json_value_offset(response.text, "winner") if response.logprobs else None
        return in_band(response, offset, self._labels)

    @functools.cached_property
    def _labels(self) -> Labels[Label]:
        return Labels.of(self._valid_labels(), list(self.labels))

    def _valid_labels(self) -> dict[str, Label]:
        valid: dict[str, Label] = {label: label for label in self.labels}
        if self.allow_ties:
            valid.update({"t": "tie", "ti": "tie", "Tie": "tie"})
        return valid

    # -- BaseJudge interface: judged against a reference ----------------------------------------

    async def ajudge(self, prompt: Any, response: Any, reference: Any = None) -> Preference:
        if reference is None:
            raise _NoReference("no reference to compare the response against")
        # A non-answer loses to any answer without a judge call — on either side, since in group
        # mode the "reference" is another completion, which may be the master key.
        reason = self.non_answer(response)
        other = self.non_answer(reference)
        if reason is not None or other is not None:
            prob_a = 0.5 if reason is not None and other is not None else (0.0 if reason else 1.0)
            winner: Label = "tie" if prob_a == 0.5 else ("B" if reason else "A")
            return Preference(
                winner=winner,
                prob_a=prob_a,
                consistent=None,
                rationale=f"[guard: not an answer: {'response' if reason else 'reference'}]",
                guarded=reason or f"reference_{other}",
            )
        return await self.acompare(prompt, response, reference)

    def compare(self, prompt: Any, response_a: Any, response_b: Any) -> Preference:
        """Synchronous :meth:`acompare`."""
        from .._sync import run_sync

        return run_sync(self.acompare(prompt, response_a, response_b))

    def score_of(self, result: Preference) -> float:
        return result.prob_a

    def metrics_of(
        self, outcomes: Sequence[Preference | float | BaseException]
    ) -> dict[str, float]:
        metrics = super().metrics_of(outcomes)
        judged = [o for o in outcomes if isinstance(o, Preference)]
        swapped = [o for o in judged if o.consistent is not None]
        if swapped:
            metrics["inconsistency_rate"] = sum(not o.consistent for o in swapped) / len(swapped)
        if judged:
            metrics["tie_rate"] = sum(o.winner == "tie" for o in judged) / len(judged)
        metrics.update(group_metrics(outcomes))  # group mode: per-step group figures
        if self.exact.enabled and self.exact.reads:  # since the judge was built
            metrics["exact_fallback_rate"] = self.exact.fallbacks / self.exact.reads
        return metrics

    @property
    def inconsistency_rate(self) -> float:
        """Share of swapped comparisons so far whose two orders disagreed."""
        return self.inconsistent / self.comparisons if self.comparisons else 0.0

    # -- group mode ----------------------------------------------------------------------------

    async def areward_group(
        self, prompt: Any, responses: Sequence[Any], reference: Any = None
    ) -> list[float | None]:
        """Each response's reward relative to the others of the same prompt (see
        :meth:`ajudge_group`)."""
        outcomes = await self.ajudge_group(prompt, responses, reference)
        return [self.reward_of(o) for o in outcomes]

    async def ajudge_group(
        self, prompt: Any, responses: Sequence[Any], reference: Any = None
    ) -> list[float | BaseException]:
        """Per-response group rewards (or the exception that left a response without any).

        The pairs compared follow ``schedule`` (by default all pairs for up to 5 distinct
        completions, else a circular schedule with ``comparisons_per_completion`` (4) each).
        Identical responses share a result. A group of one falls back to the reference (or
        abstains without one). A completion none of whose comparisons succeeded gets the error.
        """
        failed: list[BaseException | None] = [None] * len(responses)
        if self.view is not None:  # trajectories: the shared steps once, beside the prompt
            prompt, rendered, _ = group_inputs(self, prompt, responses, None)
            failed = [t if isinstance(t, BaseException) else None for t in rendered]
            texts = [t if isinstance(t, str) else "" for t in rendered]
        else:
            texts = [as_text(r, what="completion") for r in responses]
        if any(failed):  # a malformed trajectory fails alone; the others are compared
            for error in failed:
                if isinstance(error, JudgeError):
                    self.stats.failures[error.kind] += 1
            kept = [t for t, f in zip(texts, failed, strict=True) if f is None]
            values = iter(await self.ajudge_group(prompt, kept, reference) if kept else [])
            return [f if f is not None else next(values) for f in failed]
        unique = list(dict.fromkeys(texts))
        if len(unique) < 2:
            if reference is None:
                err = _NoReference("group has a single distinct completion and no reference")
                self.stats.failures[err.kind] += 1
                return [err] * len(texts)
            single = await self.ajudge_safe(prompt, unique[0], reference)
            value: float | BaseException = (
                single if isinstance(single, BaseException) else single.prob_a
            )
            return [value] * len(texts)
        results = await self._tournament(prompt, unique)
        per_unique = group_values(
            texts, unique, results, group_reward=self.group_reward, prior_sd=self.bt_prior_sd
        )
        index = {text: k for k, text in enumerate(unique)}
        return [per_unique[index[t]] for t in texts]

    async def _tournament(
        self, prompt: Any, unique: Sequence[str]
    ) -> list[tuple[int, int, Preference | BaseException]]:
        """Run the schedule: every comparison made, as (i, j, outcome)."""

        async def play(pairs: Sequence[tuple[int, int]]) -> list[Any]:
            return list(
                await asyncio.gather(
                    *(self.ajudge_safe(prompt, unique[i], unique[j]) for i, j in pairs)
                )
            )

        return await tournament(
            play,
            self.schedule,
            unique,
            comparisons_per_completion=self.comparisons_per_completion,
            seed=self.seed,
            prior_sd=self.bt_prior_sd,
        )

    def as_reward_func(
        self,
        name: str | None = None,
        reference_column: str = "reference",
        mode: Literal["reference", "group"] = "reference",
        *,
        metrics_sink: MetricsSinkLike | None = None,
        group_by: GroupBy = "auto",
    ) -> RewardFunc:
        """TRL reward function (picklable): P(completion beats the reference column), or with
        ``mode="group"`` each completion's ``group_reward`` within its group (groups found per
        ``group_by``, see :class:`rftjudge.rewards.GroupRewardFunction`)."""
        from ..rewards import trl_group_reward_func, trl_reward_func

        if mode not in ("reference", "group"):
            raise ConfigurationError(f'mode must be "reference" or "group"; got {mode!r}')
        if mode == "reference":
            return trl_reward_func(
                self, name=name, reference_column=reference_column, metrics_sink=metrics_sink
            )
        return trl_group_reward_func(
            self,
            name=name,
            reference_column=reference_column,
            metrics_sink=metrics_sink,
            group_by=group_by,
        )

    def __repr__(self) -> str:
        return f"PreferenceJudge(client={self.client!r}, swap={self.swap})"


def _text_or_raise(item: str | BaseException) -> str:
    if isinstance(item, BaseException):
        raise item
    return item
