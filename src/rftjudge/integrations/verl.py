"""veRL: a judge as ``custom_reward_function``.

veRL imports the reward function by path and name (``reward.custom_reward_function.path`` /
``.name``) in every reward worker, so you write a small module that builds the judge and exposes
``compute_score = make_compute_score(judge, ...)`` (see ``examples/verl_reward.py``).

What veRL 0.9's reward loop expects, and what this adapter does about it:

- ``compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs)``, called with
  keywords. The prompt is not passed: the question is read from ``extra_info[question_key]``
  (default ``"question"``, what veRL's example preprocessors store) when the row has it; a row
  whose ``extra_info`` is missing, ``None``, empty or without that key is judged without the
  question (logged once per process), never refused. ``ground_truth`` may be any JSON value
  (numpy arrays from parquet included; missing or ``None``: no reference); the judge sees it as
  text. ``data_source`` is ignored.
- Async is detected with ``inspect.iscoroutinefunction``, so the default form is a plain
  ``async def`` (an object with an async ``__call__`` would be taken as sync and never awaited).
  ``sync=True`` gives a plain function for the ``remote`` manager (Ray workers, sync only).
- The result is a dict: ``score`` plus ``judge_failed`` (0.0/1.0) and, for rubric judges, one key
  per criterion (normalised to [0, 1]). veRL stacks these into ``reward_extra_info``, so every
  sample has the same keys and no value is NaN or ``None``.
- veRL cannot leave a sample out: a failed judgment becomes ``on_error`` (a number you choose; the
  judge's own numeric ``on_error`` by default), for the score and every criterion, with
  ``judge_failed=1.0``. ``on_error="raise"`` lets the error through instead — the ``naive`` manager
  then fails the step; ``rate_limited`` catches it as 0.0 with only ``error``/``acc`` keys, which
  ``RewardLoopManager`` cannot stack with the judged samples' keys (it takes the first sample's keys
  for all), so the step fails there too, with a ``KeyError``. Its ``reward.timeout`` (default 300 s)
  ends the same way (``timeout``/``acc`` keys): keep the judge's own timeouts and retries below it.
- The ``remote`` manager refuses async functions and pickles the function into Ray actors: use
  ``sync=True``. So do the legacy ``verl.workers.reward_manager`` classes (``naive`` there calls
  it synchronously); 0.9's trainers no longer use them.
- :func:`make_batch_compute_score` is the form of the legacy ``batch`` manager,
  ``compute_score(data_sources, solution_strs, ground_truths, extra_infos, **kwargs) -> list``
  (the 0.9 reward loop does not register that manager).

This module imports nothing from veRL.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, overload

from .._errors import ConfigurationError
from .._sync import run_sync
from .._text import as_text
from ..judges.base import OnError
from ._common import (
    Fallback,
    ScoringJudge,
    criterion_names,
    criterion_values,
    plain,
    resolve_fallback,
    settle,
)
from ._rubrics import attach_rubric, split_label

__all__ = ["make_batch_compute_score", "make_compute_score"]

logger = logging.getLogger("rftjudge")

_RESERVED = ("score", "judge_failed")

AsyncComputeScore = Callable[..., Awaitable[dict[str, float]]]
SyncComputeScore = Callable[..., dict[str, float]]
BatchComputeScore = Callable[..., list[dict[str, float]]]


class _Scorer:
    """The veRL → judge mapping shared by the per-sample and batch forms."""

    def __init__(self, judge: ScoringJudge, question_key: str | None, on_error: OnError | None):
        if question_key is not None and (not isinstance(question_key, str) or not question_key):
            raise ConfigurationError(
                f"question_key must be a non-empty string or None; got {question_key!r}"
            )
        self.judge = judge
        self.question_key = question_key
        self.warned = False
        self.fallback: Fallback = resolve_fallback(judge, on_error, where="veRL's compute_score")
        self.criteria = criterion_names(judge)
        clash = sorted(set(self.criteria) & set(_RESERVED))
        if clash:
            raise ConfigurationError(
                f"criterion names {clash} clash with the keys veRL's result needs "
                f"({', '.join(_RESERVED)}); rename the criteria"
            )

    def question(self, extra_info: Any) -> str:
        """The row's question, or ``""`` (judged without it) when the row has none.

        veRL rows often lack it: ``extra_info`` is ``{}`` or ``None`` for datasets whose
        preprocessing stored no question. That is logged once per process, never raised.
        """
        if self.question_key is None:
            return ""
        info = extra_info if isinstance(extra_info, Mapping) else {}
        value = plain(info.get(self.question_key))
        if value is None or value == "":
            if not self.warned:
                self.warned = True
                logger.warning(
                    "rftjudge: veRL extra_info has no %r (keys: %s): judging without the question; "
                    "store it there when preprocessing the dataset, or pass question_key=",
                    self.question_key,
                    sorted(map(str, info)),
                )
            return ""
        return value if isinstance(value, str) else as_text(value, what="prompt")

    def inputs(
        self, solution_strs: Sequence[Any], ground_truths: Sequence[Any], extra_infos: Sequence[Any]
    ) -> tuple[list[str], list[str], list[Any]]:
        questions = [self.question(info) for info in extra_infos]
        responses = [str(s) for s in solution_strs]
        references = [
            attach_rubric(self.judge, split_label(self.judge, gt, i), info, row=i)
            for i, (gt, info) in enumerate(zip(ground_truths, extra_infos, strict=True))
        ]
        return questions, responses, references

    def result(self, outcome: Any) -> dict[str, float]:
        value, failed = settle(self.judge, outcome, self.fallback)
        result = {"score": value, "judge_failed": 1.0 if failed else 0.0}
        result.update(criterion_values(self.criteria, outcome, failed, value))
        return result


@overload
def make_compute_score(
    judge: ScoringJudge,
    *,
    question_key: str | None = ...,
    on_error: OnError | None = ...,
    sync: Literal[False] = ...,
) -> AsyncComputeScore: ...


@overload
def make_compute_score(
    judge: ScoringJudge,
    *,
    question_key: str | None = ...,
    on_error: OnError | None = ...,
    sync: Literal[True],
) -> SyncComputeScore: ...


def make_compute_score(
    judge: ScoringJudge,
    *,
    question_key: str | None = "question",
    on_error: OnError | None = None,
    sync: bool = False,
) -> AsyncComputeScore | SyncComputeScore:
    """veRL's per-sample ``compute_score`` for ``judge`` (an ``async def``; ``sync=True``: a plain one).

    ``question_key``: the ``extra_info`` key holding the question, used when a row has it (None:
    never send the question).
    ``on_error``: the value of a failed sample (defaults to the judge's numeric ``on_error``;
    ``"abstain"`` is refused because veRL needs a number), or ``"raise"``.
    """
    scorer = _Scorer(judge, question_key, on_error)

    async def compute_score(
        data_source: Any = None,
        solution_str: Any = "",
        ground_truth: Any = None,
        extra_info: Any = None,
        **kwargs: Any,
    ) -> dict[str, float]:
        questions, responses, references = scorer.inputs(
            [solution_str], [ground_truth], [extra_info]
        )
        (outcome,) = await judge.ajudge_batch(questions, responses, references)
        return scorer.result(outcome)

    if not sync:
        return compute_score

    def compute_score_sync(
        data_source: Any = None,
        solution_str: Any = "",
        ground_truth: Any = None,
        extra_info: Any = None,
        **kwargs: Any,
    ) -> dict[str, float]:
        return run_sync(
            compute_score(
                data_source=data_source,
                solution_str=solution_str,
                ground_truth=ground_truth,
                extra_info=extra_info,
                **kwargs,
            )
        )

    compute_score_sync.__name__ = compute_score_sync.__qualname__ = "compute_score"
    return compute_score_sync


def make_batch_compute_score(
    judge: ScoringJudge,
    *,
    question_key: str | None = "question",
    on_error: OnError | None = None,
) -> BatchComputeScore:
    """The legacy ``batch`` manager's form: one call per batch, judged concurrently, in order."""
    scorer = _Scorer(judge, question_key, on_error)

    def compute_score(
        data_sources: Sequence[Any] | None = None,
        solution_strs: Sequence[Any] = (),
        ground_truths: Sequence[Any] | None = None,
        extra_infos: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[dict[str, float]]:
        solutions = list(solution_strs)
        n = len(solutions)
        truths = list(ground_truths) if ground_truths is not None else [None] * n
        infos = list(extra_infos) if extra_infos is not None else [{}] * n
        if len(truths) != n or len(infos) != n:
            raise ConfigurationError(
                f"veRL batch: {n} solutions but {len(truths)} ground truths and "
                f"{len(infos)} extra_infos"
            )
        questions, responses, references = scorer.inputs(solutions, truths, infos)
        outcomes = run_sync(judge.ajudge_batch(questions, responses, references))
        return [scorer.result(o) for o in outcomes]

    return compute_score
