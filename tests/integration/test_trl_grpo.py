"""A real TRL GRPOTrainer run whose reward is ``judge.as_reward_func()`` on a loopback judge server.

Tiny randomly initialised Llama + an in-process BPE tokenizer, CPU only, two steps.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

import pytest

from rftjudge import Criterion, OpenAIClient, PreferenceJudge, RubricJudge

from support.server import LoopbackServer, Reply, chat_reply
from support.tiny_model import log_capture, tiny_args, tiny_model_and_tokenizer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(var, "1")


def test_grpo_trainer_two_steps_with_judge_reward(tmp_path: Any) -> None:
    trl = pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    model, tokenizer = tiny_model_and_tokenizer()

    rng = random.Random(0)

    def handler(payload: dict[str, Any]) -> Reply:
        scores = {"correctness": rng.randint(1, 5), "tone": rng.randint(1, 5)}
        return Reply(body=chat_reply(json.dumps({"rationale": "r", "scores": scores})))

    dataset = datasets.Dataset.from_dict(
        {
            "prompt": [f"What is two plus two? ({i})" for i in range(8)],
            "reference": ["Four."] * 8,
        }
    )
    with LoopbackServer(handler) as server:
        client = OpenAIClient("judge", base_url=server.base_url, max_concurrency=8)
        judge = RubricJudge(
            client,
            criteria=[
                Criterion(name="correctness", description="Right?", weight=2.0),
                Criterion(name="tone", description="Polite?"),
            ],
        )
        reward = judge.as_reward_func(name="judge")
        logged: list[dict[str, float]] = []

        config = tiny_args(trl.GRPOConfig, tmp_path)
        trainer = trl.GRPOTrainer(
            model=model,
            reward_funcs=[reward],
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=[log_capture(logged)],
        )
        trainer.train()
        assert trainer.state.global_step == 2
        assert len(server.requests) >= 8
        # The reference column reached the judge prompt.
        assert "Four." in server.requests[0]["messages"][-1]["content"]

    keys = set().union(*logged)
    assert "rewards/judge/mean" in keys, keys
    means = [row["rewards/judge/mean"] for row in logged if "rewards/judge/mean" in row]
    assert all(0.0 <= m <= 1.0 for m in means)
    assert any(k.startswith("judge/") for k in keys), keys  # log_metric: failure rate, criteria


def test_grpo_trainer_with_preference_group_reward(tmp_path: Any) -> None:
    """Group mode: each prompt's completions are compared pairwise, both orders, on real HTTP."""
    trl = pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    model, tokenizer = tiny_model_and_tokenizer()

    def handler(payload: dict[str, Any]) -> Reply:
        user = payload["messages"][-1]["content"]
        a = user.split("RESPONSE A:")[1].split("RESPONSE B:")[0]
        b = user.split("RESPONSE B:")[1]
        winner = "A" if len(a) < len(b) else "B" if len(b) < len(a) else "tie"
        return Reply(body=chat_reply(json.dumps({"rationale": "shorter", "winner": winner})))

    dataset = datasets.Dataset.from_dict({"prompt": [f"Say something ({i})" for i in range(8)]})
    logged: list[dict[str, float]] = []

    with LoopbackServer(handler) as server:
        judge = PreferenceJudge(OpenAIClient("judge", base_url=server.base_url, logprobs=False))
        trainer = trl.GRPOTrainer(
            model=model,
            reward_funcs=[judge.as_reward_func(mode="group", name="pref")],
            args=tiny_args(trl.GRPOConfig, tmp_path),
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=[log_capture(logged)],
        )
        trainer.train()
        assert trainer.state.global_step == 2
        assert server.requests  # pairwise comparisons went over HTTP
        assert judge.comparisons > 0
    keys = set().union(*logged)
    assert "rewards/pref/mean" in keys, keys
    assert "pref/inconsistency_rate" in keys or "pref/failure_rate" in keys, keys
