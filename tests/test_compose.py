from __future__ import annotations

import json
from typing import Any

import pytest

from rftjudge import (
    CompositeReward,
    ConfigurationError,
    Criterion,
    CriterionGate,
    FunctionClient,
    JSONSchemaCheck,
    LengthPenalty,
    RubricJudge,
)
from rftjudge.clients import Capabilities

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
CRITERIA = [
    Criterion(name="quality", description="good?"),
    Criterion(name="safety", description="safe?"),
]


def judge(
    quality: int = 5, safety: int = 5, fail: bool = False
) -> tuple[RubricJudge, FunctionClient]:
    def handler(request: Any) -> str:
        if fail:
            return "not json at all"
        return json.dumps({"rationale": "r", "scores": {"quality": quality, "safety": safety}})

    client = FunctionClient(handler, capabilities=Capabilities(logprobs=False))
    return RubricJudge(client, criteria=CRITERIA, max_reasks=0), client


def test_weighted_terms_and_penalties() -> None:
    j, _ = judge(quality=4, safety=5)  # normalized (0.75 + 1) / 2 = 0.875
    reward = CompositeReward(
        terms={"judge": j, "format": JSONSchemaCheck(SCHEMA)},
        weights={"judge": 3.0, "format": 1.0},
        penalties={"overlong": (LengthPenalty(30, soft=10), 0.5)},
    )
    ok = '{"answer": "4"}'  # 15 chars: no penalty
    result = reward.judge("p", ok)
    assert result.components["judge"] == pytest.approx(0.875)
    assert result.components["format"] == 1.0
    assert result.score == pytest.approx((3 * 0.875 + 1.0) / 4)
    long = '{"answer": "' + "x" * 13 + '"}'  # 27 chars: penalty 0.7 × 0.5
    assert reward.reward("p", long) == pytest.approx((3 * 0.875 + 1.0) / 4 - 0.35)


def test_deterministic_gate_skips_the_judge_call() -> None:
    j, client = judge()
    reward = CompositeReward(terms={"judge": j}, gates={"json": JSONSchemaCheck(SCHEMA)})
    result = reward.judge("p", "not json")
    assert result.score == 0.0 and result.gated_by == "json"
    assert client.calls == []
    assert reward.stats.skipped_judge_calls == 1
    assert reward.reward("p", '{"answer": "ok"}') == 1.0
    assert len(client.calls) == 1


def test_failed_safety_criterion_zeroes_the_reward() -> None:
    j, _ = judge(quality=5, safety=1)
    reward = CompositeReward(terms={"judge": j}, gates={"safe": CriterionGate("judge", "safety")})
    result = reward.judge("p", "a")
    assert result.score == 0.0 and result.gated_by == "safe"


def test_judge_failure_fails_the_whole_sample() -> None:
    j, _ = judge(fail=True)
    reward = CompositeReward(terms={"judge": j, "format": JSONSchemaCheck(SCHEMA)})
    assert reward.reward("p", '{"answer": "x"}') is None  # never a reward from the remaining parts
    assert reward.stats.failures["parse"] == 1


async def test_components_are_logged_separately() -> None:
    j, _ = judge(quality=3, safety=5)
    reward = CompositeReward(
        terms={"judge": j},
        gates={"json": JSONSchemaCheck(SCHEMA)},
        penalties={"overlong": LengthPenalty(1000)},
        name="composite",
    )
    func = reward.as_reward_func()
    logged: dict[str, float] = {}
    out = await func(
        prompts=["p", "p"],
        completions=['{"answer": "a"}', "no"],
        log_metric=lambda k, v: logged.__setitem__(k, v),
    )
    assert out == [0.75, 0.0]
    assert logged["composite/judge"] == 0.75
    assert logged["composite/gate/json"] == 0.5
    assert logged["composite/penalty/overlong"] == 0.0
    assert logged["composite/gated_rate"] == 0.5


def test_bad_composition_is_rejected() -> None:
    j, _ = judge()
    with pytest.raises(ConfigurationError, match="unknown terms"):
        CompositeReward(terms={"judge": j}, weights={"other": 1.0})
    with pytest.raises(ConfigurationError, match="unknown term"):
        CompositeReward(terms={"judge": j}, gates={"g": CriterionGate("nope", "safety")})
    with pytest.raises(ConfigurationError, match="at least one"):
        CompositeReward(terms={})
