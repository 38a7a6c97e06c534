"""RLOO fine-tuning with an LLM rubric judge as the reward (TRL) — async and sync reward forms.

    OPENAI_API_KEY=... python examples/trl_rloo.py --judge-model gpt-4.1-mini
    python examples/trl_rloo.py --offline      # tiny random policy, rule-based judge, CPU

``judge.as_reward_func()`` is an ``async def`` (GRPO and RLOO run it on their event loop);
``sync_reward_func(judge)`` is the same reward as a plain function, for trainers that only call sync
functions (TRL's Online DPO). This script uses the async one for the policy's reward and logs the
sync one alongside with weight 0, to show both.
"""

from __future__ import annotations

import argparse
import os

from trl_grpo import CRITERIA, offline_judge, tiny_policy

from rftjudge import FunctionClient, OpenAIClient, RubricJudge
from rftjudge.integrations.trl import sync_reward_func


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--offline", action="store_true")
    parser.add_argument("--policy", default="Qwen/Qwen2.5-0.5B-Instruct")
    parser.add_argument("--judge-model", default="gpt-4.1-mini")
    parser.add_argument("--judge-base-url", default=None)
    parser.add_argument("--max-steps", type=int, default=2)
    parser.add_argument("--output-dir", default="rloo-judge-out")
    args = parser.parse_args()
    if args.offline:
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
            os.environ.setdefault(var, "1")
    from datasets import Dataset
    from trl import RLOOConfig, RLOOTrainer

    if args.offline:
        client = FunctionClient(offline_judge, model="offline-rules")
        model, tokenizer = tiny_policy()
    else:
        client = OpenAIClient(args.judge_model, base_url=args.judge_base_url, max_concurrency=64)
        model, tokenizer = args.policy, None
    judge = RubricJudge(client, criteria=CRITERIA, on_error="abstain")
    dataset = Dataset.from_dict(
        {
            "prompt": [
                [{"role": "user", "content": f"What is two plus two? ({i})"}] for i in range(16)
            ],
            "reference": ["Four (4)."] * 16,
        }
    )
    config = RLOOConfig(
        output_dir=args.output_dir,
        max_steps=args.max_steps,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=16,
        beta=0.0,
        reward_weights=[1.0, 0.0],
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=args.offline,
    )
    trainer = RLOOTrainer(
        model=model,
        reward_funcs=[
            judge.as_reward_func(name="judge"),
            sync_reward_func(judge, name="judge_sync"),
        ],
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.train()
    means = [
        r["rewards/judge/mean"] for r in trainer.state.log_history if "rewards/judge/mean" in r
    ]
    print(f"steps: {trainer.state.global_step}  rewards/judge/mean per step: {means}")
    print(f"judge stats: judgments={judge.stats.judgments} failures={dict(judge.stats.failures)}")


if __name__ == "__main__":
    main()
