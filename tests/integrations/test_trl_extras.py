"""TRL extras: the synchronous reward function."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from rftjudge import ConfigurationError
from rftjudge.integrations.trl import sync_reward_func

from support.judges import BAD, GOOD, scripted_judge


def test_sync_form_has_trls_signature_and_logs_like_the_async_one() -> None:
    judge, script = scripted_judge()
    reward = sync_reward_func(judge, name="judge")
    assert not inspect.iscoroutinefunction(reward)
    assert reward.__name__ == "judge"
    metrics: dict[str, float] = {}
    extras: dict[str, list[Any]] = {}
    rewards = reward(
        prompts=[[{"role": "user", "content": "2+2?"}]] * 3,
        completions=[[{"role": "assistant", "content": c}] for c in ("4", "5", "FAIL")],
        completion_ids=[[1], [2], [3]],
        reference=["4", "4", "4"],
        trainer_state=object(),
        log_metric=lambda k, v: metrics.__setitem__(k, v),
        log_extra=lambda k, v: extras.__setitem__(k, v),
    )
    assert rewards == [GOOD, BAD, None]  # the judge's on_error ("abstain") still applies
    assert metrics["judge/failure_rate"] == pytest.approx(1 / 3)
    assert len(extras["judge_rationale"]) == 3
    assert script.seen[0]["reference"] == "4"


async def test_sync_form_works_from_a_thread_running_its_own_loop() -> None:
    judge, _ = scripted_judge()
    reward = sync_reward_func(judge)
    asyncio.get_running_loop()  # this thread's loop is running right now
    assert reward(prompts=["2+2?"], completions=["4"]) == [GOOD]

    results: list[Any] = []

    def other_thread() -> None:
        async def inner() -> None:
            results.append(reward(prompts=["2+2?"], completions=["5"]))

        asyncio.run(inner())

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(30)
    assert results == [[BAD]]


def test_online_dpo_call_shape() -> None:
    """Online DPO: prompts=2*prompts (completion i paired with i+B), trainer_state only."""
    judge, _ = scripted_judge(on_error=0.5)
    reward = sync_reward_func(judge)
    prompts = ["2+2?", "1+3?"]
    rewards = reward(prompts=2 * prompts, completions=["4", "4", "3", "FAIL"], trainer_state=None)
    assert rewards == [GOOD, GOOD, BAD, 0.5]


def test_wraps_an_async_reward_function() -> None:
    async def group_reward(
        prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        return [len(c) / 10 for c in completions]

    group_reward.__name__ = "pref_group"
    reward = sync_reward_func(group_reward)
    assert reward.__name__ == "pref_group"
    assert reward(prompts=["p", "p"], completions=["ab", "abc"]) == [0.2, 0.3]


def test_rejects_what_it_cannot_wrap() -> None:
    with pytest.raises(ConfigurationError, match="async reward function"):
        sync_reward_func(lambda prompts, completions, **kw: [1.0])
    with pytest.raises(ConfigurationError):
        sync_reward_func("judge")
