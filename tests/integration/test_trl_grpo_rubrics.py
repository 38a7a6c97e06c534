"""A real TRL GRPOTrainer run whose dataset has a ``rubric`` column (per-row rubrics).

Tiny randomly initialised Llama + an in-process BPE tokenizer, CPU only, two steps; the judge is
an OpenAI-compatible loopback server that scores every item id it is shown.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest

from rftjudge import OpenAIClient, RubricJudge

from support.server import LoopbackServer, Reply, chat_reply
from support.tiny_model import log_capture, tiny_args, tiny_model_and_tokenizer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(var, "1")

RUBRIC_BLOCK = re.compile(r"<<<RUBRIC \w+>>>\n(.*?)\n<<<END RUBRIC", re.S)


def test_grpo_trainer_with_a_rubric_column(tmp_path: Any) -> None:
    trl = pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    model, tokenizer = tiny_model_and_tokenizer()
    shown: list[list[str]] = []

    def handler(payload: dict[str, Any]) -> Reply:
        user = payload["messages"][-1]["content"]
        block = RUBRIC_BLOCK.search(user)
        assert block is not None, user
        ids = re.findall(r"^- (\S+)", block.group(1), re.M)
        shown.append(ids)
        scores = {i: 5 if i.startswith("e") else 1 for i in ids}
        return Reply(body=chat_reply(json.dumps({"rationale": "r", "scores": scores})))

    # A list-of-structs column: Arrow fills absent keys with None, which must read as "not given".
    rubrics = [
        [
            {"id": f"e{i}", "description": "Says four", "category": "essential"},
            {"id": f"p{i}", "description": "Says five", "category": "pitfall"},
            {"check": "max_words", "max": 200, "description": "Short"},
        ]
        for i in range(8)
    ]
    dataset = datasets.Dataset.from_dict(
        {"prompt": [f"What is two plus two? ({i})" for i in range(8)], "rubric": rubrics}
    )
    logged: list[dict[str, float]] = []

    with LoopbackServer(handler) as server:
        client = OpenAIClient("judge", base_url=server.base_url, max_concurrency=8, logprobs=False)
        judge = RubricJudge(client, guard=False)
        config = tiny_args(trl.GRPOConfig, tmp_path)
        trainer = trl.GRPOTrainer(
            model=model,
            reward_funcs=[judge.as_reward_func(name="rubric")],
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=[log_capture(logged)],
        )
        trainer.train()
        assert trainer.state.global_step == 2
    # Each request showed one row's own judged items (the program item ran locally).
    assert shown and all(len(ids) == 2 and ids[0][1:] == ids[1][1:] for ids in shown)
    assert judge.stats.failure_count == 0
    means = [row["rewards/rubric/mean"] for row in logged if "rewards/rubric/mean" in row]
    assert means and all(m == pytest.approx(1.0) for m in means)  # essential met, pitfall absent
    keys = set().union(*logged)
    assert "rubric/category/essential" in keys and "rubric/items_passed_rate" in keys, keys
