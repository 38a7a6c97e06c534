"""A real TRL RLOOTrainer run with the same judge reward functions GRPO uses.

Two reward functions on one loopback judge server: ``judge.as_reward_func()`` (async, run on TRL's
event loop) and ``sync_reward_func(judge)`` (the plain form for trainers that only call sync
functions). Tiny random Llama, CPU, two steps.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

import pytest

from rftjudge import Criterion, OpenAIClient, RubricJudge
from rftjudge.integrations.trl import sync_reward_func

from support.server import LoopbackServer, Reply, chat_reply
from support.tiny_model import log_capture, tiny_args, tiny_model_and_tokenizer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(var, "1")


def test_rloo_trainer_two_steps_with_async_and_sync_judge_rewards(tmp_path: Any) -> None:
    trl = pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    from trl.trainer.utils import is_async_callable

    model, tokenizer = tiny_model_and_tokenizer()
    rng = random.Random(0)

    def handler(payload: dict[str, Any]) -> Reply:
        scores = {"correctness": rng.randint(1, 5), "tone": rng.randint(1, 5)}
        return Reply(body=chat_reply(json.dumps({"rationale": "r", "scores": scores})))

    dataset = datasets.Dataset.from_dict(
        {
            "prompt": [
                [{"role": "user", "content": f"What is two plus two? ({i})"}] for i in range(8)
            ],
            "reference": ["Four."] * 8,
        }
    )
    criteria = [
        Criterion(name="correctness", description="Right?", weight=2.0),
        Criterion(name="tone", description="Polite?"),
    ]
    logged: list[dict[str, float]] = []

    with LoopbackServer(handler) as server:
        client = OpenAIClient("judge", base_url=server.base_url, max_concurrency=8)
        judge = RubricJudge(client, criteria=criteria)
        second = RubricJudge(client, criteria=criteria, temperature=0.5)  # distinct requests
        async_reward = judge.as_reward_func(name="judge")
        sync_reward = sync_reward_func(second, name="judge_sync")
        assert is_async_callable(async_reward) and not is_async_callable(sync_reward)

        config = tiny_args(
            trl.RLOOConfig, tmp_path, beta=0.0
        )  # no KL reference model: it would be loaded by name, and there is none
        trainer = trl.RLOOTrainer(
            model=model,
            reward_funcs=[async_reward, sync_reward],
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=[log_capture(logged)],
        )
        trainer.train()
        assert trainer.state.global_step == 2
        assert len(server.requests) >= 16  # both functions judged every completion
        assert "Four." in server.requests[0]["messages"][-1]["content"]

    keys = set().union(*logged)
    for name in ("judge", "judge_sync"):
        assert f"rewards/{name}/mean" in keys, keys
        means = [row[f"rewards/{name}/mean"] for row in logged if f"rewards/{name}/mean" in row]
        assert means and all(0.0 <= m <= 1.0 for m in means)
    assert judge.stats.judgments >= 8 and second.stats.judgments >= 8
    assert not judge.stats.failures and not second.stats.failures
