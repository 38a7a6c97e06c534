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
from typing import Any, Literal, Protocol

from ._content import carries_image
from ._errors import ConfigurationError
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
    "judged_completion",
    "reference_text",
    "trl_group_reward_func",
    "trl_item_reward_func",
    "trl_reward_func",
]

GroupBy = Literal["auto", "prompt", "call"]

logger = logging.getLogger("rftjudge")

# What TRL adds to a call that is not a dataset column.
_TRAINER_KWARGS = frozenset({"trainer_state", "log_metric", "log_extra", "environments"})


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


def group_rows(
    prompts: Sequence[str], kwargs: Mapping[str, Any], group_by: GroupBy = "auto"
) -> list[list[int]]:
    """The row indices of each group in one call (see :class:`GroupRewardFunction`)."""
    if not prompts:
        return []
    if group_by == "call" or (group_by == "auto" and _one_group(prompts, kwargs)):
        return [list(range(len(prompts)))]
    groups: dict[str, list[int]] = {}
    for index, text in enumerate(prompts):
        groups.setdefault(text, []).append(index)
    return list(groups.values())


def _one_group(prompts: Sequence[str], kwargs: Mapping[str, Any]) -> bool:
    if all(p == prompts[0] for p in prompts):
        return True
    # AsyncGRPOTrainer's _score_group passes completion_ids but never trainer_state; GRPOTrainer
    # and RLOOTrainer pass both (a batch of many groups); a hand-written call usually neither.
    if "completion_ids" not in kwargs or "trainer_state" in kwargs:
        return False
    columns = [
        v
        for k, v in kwargs.items()
        if k not in _TRAINER_KWARGS and k != "completion_ids" and isinstance(v, list | tuple)
    ]
    return all(len(c) == len(prompts) and all(_same(x, c[0]) for x in c) for c in columns)


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:  # e.g. numpy arrays (elementwise ==): not provably the same value
        return False


def _inputs(
    func_name: str,
    prompts: Sequence[Any],
    completions: Sequence[Any],
    kwargs: Mapping[str, Any],
    reference_column: str,
) -> tuple[list[str], list[str], list[str | None] | None]:
    """Validate TRL's arguments and convert prompts, completions and references to text."""
    if len(prompts) != len(completions):
        raise ConfigurationError(
            f"{func_name}: got {len(prompts)} prompts but {len(completions)} completions"
        )
    references = kwargs.get(reference_column)
    if references is not None and len(references) != len(completions):
        raise ConfigurationError(
            f"{func_name}: column {reference_column!r} has {len(references)} values for "
            f"{len(completions)} completions"
        )
    prompt_texts = [as_text(p, what="prompt") for p in prompts]
    completion_texts = [completion_text(c) for c in completions]
    refs = [reference_text(r) for r in references] if references is not None else None
    return prompt_texts, completion_texts, refs


def _mark_async(obj: Any) -> None:
    """Python >= 3.12: let ``inspect.iscoroutinefunction(obj)`` see the async ``__call__`` too."""
    mark = getattr(inspect, "markcoroutinefunction", None)
    if mark is not None:
        mark(obj)


def _judged(
    judge: Any,
    prompts: Sequence[Any],
    completions: Sequence[Any],
    prompt_texts: list[str],
    completion_texts: list[str],
) -> tuple[list[Any], list[Any]]:
    """What the judge is handed: the text, except where it would lose what is judged.

    A judge with a ``view`` renders message-list completions itself (tool calls and results kept);
    a prompt or completion holding images (VLM GRPO, image generation) is passed whole, so that the
    judge sends the images (TRL 1.16 puts a dataset's ``image``/``images`` into the conversational
    prompt as ``{"type": "image", "image": <PIL>}`` parts before calling reward functions).
    """
    return (
        [p if carries_image(p) else t for p, t in zip(prompts, prompt_texts, strict=True)],
        [
            judged_completion(judge, c, t)
            for c, t in zip(completions, completion_texts, strict=True)
        ],
    )


def judged_completion(judge: Any, completion: Any, text: str) -> Any:
    """``completion`` itself where its ``text`` would lose what the judge is to see (a trajectory
    under a judge ``view``, an image), else ``text``. Shared by every trainer adapter."""
    if carries_image(completion):
        return completion
    if getattr(judge, "view", None) is not None and not isinstance(completion, str):
        return completion
    return text


def _call_metrics(
    judge: Any,
    name: str,
    outcomes: Sequence[Any],
    rewards: Sequence[float | None],
    texts: Sequence[str],
) -> dict[str, float]:
    """One call's metrics, keyed ``<name>/<metric>``: the judge's, the client's, length bias."""
    metrics = {f"{name}/{key}": value for key, value in judge.metrics_of(outcomes).items()}
    # The judge client's totals since this reward function's last call (requests,
    # cache hits, tokens, cost, p95 latency of those attempts), when the client keeps them.
    from .clients._stats import ClientStats

    stats = getattr(getattr(judge, "client", None), "stats", None)
    if isinstance(stats, ClientStats):
        for key, value in stats.delta(mark=f"reward_func:{name}").items():
            if key in _CLIENT_METRICS:
                metrics[f"{name}/{key}"] = value
    corr = _length_corr(rewards, texts)
    if corr is not None:
        metrics[f"{name}/length_corr"] = corr
    return metrics


def _length_corr(rewards: Sequence[float | None], texts: Sequence[str]) -> float | None:
    """Pearson correlation between reward and response length (characters) in one call.

    A policy that learns the judge likes longer answers shows up here as a correlation creeping
    towards 1 long before the answers become absurd (verbosity hacking).
    """
    from .calibration import pearson

    pairs = [
        (float(r), float(len(t))) for r, t in zip(rewards, texts, strict=True) if r is not None
    ]
    if len(pairs) < 3:
        return None
    return pearson([p[0] for p in pairs], [p[1] for p in pairs])


_CLIENT_METRICS = frozenset(
    {
        "requests",
        "retries",
        "rate_limited",
        "cache_hits",
        "coalesced",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "latency_p95_s",
    }
)
