"""Reward-function adapters: a judge as TRL's ``reward_funcs`` entry.

TRL (``GRPOTrainer``, ``RLOOTrainer``) calls reward functions with keywords only —
``prompts``, ``completions``, ``completion_ids`` and every other dataset column as a list aligned with
the completions, plus ``log_metric`` / ``log_extra`` callbacks in recent versions — and expects one
``float | None`` per completion. ``None`` means "no reward for this sample": since TRL 1.6 a row
where every reward function abstained gets advantage 0 instead of a made-up score.

The function returned is a plain ``async def`` (the form every TRL version with async rewards
detects), so the judge calls of a whole batch run concurrently on TRL's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from ._errors import ConfigurationError
from ._text import as_text, completion_text, reference_text, safe_name

__all__ = [
    "BatchJudge",
    "GroupJudge",
    "RewardFunc",
    "as_text",
    "completion_text",
    "reference_text",
    "trl_group_reward_func",
    "trl_reward_func",
]


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


def trl_reward_func(
    judge: BatchJudge, *, name: str | None = None, reference_column: str = "reference"
) -> RewardFunc:
    """Build the ``async def`` TRL reward function for ``judge`` (see ``BaseJudge.as_reward_func``)."""
    func_name = safe_name(name, judge.name)

    async def reward_func(
        prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        prompt_texts, completion_texts, refs = _inputs(
            func_name, prompts, completions, kwargs, reference_column
        )
        outcomes = await judge.ajudge_batch(prompt_texts, completion_texts, refs)
        rewards = [judge.reward_of(o) for o in outcomes]
        _log(judge, func_name, outcomes, kwargs)
        _log_length_bias(func_name, rewards, completion_texts, kwargs)
        return rewards

    return _named(reward_func, func_name)


def trl_group_reward_func(
    judge: GroupJudge, *, name: str | None = None, reference_column: str = "reference"
) -> RewardFunc:
    """TRL reward function rewarding each completion relative to the others of its prompt.

    Completions are grouped by prompt text *within one call*. Under multi-GPU training each process
    scores its own slice, so a GRPO group may be split across processes and ranked in parts; a
    prompt seen once in the call falls back to the reference column (or abstains).
    """
    func_name = safe_name(name, judge.name)

    async def reward_func(
        prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        prompt_texts, completion_texts, refs = _inputs(
            func_name, prompts, completions, kwargs, reference_column
        )
        groups: dict[str, list[int]] = {}
        for index, text in enumerate(prompt_texts):
            groups.setdefault(text, []).append(index)
        results = await asyncio.gather(
            *(
                judge.ajudge_group(
                    prompt,
                    [completion_texts[i] for i in rows],
                    next((refs[i] for i in rows if refs[i] is not None), None) if refs else None,
                )
                for prompt, rows in groups.items()
            )
        )
        outcomes: list[Any] = [None] * len(prompt_texts)
        for rows, group_outcomes in zip(groups.values(), results, strict=True):
            for i, outcome in zip(rows, group_outcomes, strict=True):
                outcomes[i] = outcome
        rewards = [judge.reward_of(o) for o in outcomes]
        _log(judge, func_name, outcomes, kwargs)
        _log_length_bias(func_name, rewards, completion_texts, kwargs)
        return rewards

    return _named(reward_func, func_name)


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


def _named(reward_func: Any, func_name: str) -> RewardFunc:
    reward_func.__name__ = func_name
    reward_func.__qualname__ = func_name
    reward_func.__doc__ = f"rftjudge reward function {func_name!r} (TRL signature)."
    return reward_func  # type: ignore[no-any-return]


def _log_length_bias(
    name: str, rewards: Sequence[float | None], texts: Sequence[str], kwargs: Mapping[str, Any]
) -> None:
    """Log the batch's Pearson correlation between reward and response length (characters).

    A policy that learns the judge likes longer answers shows up here as a correlation creeping
    towards 1 long before the answers become absurd (verbosity hacking).
    """
    log_metric = kwargs.get("log_metric")
    if not callable(log_metric):
        return
    from .calibration import pearson

    pairs = [
        (float(r), float(len(t))) for r, t in zip(rewards, texts, strict=True) if r is not None
    ]
    if len(pairs) >= 3:
        corr = pearson([p[0] for p in pairs], [p[1] for p in pairs])
        if corr is not None:
            log_metric(f"{name}/length_corr", corr)


def _log(
    judge: BatchJudge | GroupJudge,
    name: str,
    outcomes: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> None:
    log_metric: Callable[[str, float], None] | None = kwargs.get("log_metric")
    log_extra: Callable[[str, list[Any]], None] | None = kwargs.get("log_extra")
    if callable(log_metric):
        for key, value in judge.metrics_of(outcomes).items():
            log_metric(f"{name}/{key}", value)
        # The judge client's totals since this reward function's last call (requests, cache hits,
        # tokens, cost, p95 latency of those attempts), when the client keeps them.
        from .clients._stats import ClientStats

        stats = getattr(getattr(judge, "client", None), "stats", None)
        if isinstance(stats, ClientStats):
            for key, value in stats.delta(mark=f"reward_func:{name}").items():
                if key in _CLIENT_METRICS:
                    log_metric(f"{name}/{key}", value)
    if callable(log_extra):
        log_extra(f"{name}_rationale", [judge.rationale_of(o) for o in outcomes])


_CLIENT_METRICS = frozenset(
    {
        "requests",
        "retries",
        "rate_limited",
        "cache_hits",
        "coalesced",
        "input_tokens",
        "cached_input_tokens",
        "output_tokens",
        "cost_usd",
        "latency_p95_s",
    }
)
