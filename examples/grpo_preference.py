"""GRPO with a pairwise preference judge ranking each group's completions (TRL).

    python examples/grpo_preference.py --judge-base-url http://localhost:8000/v1 --judge-model Qwen/Qwen3-8B
    python examples/grpo_preference.py --offline      # tiny random policy, rule-based stand-in judge

Each prompt's completions are compared with each other (both orders, to cancel position bias) and
each completion's reward is its win rate — graded rewards where absolute scores tie.
"""

from __future__ import annotations

import argparse
import json
import os
import re

from trl_grpo import tiny_policy  # the same tiny offline policy as examples/trl_grpo.py

from rftjudge import ChatRequest, FunctionClient, OpenAIClient, PreferenceJudge


def offline_judge(request: ChatRequest) -> str:
    """Rule-based stand-in: prefers the response mentioning 'four'/'4', then the shorter one."""
    user = request.messages[-1].content
    shown = re.findall(r"<<<RESPONSE_[AB] \w+>>>\n(.*?)\n<<<END RESPONSE_[AB]", user, re.DOTALL)
    a, b = ([*shown, "", ""])[:2]

    def merit(text: str) -> tuple[bool, int]:
        return ("four" in text.lower() or "4" in text, -len(text))

    winner = "tie" if merit(a) == merit(b) else ("A" if merit(a) > merit(b) else "B")
    return json.dumps({"rationale": "rule-based", "winner": winner})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--offline", action="store_true")
    parser.add_argument("--policy", default="Qwen/Qwen2.5-0.5B-Instruct")
    parser.add_argument("--judge-model", default="gpt-4.1-mini")
    parser.add_argument("--judge-base-url", default=None)
    parser.add_argument("--max-steps", type=int, default=2)
    parser.add_argument("--output-dir", default="grpo-preference-out")
    args = parser.parse_args()
    if args.offline:
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
            os.environ.setdefault(var, "1")
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    if args.offline:
        client = FunctionClient(offline_judge, model="offline-rules")
        model, tokenizer = tiny_policy()
    else:
        client = OpenAIClient(args.judge_model, base_url=args.judge_base_url, max_concurrency=64)
        model, tokenizer = args.policy, None
    judge = PreferenceJudge(client, swap=True, allow_ties=True)
    dataset = Dataset.from_dict(
        {"prompt": [f"What is two plus two? (variant {i})" for i in range(16)]}
    )
    config = GRPOConfig(
        output_dir=args.output_dir,
        max_steps=args.max_steps,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=16,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=args.offline,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[judge.as_reward_func(mode="group", name="preference")],
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.train()
    means = [
        r["rewards/preference/mean"]
        for r in trainer.state.log_history
        if "rewards/preference/mean" in r
    ]
    print(f"steps: {trainer.state.global_step}  rewards/preference/mean per step: {means}")
    print(
        f"comparisons={judge.comparisons} inconsistency_rate={judge.inconsistency_rate:.2f} "
        f"failures={dict(judge.stats.failures)}"
    )


if __name__ == "__main__":
    main()
