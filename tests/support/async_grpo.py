"""What TRL's AsyncGRPOTrainer runs in its spawned child, for tests (importable by that child).

``score_in_child`` is what a bare ``spawn`` child does with a pickled reward function: unpickle it
and call it once with the kwargs of ``_AsyncRolloutLoop._score_group``. ``ScoreOnlyLoop`` is TRL's
own ``_AsyncRolloutLoop`` with generation (a vLLM server) replaced by fixed groups: started by the
real ``AsyncRolloutWorker`` (its pickling check, ``spawn``, ``_child_main``), it scores each group
with the real ``_score_group`` and puts ``(advantages, per-sample metrics)`` on the rollout queue.
"""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

from trl.experimental.async_grpo.async_rollout_worker import (
    RolloutGroup,
    TrainingSequence,
    _AsyncRolloutLoop,
)
from trl.trainer.utils import get_callable_name, is_async_callable


def score_in_child(blob: bytes, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Unpickle a reward function in this (spawned) process and call it as ``_score_group`` does."""
    func = pickle.loads(blob)
    rewards = asyncio.run(func(**kwargs)) if is_async_callable(func) else func(**kwargs)
    judge = getattr(func, "judge", None) or getattr(func.async_func, "judge", None)
    assert judge is not None
    client = judge.client
    return {
        "rewards": rewards,
        "name": get_callable_name(func),
        "async": is_async_callable(func),
        "requests": client.stats.requests if hasattr(client, "stats") else None,
        "calls": len(getattr(client, "calls", ())),
        "failures": dict(judge.stats.failures),
    }


def rollout_group(
    prompts: list[Any], completions: list[Any], columns: dict[str, Any], group_id: int = 0
) -> RolloutGroup:
    """A group as ``_generate_loop`` builds it: dataset columns repeated once per completion."""
    n = len(completions)
    return RolloutGroup(
        prompts=prompts,
        reward_kwargs={key: [value] * n for key, value in columns.items()},
        completions=completions,
        completions_ids=[[1, 2, 3] for _ in range(n)],
        completions_sequences=[
            [TrainingSequence([1, 2, 3], [0, 1, 1], [0.0, -0.1, -0.2], f"{group_id}-{i}")]
            for i in range(n)
        ],
        tool_call_counts=[0] * n,
        tool_failure_counts=[0] * n,
        model_version=0,
        group_id=group_id,
        env_rewards=[None] * n,
        rollout_rewards=[None] * n,
    )


class ScoreOnlyLoop(_AsyncRolloutLoop):
    """TRL's rollout loop scoring fixed groups (no tokenizer, dataset or vLLM server)."""

    def __init__(
        self, *, reward_funcs: list[Any], groups: list[RolloutGroup], rollout_buffer: Any, **_: Any
    ) -> None:
        self.reward_funcs = reward_funcs
        self.reward_func_names = [get_callable_name(f) for f in reward_funcs]
        self._env_reward_types: list[type] = []
        self.groups = groups
        self.rollout_buffer = rollout_buffer
        self._loop = asyncio.new_event_loop()
        self._stop_event = asyncio.Event()

    def run(self) -> None:
        async def score_all() -> None:
            for group in self.groups:
                samples = await self._score_group(group)
                self.rollout_buffer.put(
                    [(sample.advantage, dict(sample.metrics)) for sample in samples]
                )

        try:
            self._loop.run_until_complete(score_all())
        finally:
            self._loop.close()
