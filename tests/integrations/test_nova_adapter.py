"""Nova / Bedrock RFT reward Lambda: sample events from the AWS guides, invoked locally."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from rftjudge import ConfigurationError
from rftjudge.integrations.nova import json_valid, make_lambda_handler, non_empty

from support.judges import GOOD, scripted_judge

SCHEMA = {
    "type": "object",
    "properties": {"compliant": {"enum": ["Yes", "No"]}, "explanation": {"type": "string"}},
    "required": ["compliant", "explanation"],
}

# Bedrock guide: reference_answer (an object) and extra fields under "metadata".
BEDROCK_SAMPLE = {
    "id": "123",
    "messages": [
        {"role": "user", "content": "Do you have a dedicated security team?"},
        {"role": "assistant", "content": '{"compliant": "No", "explanation": "4 people"}'},
    ],
    "metadata": {
        "reference_answer": {"compliant": "No", "explanation": "4 people"},
        "my_key": "sample-001",
    },
}
# Nova 2 / SageMaker guide and Nova Forge SDK: reference_answer at the top level.
NOVA_SAMPLE = {
    "id": "sample_id",
    "messages": [
        {"role": "system", "content": "Answer in JSON."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "nova_assistant", "content": "4"},
    ],
    "reference_answer": "4",
}


def check_output_format(event: list[Any], output: Any) -> None:
    """What Nova Forge's verify_reward_function checks, plus id order."""
    assert isinstance(output, list) and len(output) == len(event)
    for sample, result in zip(event, output, strict=True):
        assert result["id"] == (sample.get("id") if isinstance(sample, dict) else None)
        assert isinstance(result["aggregate_reward_score"], int | float)
        for metric in result["metrics_list"]:
            assert set(metric) == {"name", "value", "type"}
            assert isinstance(metric["name"], str)
            assert isinstance(metric["value"], int | float)
            assert metric["type"] in ("Reward", "Metric")
    json.dumps(output)  # Lambda serialises it


def metrics(result: dict[str, Any]) -> dict[str, float]:
    return {m["name"]: m["value"] for m in result["metrics_list"]}


def test_both_reference_placements_and_assistant_roles() -> None:
    judge, script = scripted_judge()
    handler = make_lambda_handler(judge)
    event = [BEDROCK_SAMPLE, NOVA_SAMPLE]
    output = handler(event, None)
    check_output_format(event, output)
    assert [r["aggregate_reward_score"] for r in output] == [GOOD, GOOD]
    by_response = {s["response"]: s for s in script.seen}
    bedrock = by_response['{"compliant": "No", "explanation": "4 people"}']
    assert json.loads(bedrock["reference"] or "") == {"compliant": "No", "explanation": "4 people"}
    assert bedrock["prompt"] == "user: Do you have a dedicated security team?"
    nova = by_response["4"]
    assert nova["reference"] == "4"
    assert nova["prompt"] == "system: Answer in JSON.\nuser: What is 2+2?"
    assert metrics(output[1]) == {
        "judge": GOOD,
        "correctness": 1.0,
        "tone": 0.5,
        "judge_failed": 0.0,
        "gated": 0.0,
    }
    assert output[1]["metrics_list"][0]["type"] == "Reward"


def test_failed_and_malformed_samples_get_the_neutral_score() -> None:
    judge, script = scripted_judge()
    handler = make_lambda_handler(judge, neutral=0.5)
    event = [
        {**NOVA_SAMPLE, "id": "fails", "messages": [{"role": "assistant", "content": "FAIL"}]},
        {"id": "no-assistant", "messages": [{"role": "user", "content": "hi"}]},
        {"id": "no-messages"},
        "not even an object",
        {**NOVA_SAMPLE, "id": "no-reference", "reference_answer": None},
    ]
    output = handler(event, None)
    check_output_format(event, output)
    assert [r["aggregate_reward_score"] for r in output] == [0.5, 0.5, 0.5, 0.5, GOOD]
    assert [s["reference"] for s in script.seen if s["response"] == "4"] == [None]
    assert [metrics(r)["judge_failed"] for r in output] == [1.0, 1.0, 1.0, 1.0, 0.0]
    assert "correctness" not in metrics(output[0])  # no invented per-criterion numbers


