"""Every trainer adapter carries a row's rubric to the judge (integrations/_rubrics.py)."""

from __future__ import annotations

import json
from typing import Any

from rftjudge import ChatRequest, FunctionClient, RubricJudge
from rftjudge.integrations.nova import make_lambda_handler
from rftjudge.integrations.openrlhf import make_reward_func
from rftjudge.integrations.verifiers import classic_reward_func
from rftjudge.integrations.verl import make_batch_compute_score, make_compute_score

RUBRIC = [{"id": "right", "description": "says 4"}, {"id": "kind", "description": "polite"}]


def handler(request: ChatRequest) -> str:
    """"right" and "c1" are met (5), the rest not (1): RUBRIC scores 0.5."""
    ids = request.output_schema["properties"]["scores"]["required"]  # type: ignore[index]
    scores = {i: 5 if i in ("right", "c1") else 1 for i in ids}
    return json.dumps({"rationale": "", "scores": scores})


def judge() -> tuple[RubricJudge, FunctionClient]:
    client = FunctionClient(handler)
    return RubricJudge(client, on_error=0.0), client


async def test_verl_extra_info_and_ground_truth_dict() -> None:
    j, client = judge()
    compute_score = make_compute_score(j, question_key=None)
    result = await compute_score("d", "It is 4.", "4", {"rubric": RUBRIC})
    assert result["score"] == 0.5 and result["judge_failed"] == 0.0
    truth = {"reference": "four", "rubric": json.dumps(RUBRIC)}
    result = await compute_score("d", "It is 4.", truth, {})
    assert result["score"] == 0.5
    assert "four" in client.calls[-1].messages[-1].content
    no_rubric = await compute_score("d", "It is 4.", "4", {})
    assert no_rubric == {"score": 0.0, "judge_failed": 1.0}
    assert j.stats.failures["invalid_rubric"] == 1


def test_verl_batch_form() -> None:
    j, _ = judge()
    compute_score = make_batch_compute_score(j, question_key=None)
    results = compute_score(
        solution_strs=["It is 4.", "It is 4."],
        ground_truths=["4", "4"],
        extra_infos=[{"rubric": RUBRIC}, {"rubric": "[not json"}],
    )
    assert [r["score"] for r in results] == [0.5, 0.0]
    assert results[1]["judge_failed"] == 1.0


def test_nova_metadata_or_top_level() -> None:
    j, _ = judge()
    lambda_handler = make_lambda_handler(j)
    messages = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "It is 4."}]
    event = [
        {"id": "a", "messages": messages, "metadata": {"rubric": RUBRIC}},
        {"id": "b", "messages": messages, "rubric": "- says 4\n- pitfall: says 5"},
    ]
    output = lambda_handler(event, None)
    assert output[0]["aggregate_reward_score"] == 0.5
    # c1 met (5), c2 is a pitfall the script scores 1 (absent): full marks
    assert output[1]["aggregate_reward_score"] == 1.0


def test_openrlhf_json_label() -> None:
    j, client = judge()
    reward_func = make_reward_func(j)
    label = json.dumps({"reference": "4", "rubric": RUBRIC})
    result = reward_func(["Q: 2+2? A: It is 4."], ["Q: 2+2? A: "], [label])
    assert result["rewards"][0] == 0.5
    shown = client.calls[-1].messages[-1].content
    assert "REFERENCE" in shown and '"rubric"' not in shown


async def test_verifiers_info_column() -> None:
    j, _ = judge()
    reward = classic_reward_func(j)
    value: Any = await reward(
        prompt="2+2?", completion="It is 4.", answer="4", info={"rubric": RUBRIC}
    )
    assert value == 0.5
