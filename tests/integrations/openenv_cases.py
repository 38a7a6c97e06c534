"""A judge as an OpenEnv Rubric, against the real ``openenv.core.rubrics`` (openenv 0.10).

Needs an environment where openenv imports — not next to verifiers 0.4 — so this file is not
collected by the suite: ``test_openenv_rubric.py`` runs it with an interpreter that has openenv.
The rubric is called as OpenEnv calls it — ``rubric(action, observation)``, sync or async — alone
and inside OpenEnv's own ``WeightedSum`` and ``Gate``; a failed judgment must never read as a zero.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any

import pytest
from openenv.core.rubrics import Gate, Rubric, WeightedSum

from rftjudge import CompositeReward, ConfigurationError, JudgeError, RegexCheck
from rftjudge.integrations.openenv import AsyncJudgeRubric, JudgeRubric, judge_rubric

from support.judges import BAD, GOOD, scripted_judge

pytestmark = pytest.mark.integration


@dataclass
class Action:  # the shape of OpenEnv's chat/text actions: the text under ``message``
    message: str


@dataclass
class Observation:
    metadata: dict[str, Any] = field(default_factory=dict)


class Constant(Rubric):  # type: ignore[misc]
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, action: Any, observation: Any) -> float:
        return self.value


OBS = Observation({"prompt": "What is 2+2?", "reference": "4"})


async def test_async_rubric_judges_the_action_with_prompt_and_reference() -> None:
    judge, script = scripted_judge()
    rubric = judge_rubric(judge)
    assert isinstance(rubric, Rubric) and inspect.iscoroutinefunction(rubric.forward)
    assert await rubric(Action("It is 4."), OBS) == pytest.approx(GOOD)
    assert rubric.last_score == pytest.approx(GOOD) and rubric.last_failed is False
    assert script.seen[-1] == {"prompt": "What is 2+2?", "response": "It is 4.", "reference": "4"}


def test_sync_rubric_inside_openenvs_weighted_sum_and_gate() -> None:
    judge, _ = scripted_judge()
    rubric = judge_rubric(judge, sync=True)
    assert isinstance(rubric, JudgeRubric) and not inspect.iscoroutinefunction(rubric.forward)
    total = WeightedSum([rubric, Constant(1.0)], weights=[0.5, 0.5])
    assert total(Action("4"), OBS) == pytest.approx(0.5 * GOOD + 0.5)
    gate = Gate(judge_rubric(judge, sync=True), threshold=0.5)
    assert gate(Action("five"), OBS) == 0.0  # BAD < 0.5: gated
    assert gate(Action("4"), OBS) == pytest.approx(GOOD)


async def test_async_rubric_inside_weighted_sum() -> None:
    judge, _ = scripted_judge()
    total = WeightedSum([judge_rubric(judge), Constant(0.0)], weights=[0.5, 0.5])
    assert await total(Action("five"), OBS) == pytest.approx(0.5 * BAD)


async def test_abstention_is_nan_and_propagates_through_openenvs_containers() -> None:
    judge, _ = scripted_judge()  # on_error="abstain" (the default)
    rubric = judge_rubric(judge)
    score = await rubric(Action("FAIL"), OBS)
    assert math.isnan(score) and rubric.last_failed is True
    assert judge.stats.failures["parse"] == 1
    summed = await WeightedSum([judge_rubric(judge), Constant(1.0)], weights=[0.5, 0.5])(
        Action("FAIL"), OBS
    )
    assert math.isnan(summed)  # the whole reward abstains, never a made-up 0.5
    gated = Gate(judge_rubric(judge, sync=True), threshold=0.5)(Action("FAIL"), OBS)
    assert math.isnan(gated)  # nan < threshold is false: passed through, not gated to 0


async def test_numeric_or_raising_fallbacks() -> None:
    judge, _ = scripted_judge(on_error=0.5)
    rubric = judge_rubric(judge)
    assert await rubric(Action("FAIL"), OBS) == 0.5 and rubric.last_failed is True
    assert math.isnan(await judge_rubric(judge, on_error="nan")(Action("FAIL"), OBS))
    assert await judge_rubric(judge, on_error=0.0)(Action("FAIL"), OBS) == 0.0
    with pytest.raises(JudgeError):
        await judge_rubric(judge, on_error="raise")(Action("FAIL"), OBS)
    with pytest.raises(ConfigurationError, match="on_error"):
        judge_rubric(judge, on_error=2.0)


async def test_composite_reward_and_custom_extractors() -> None:
    judge, script = scripted_judge(on_error=0.5)
    composite = CompositeReward({"judge": judge, "digits": RegexCheck(r"\d")})
    rubric = AsyncJudgeRubric(
        composite,
        response=lambda action, obs: action["text"],
        prompt=lambda action, obs: obs["question"],
        reference=lambda action, obs: None,
    )
    score = await rubric({"text": "4"}, {"question": "2+2?"})
    assert 0.0 <= score <= 1.0 and rubric.last_failed is False
    assert script.seen[-1]["prompt"] == "2+2?" and script.seen[-1]["reference"] is None


def test_what_cannot_be_judged_is_named() -> None:
    judge, _ = scripted_judge()
    with pytest.raises(ConfigurationError, match="response text"):
        judge_rubric(judge, sync=True)(object(), OBS)
    with pytest.raises(ConfigurationError, match="rftjudge judge"):
        judge_rubric(lambda a, o: 1.0)
