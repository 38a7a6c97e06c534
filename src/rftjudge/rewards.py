"""Reward-function adapters: a judge as TRL's ``reward_funcs`` entry.

TRL (``GRPOTrainer``, ``RLOOTrainer``) calls reward functions with keywords only —
``prompts``, ``completions``, ``completion_ids`` and every other dataset column as a list aligned with
the completions, plus ``trainer_state`` / ``log_metric`` / ``log_extra`` in recent versions — and
expects one ``float | None`` per completion. ``None`` means "no reward for this sample": since TRL
1.6 a row where every reward function abstained gets advantage 0 instead of a made-up score.
``AsyncGRPOTrainer`` (``trl.experimental.async_grpo``) calls the same functions once per whole GRPO
group, in a *spawned* child process, with the completions and the dataset's columns only.

What is returned is therefore an instance of a module-level class with an ``async __call__``:

- it survives plain :mod:`pickle` and a ``spawn`` start (the judge inside pickles as a replay of its
  constructor, :mod:`rftjudge._rebuild`: the child rebuilds its own pools; ``judge.stats`` and the
  client's counters are per process);
- it carries ``__name__``, which TRL logs it under (``rewards/<name>/mean``);
- TRL ≥ 1.14's ``is_async_callable`` sees the async ``__call__``, so a batch's judge calls run
  concurrently on TRL's event loop. On Python ≥ 3.12 it is also marked as a coroutine function
  (:func:`inspect.markcoroutinefunction`), which TRL 0.27–1.13 and veRL's
  ``inspect.iscoroutinefunction`` check need; on Python 3.10/3.11 with those versions use
  ``rftjudge.integrations.trl.sync_reward_func``.

Metrics go to TRL's ``log_metric`` when the call carries it, else to ``metrics_sink`` (a callable, a
JSONL path or a logger, :mod:`rftjudge._sinks`), else nowhere (``judge.stats`` still counts).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from ._errors import ConfigurationError
from ._reward_groups import _TRAINER_KWARGS, GroupBy, group_rows
from ._reward_inputs import _inputs, _judged, judged_completion
from ._reward_metrics import _call_metrics
from ._sinks import MetricsSink, MetricsSinkLike, metrics_sink
from ._text import as_text, completion_text, reference_text, safe_name

__all__ = [
    "BatchJudge",
    "GroupBy",
    "GroupJudge",
    "GroupRewardFunction",
    "ItemRewardFunction",
    "RewardFunc",
    "RewardFunction",
    "as_text",
    "completion_text",
    "group_rows",
    "judged_completion",
    "reference_text",
    "trl_group_reward_func",
    "trl_item_reward_func",
    "trl_reward_func",
]

logger = logging.getLogger("rftjudge")


class RewardFunc(Protocol):
    __name__: str

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> Awaitable[list[float | None]]: ...


class BatchJudge(Protocol):
    """What a reward function needs of a judge; every :class:`~rftjudge.BaseJudge` has it.

    Typed as a protocol so that this boundary sits *below* the judges: they import it to build
    their ``as_reward_func()``, and it never imports them.
    """

    name: str

    async def ajudge_batch(
        self,
        prompts: Sequence[Any],
        responses: Sequence[Any],
        references: Sequence[Any] | None = None,
    ) -> list[Any]: ...

    def reward_of(self, outcome: Any) -> float | None: ...

    def metrics_of(self, outcomes: Sequence[Any]) -> dict[str, float]: ...

    def rationale_of(self, outcome: Any) -> str: ...


class GroupJudge(Protocol):
    """A judge that rewards the completions of one prompt relative to each other."""

    name: str

    async def ajudge_group(
        self, prompt: Any, responses: Sequence[Any], reference: Any = None
    ) -> list[float | BaseException]: ...

    def reward_of(self, outcome: Any) -> float | None: ...

    def metrics_of(self, outcomes: Sequence[Any]) -> dict[str, float]: ...

    def rationale_of(self, outcome: Any) -> str: ...


class _JudgeCall:
    """What the per-sample and the group reward functions share: inputs, naming, reporting."""

    __name__: str
    judge: Any

    def __init__(
        self,
        judge: BatchJudge | GroupJudge,
        name: str | None,
        reference_column: str,
        sink: MetricsSinkLike | MetricsSink | None,
    ) -> None:
        self.judge = judge
        self.__name__ = safe_name(name, judge.name)
        self.reference_column = reference_column
        self.metrics_sink = metrics_sink(sink)
        _mark_async(self)

    async def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        prompt_texts, completion_texts, refs = _inputs(
            self.__name__, prompts, completions, kwargs, self.reference_column
        )
        judged_prompts, judged = _judged(
            self.judge, prompts, completions, prompt_texts, completion_texts
        )
        outcomes = await self._outcomes(prompt_texts, judged_prompts, judged, refs, kwargs)
        rewards = [self.judge.reward_of(o) for o in outcomes]
        self._report(outcomes, rewards, completion_texts, kwargs)
        return rewards

    async def _outcomes(
        self,
        keys: list[str],
        prompts: list[Any],
        completions: list[Any],
        refs: list[str | None] | None,
        kwargs: Mapping[str, Any],
    ) -> list[Any]:
        """The judge's outcomes; ``keys`` are the prompts' texts, ``prompts`` and ``completions``
        what the judge is handed (text, or the value itself where text would lose what is judged)."""
        raise NotImplementedError

    def _report(
        self,
        outcomes: Sequence[Any],
        rewards: Sequence[float | None],
        texts: Sequence[str],
        kwargs: Mapping[str, Any],
    ) -> None:
        """Per-call metrics to TRL's ``log_metric``, else to the sink; rationales to ``log_extra``."""
        log_metric: Callable[[str, float], None] | None = kwargs.get("log_metric")
        log_extra: Callable[[str, list[Any]], None] | None = kwargs.get("log_extra")
        if callable(log_metric) or self.metrics_sink is not None:
            metrics = _call_metrics(self.judge, self.__name__, outcomes, rewards, texts)
            if callable(log_metric):
                for key, value in metrics.items():
                    log_metric(key, value)
            elif self.metrics_sink is not None:
                try:
                    self.metrics_sink.emit(self.__name__, metrics)
                except Exception as exc:  # a full disk or a broken callable must not stop training
                    logger.error("rftjudge: %s: metrics_sink failed: %r", self.__name__, exc)
        if callable(log_extra):
            log_extra(f"{self.__name__}_rationale", [self.judge.rationale_of(o) for o in outcomes])

    # A coroutine marker (Python >= 3.12) is a per-process sentinel object: rebuilt, not pickled.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_is_coroutine_marker", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        _mark_async(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__name__!r}, judge={self.judge!r})"


