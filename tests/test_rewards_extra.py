"""TRL adapter extras: the sync form, length-bias logging, public text helpers."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from rftjudge import Criterion, FunctionClient, RubricJudge
from rftjudge.clients import Capabilities
from rftjudge.integrations.trl import sync_reward_func
from rftjudge.rewards import completion_text


def judge_by_length() -> RubricJudge:
    def handler(request: Any) -> str:
        user = request.messages[-1].content
        match = re.search(r"<<<RESPONSE \w+>>>\n(.*)\n<<<END RESPONSE", user, re.DOTALL)
        assert match is not None
        body = match.group(1)
        score = min(5, 1 + len(body) // 60)
        return json.dumps({"rationale": "", "scores": {"q": score}})

    client = FunctionClient(handler, capabilities=Capabilities(logprobs=False))
    return RubricJudge(client, criteria=[Criterion(name="q", description="good?")], guard=False)


def test_sync_reward_func_works_inside_a_running_loop() -> None:
    func = sync_reward_func(judge_by_length(), name="j")
    assert func.__name__ == "j"
    assert not asyncio.iscoroutinefunction(func)

    async def inside() -> list[float | None]:
        return func(prompts=["p", "p"], completions=["a", "b" * 400])

    rewards = asyncio.run(inside())
    assert len(rewards) == 2 and rewards[0] is not None and rewards[1] is not None
    assert rewards[1] > rewards[0]


async def test_length_correlation_is_logged() -> None:
    func = judge_by_length().as_reward_func(name="j")
    logged: dict[str, float] = {}
    completions = ["x" * n for n in (10, 100, 200, 300)]
    await func(
        prompts=["p"] * 4, completions=completions, log_metric=lambda k, v: logged.__setitem__(k, v)
    )
    assert logged["j/length_corr"] == pytest.approx(1.0, abs=0.1)


def test_completion_text_takes_assistant_messages_only() -> None:
    conversation = [
        {"role": "assistant", "content": "calling a tool"},
        {"role": "tool", "content": "tool output"},
        {"role": "assistant", "content": [{"type": "text", "text": "final"}]},
    ]
    assert completion_text(conversation) == "calling a tool\nfinal"
    assert completion_text("plain") == "plain"
