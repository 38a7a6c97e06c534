"""A real TRL GRPOTrainer run whose reward is an OpenAI ``multi`` grader (a string_check and a
score_model) loaded by rftjudge, the score_model on a loopback judge server over HTTP.

Tiny randomly initialised Llama + an in-process BPE tokenizer, CPU only, two steps.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from rftjudge import OpenAIClient
from rftjudge.graders import load_openai_grader

from support.server import LoopbackServer, Reply, chat_reply
from support.tiny_model import log_capture, tiny_args, tiny_model_and_tokenizer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(var, "1")

GRADER = {
    "type": "multi",
    "name": "rft",
    "graders": {
        "format": {
            "type": "string_check",
            "name": "mentions answer",
            "input": "{{ sample.output_text }}",
            "reference": "{{ item.keyword }}",
            "operation": "ilike",
        },
        "quality": {
            "type": "score_model",
            "name": "quality",
            "model": "gpt-4.1",
            "input": [
                {
                    "role": "system",
                    "content": "Score 0-10 how well this answers: {{ item.prompt }}",
                },
                {"role": "user", "content": "{{ sample.output_text }}"},
            ],
            "range": [0, 10],
        },
    },
    "calculate_output": "0.5 * format + 0.05 * quality",
}


def test_grpo_trainer_with_openai_multi_grader(tmp_path: Any) -> None:
    trl = pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    model, tokenizer = tiny_model_and_tokenizer()

    def handler(payload: dict[str, Any]) -> Reply:
        text = payload["messages"][-1]["content"]
        result = {
            "steps": [{"description": "length", "conclusion": "ok"}],
            "result": len(text) % 11,
        }
        return Reply(body=chat_reply(json.dumps(result)))

    dataset = datasets.Dataset.from_dict(
        {
            "prompt": [f"What is two plus two? ({i})" for i in range(8)],
            "keyword": ["a"] * 8,
        }
    )
    logged: list[dict[str, float]] = []

    with LoopbackServer(handler) as server:
        client = OpenAIClient("judge", base_url=server.base_url, max_concurrency=8)
        grader = load_openai_grader(GRADER, models={"gpt-4.1": client}, on_error="abstain")
        trainer = trl.GRPOTrainer(
            model=model,
            reward_funcs=[grader.as_reward_func(name="rft")],
            args=tiny_args(trl.GRPOConfig, tmp_path),
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=[log_capture(logged)],
        )
        trainer.train()
        assert trainer.state.global_step == 2
        assert len(server.requests) >= 8
        # The item namespace reached the judge: the data set's prompt column in the system turn.
        assert "What is two plus two?" in server.requests[0]["messages"][0]["content"]

    keys = set().union(*logged)
    assert "rewards/rft/mean" in keys, keys
    means = [row["rewards/rft/mean"] for row in logged if "rewards/rft/mean" in row]
    assert all(0.0 <= m <= 1.0 for m in means)
    assert "rft/sub_rewards/format" in keys and "rft/sub_rewards/quality" in keys, keys
    assert grader.stats.failure_count == 0