class RewardFunction(_JudgeCall):
    """A judge as a TRL reward function: one judgment per completion (see the module docstring)."""

    judge: BatchJudge

    def __init__(
        self,
        judge: BatchJudge,
        *,
        name: str | None = None,
        reference_column: str = "reference",
        metrics_sink: MetricsSinkLike | MetricsSink | None = None,
    ) -> None:
        super().__init__(judge, name, reference_column, metrics_sink)

    async def _outcomes(
        self,
        keys: list[str],
        prompts: list[Any],
        completions: list[Any],
        refs: list[str | None] | None,
        kwargs: Mapping[str, Any],
    ) -> list[Any]:
        rubrics = _rubrics(self.__name__, self.judge, kwargs, len(completions))
        return list(await self.judge.ajudge_batch(prompts, completions, refs, **rubrics))


class GroupRewardFunction(_JudgeCall):
    """A group judge as a TRL reward function: each completion rewarded against its group's others.

    Which rows form a group (``group_by``):

    - ``"auto"`` (default): the whole call is one group when every prompt is the same, or when it
      has the shape of ``AsyncGRPOTrainer``'s per-group call — ``completion_ids`` but no
      ``trainer_state``, and every dataset column holding one value throughout (the rows are
      copies of one dataset row); otherwise rows are grouped by prompt text, as
      ``GRPOTrainer``'s batch calls need.
    - ``"prompt"``: always by prompt text.
    - ``"call"``: every call is one group (a caller that always passes exactly one group).

    A call-wide group is judged with the first row's prompt (in AsyncGRPO the rows of a group differ
    at most in an environment's observation appended to the prompt). Under multi-GPU
    ``GRPOTrainer`` a group may be split across processes: see
    :mod:`rftjudge.integrations.cohort`. A prompt seen once in a call falls back to the reference
    column (or abstains).
    """

    judge: GroupJudge

    def __init__(
        self,
        judge: GroupJudge,
        *,
        name: str | None = None,
        reference_column: str = "reference",
        metrics_sink: MetricsSinkLike | MetricsSink | None = None,
        group_by: GroupBy = "auto",
    ) -> None:
        if group_by not in ("auto", "prompt", "call"):
            raise ConfigurationError(
                f'group_by must be "auto", "prompt" or "call"; got {group_by!r}'
            )
        super().__init__(judge, name, reference_column, metrics_sink)
        self.group_by: GroupBy = group_by

    async def _outcomes(
        self,
        keys: list[str],
        prompts: list[Any],
        completions: list[Any],
        refs: list[str | None] | None,
        kwargs: Mapping[str, Any],
    ) -> list[Any]:
        groups = group_rows(keys, kwargs, self.group_by)
        results = await asyncio.gather(
            *(
                self.judge.ajudge_group(
                    prompts[rows[0]],
                    [completions[i] for i in rows],
                    next((refs[i] for i in rows if refs[i] is not None), None) if refs else None,
                )
                for rows in groups
            )
        )
        outcomes: list[Any] = [None] * len(prompts)
        for rows, group_outcomes in zip(groups, results, strict=True):
            for i, outcome in zip(rows, group_outcomes, strict=True):
                outcomes[i] = outcome
        return outcomes


