"""TRL extras: a synchronous reward function for trainers that never await.

``judge.as_reward_func()`` is an ``async def``, which ``GRPOTrainer`` and ``RLOOTrainer`` run
concurrently on their event loop. Some trainers only call plain functions — TRL's (experimental)
Online DPO among them, with ``prompts=2*prompts`` and ``trainer_state`` only — and would get an
un-awaited coroutine back. :func:`sync_reward_func` wraps the same function so that each call blocks
until the batch is judged; the judge calls still run concurrently, on rftjudge's portal loop
(:mod:`rftjudge._sync`), so the wrapper also works from a thread that is running its own loop. Like the async function,
it is an instance of a module-level class: it pickles (``spawn``, Ray) when the async one does.

This module imports nothing from TRL.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .._errors import ConfigurationError
from .._sinks import MetricsSinkLike
from .._sync import run_sync
from .._text import safe_name

__all__ = ["MetricsFileReader", "SyncRewardFunc", "SyncRewardFunction", "sync_reward_func"]

T = TypeVar("T")


class SyncRewardFunc(Protocol):
    __name__: str

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]: ...


class SyncRewardFunction:
    """A blocking TRL reward function around an async one; picklable when the async one is.

    A module-level class (not a closure), so it crosses ``pickle`` and ``spawn`` like the async
    reward function it wraps, and keeps that function's ``__name__``.
    """

    def __init__(self, async_func: Callable[..., Awaitable[list[float | None]]], name: str):
        self.async_func = async_func
        self.__name__ = name

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        return run_sync(
            _awaited(self.async_func(prompts=prompts, completions=completions, **kwargs))
        )

    def __repr__(self) -> str:
        return f"SyncRewardFunction({self.__name__!r}, {self.async_func!r})"


def sync_reward_func(
    judge_or_func: Any,
    *,
    name: str | None = None,
    reference_column: str = "reference",
    metrics_sink: MetricsSinkLike | None = None,
) -> SyncRewardFunc:
    """A plain (synchronous) TRL reward function.

    ``judge_or_func`` is a judge (its ``as_reward_func(name=, reference_column=, metrics_sink=)``
    is wrapped) or an async reward function already built, e.g.
    ``preference_judge.as_reward_func(mode="group")``. The function keeps the async one's
    ``__name__``, so TRL logs it under the same name.
    """
    if callable(getattr(judge_or_func, "as_reward_func", None)):
        kwargs: dict[str, Any] = {"name": name, "reference_column": reference_column}
        if metrics_sink is not None:
            kwargs["metrics_sink"] = metrics_sink
        async_func: Callable[..., Awaitable[list[float | None]]] = judge_or_func.as_reward_func(
            **kwargs
        )
    elif callable(judge_or_func) and _is_async(judge_or_func):
        if metrics_sink is not None:
            raise ConfigurationError(
                "sync_reward_func: pass metrics_sink= to the judge's as_reward_func(), not here"
            )
        async_func = judge_or_func
    else:
        raise ConfigurationError(
            "sync_reward_func needs a judge or an async reward function (judge.as_reward_func()); "
            f"got {type(judge_or_func).__name__}"
        )
    func_name = safe_name(name or getattr(async_func, "__name__", None), "judge")
    return SyncRewardFunction(async_func, func_name)


def _is_async(func: Any) -> bool:
    call = getattr(func, "__call__", None)  # noqa: B004 - instances with an async __call__
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(call)


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


class MetricsFileReader:
    """Reads what reward functions appended to a ``metrics_sink=`` JSONL file, for the trainer's log.

    ``read()`` returns each metric's mean over the lines written since the previous ``read()``
    (every process and call alike), so a ``TrainerCallback.on_log`` can add the judge's figures to
    the step's logs — see docs/trainers.md. A line still being written is left for the next read.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.offset = 0

    def read(self) -> dict[str, float]:
        try:
            with self.path.open("rb") as file:
                file.seek(self.offset)
                data = file.read()
        except FileNotFoundError:  # nothing written yet
            return {}
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for line in complete.splitlines():
            metrics = json.loads(line).get("metrics", {})
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + float(value)
                counts[key] = counts.get(key, 0) + 1
        return {key: sums[key] / counts[key] for key in sums}