def test_pre_checks_gate_and_combine_with_the_judge() -> None:
    judge, script = scripted_judge()

    def half(answer: str, sample: Any) -> float | None:
        return 0.5 if sample.get("metadata", {}).get("halve") else None

    handler = make_lambda_handler(judge, checks=(non_empty(), json_valid(SCHEMA), half))
    good_json = '{"compliant": "No", "explanation": "4"}'
    event = [
        {**BEDROCK_SAMPLE, "id": "ok"},
        {**NOVA_SAMPLE, "id": "empty", "messages": [{"role": "assistant", "content": "  "}]},
        {**NOVA_SAMPLE, "id": "not-json"},
        {
            "id": "wrong-shape",
            "messages": [{"role": "assistant", "content": '{"compliant": "Maybe"}'}],
        },
        {
            "id": "halved",
            "messages": [{"role": "assistant", "content": good_json}],
            "metadata": {"reference_answer": "4", "halve": True},
        },
    ]
    output = handler(event)
    check_output_format(event, output)
    scores = {r["id"]: r["aggregate_reward_score"] for r in output}
    assert scores == {
        "ok": GOOD,
        "empty": 0.0,
        "not-json": 0.0,
        "wrong-shape": 0.0,
        "halved": GOOD / 2,
    }
    gated = {r["id"]: metrics(r) for r in output}
    assert gated["empty"] == {"judge": 0.0, "non_empty": 0.0, "judge_failed": 0.0, "gated": 1.0}
    assert gated["not-json"]["json_valid"] == 0.0 and gated["not-json"]["gated"] == 1.0
    assert gated["halved"]["half"] == 0.5 and gated["ok"]["json_valid"] == 1.0
    assert "half" not in gated["ok"]  # None: no opinion, not recorded
    assert len({s["response"] for s in script.seen}) == 2  # the judge saw only ok and halved


def test_a_check_that_breaks_fails_only_its_sample() -> None:
    judge, _ = scripted_judge()

    def broken(answer: str, sample: Any) -> float:
        if answer == "boom":
            raise RuntimeError("bug in a check")
        return 2.0 if answer == "big" else 1.0

    handler = make_lambda_handler(judge, checks=[broken])
    event = [
        {"id": i, "messages": [{"role": "assistant", "content": text}], "reference_answer": "4"}
        for i, text in enumerate(["boom", "big", "4"])
    ]
    output = handler(event)
    assert [r["aggregate_reward_score"] for r in output] == [0.5, 0.5, GOOD]
    assert [metrics(r)["judge_failed"] for r in output] == [1.0, 1.0, 0.0]


def test_deadline_and_lambda_remaining_time() -> None:
    judge, script = scripted_judge()
    event = [
        {
            "id": "fast",
            "messages": [{"role": "assistant", "content": "4"}],
            "reference_answer": "4",
        },
        {"id": "slow", "messages": [{"role": "assistant", "content": "HANG"}]},
    ]
    handler = make_lambda_handler(judge, deadline_s=0.3)
    started = time.monotonic()
    output = handler(event, None)
    assert time.monotonic() - started < 5
    assert [r["aggregate_reward_score"] for r in output] == [GOOD, 0.5]
    assert metrics(output[1])["judge_failed"] == 1.0
    assert judge.stats.failures["timeout"] == 1

    class Context:  # the Lambda context: 5.4 s left, minus the 5 s safety margin
        def get_remaining_time_in_millis(self) -> int:
            return 5_400

    handler = make_lambda_handler(judge, deadline_s=600)
    started = time.monotonic()
    output = handler(event, Context())
    assert time.monotonic() - started < 5
    assert [r["aggregate_reward_score"] for r in output] == [GOOD, 0.5]
    assert script.hung == 2


def test_single_sample_event_and_empty_batch() -> None:
    judge, _ = scripted_judge()
    handler = make_lambda_handler(judge)
    assert handler([], None) == []
    (result,) = handler(NOVA_SAMPLE, None)  # a console test event: one object
    assert result["id"] == "sample_id" and result["aggregate_reward_score"] == GOOD


def test_configuration_is_checked_up_front() -> None:
    judge, _ = scripted_judge()
    with pytest.raises(ConfigurationError, match="neutral"):
        make_lambda_handler(judge, neutral=float("nan"))
    with pytest.raises(ConfigurationError, match="deadline_s"):
        make_lambda_handler(judge, deadline_s=0)
    with pytest.raises(ConfigurationError, match="unique"):
        make_lambda_handler(judge, checks=[non_empty(), non_empty()])
    with pytest.raises(ConfigurationError, match="callables"):
        make_lambda_handler(judge, checks=["non_empty"])  # type: ignore[list-item]


def test_no_time_left_means_no_judge_calls() -> None:
    judge, script = scripted_judge()

    class Context:  # 2 s left: less than the 5 s safety margin
        def get_remaining_time_in_millis(self) -> int:
            return 2_000

    output = make_lambda_handler(judge, checks=[non_empty()])(
        [NOVA_SAMPLE, {"id": "empty", "messages": [{"role": "assistant", "content": ""}]}],
        Context(),
    )
    assert [r["aggregate_reward_score"] for r in output] == [0.5, 0.0]  # the gate still applies
    assert [metrics(r)["judge_failed"] for r in output] == [1.0, 0.0]
    assert script.seen == [] and judge.stats.failures["timeout"] == 1