def trl_reward_func(
    judge: BatchJudge,
    *,
    name: str | None = None,
    reference_column: str = "reference",
    metrics_sink: MetricsSinkLike | MetricsSink | None = None,
) -> RewardFunction:
    """The TRL reward function for ``judge`` (see ``BaseJudge.as_reward_func``)."""
    return RewardFunction(
        judge, name=name, reference_column=reference_column, metrics_sink=metrics_sink
    )


def _rubrics(func_name: str, judge: Any, kwargs: Mapping[str, Any], n: int) -> dict[str, Any]:
    """``{"rubrics": [...]}`` when the judge reads per-row rubrics and TRL passed that column."""
    column = getattr(judge, "rubric_column", None)
    values = kwargs.get(column) if isinstance(column, str) else None
    if values is None:
        return {}
    if len(values) != n:
        raise ConfigurationError(
            f"{func_name}: column {column!r} has {len(values)} values for {n} completions"
        )
    return {"rubrics": list(values)}


class ItemRewardFunction(_JudgeCall):
    """A reward function for judges that read the whole data set row, not one reference column
    (OpenAI graders' ``item``): ``judge.ajudge_batch(prompts, completions, items)`` where each item
    is the row — ``prompt`` and every other column TRL passes — and completions keep their shape
    (a conversation keeps its tool calls)."""

    judge: BatchJudge

    def __init__(
        self,
        judge: BatchJudge,
        *,
        name: str | None = None,
        metrics_sink: MetricsSinkLike | MetricsSink | None = None,
    ) -> None:
        super().__init__(judge, name, "reference", metrics_sink)

    async def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        prompt_texts, completion_texts, _ = _inputs(
            self.__name__, prompts, completions, {}, self.reference_column
        )
        columns = {
            key: value
            for key, value in kwargs.items()
            if key not in _NOT_COLUMNS
            and isinstance(value, Sequence)
            and not isinstance(value, str)
            and len(value) == len(completions)
        }
        items = [
            {"prompt": prompts[i], **{key: value[i] for key, value in columns.items()}}
            for i in range(len(completions))
        ]
        outcomes = await self.judge.ajudge_batch(prompt_texts, list(completions), items)
        rewards = [self.judge.reward_of(o) for o in outcomes]
        self._report(outcomes, rewards, completion_texts, kwargs)
        return rewards


def trl_item_reward_func(
    judge: BatchJudge,
    *,
    name: str | None = None,
    metrics_sink: MetricsSinkLike | MetricsSink | None = None,
) -> ItemRewardFunction:
    """TRL reward function whose judge sees the whole row (see :class:`ItemRewardFunction`)."""
    return ItemRewardFunction(judge, name=name, metrics_sink=metrics_sink)


# What TRL passes a reward function besides data set columns.
_NOT_COLUMNS = _TRAINER_KWARGS | {"completion_ids"}


def trl_group_reward_func(
    judge: GroupJudge,
    *,
    name: str | None = None,
    reference_column: str = "reference",
    metrics_sink: MetricsSinkLike | MetricsSink | None = None,
    group_by: GroupBy = "auto",
) -> GroupRewardFunction:
    """TRL reward function rewarding each completion relative to its group (see
    :class:`GroupRewardFunction` for how groups are found)."""
    return GroupRewardFunction(
        judge,
        name=name,
        reference_column=reference_column,
        metrics_sink=metrics_sink,
        group_by=group_by,
    )


def _mark_async(obj: Any) -> None:
    """Python >= 3.12: let ``inspect.iscoroutinefunction(obj)`` see the async ``__call__`` too."""
    mark = getattr(inspect, "markcoroutinefunction", None)
    if mark is not None:
        mark(obj)
