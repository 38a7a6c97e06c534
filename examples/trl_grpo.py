"""GRPO fine-tuning with an LLM rubric judge as the reward (TRL).

    # against any OpenAI-compatible judge (OpenAI, vLLM, SGLang, llama.cpp, Ollama):
    OPENAI_API_KEY=... python examples/trl_grpo.py --judge-model gpt-4.1-mini
    python examples/trl_grpo.py --judge-base-url http://localhost:8000/v1 --judge-model Qwen/Qwen3-8B

    # offline, anywhere (a tiny random policy and a rule-based stand-in judge; CPU, ~30 s):
    python examples/trl_grpo.py --offline

Needs ``pip install torch`` (CPU is fine) and ``pip install "rftjudge[trl]"``.
"""

from __future__ import annotations

import argparse
import json
import os
import re

from rftjudge import ChatRequest, Criterion, FunctionClient, OpenAIClient, RubricJudge

CRITERIA = [
    Criterion(
        name="correctness", description="Does the answer agree with the reference?", weight=2.0
    ),
    Criterion(name="concise", description="Is it short and to the point?"),
]


def offline_judge(request: ChatRequest) -> str:
    """A rule-based stand-in for a judge model, answering in the verdict schema."""
    user = request.messages[-1].content
    response = re.search(r"<<<RESPONSE \w+>>>\n(.*)\n<<<END RESPONSE", user, re.DOTALL)
    text = response.group(1) if response else ""
    correctness = 5 if "four" in text.lower() or "4" in text else 1 + min(len(set(text)) // 8, 2)
    concise = 5 if 0 < len(text) < 40 else 2
    return json.dumps(
        {"rationale": "rule-based", "scores": {"correctness": correctness, "concise": concise}}
    )


def tiny_policy():  # a 2-layer random Llama and an in-process tokenizer: no downloads
    import tokenizers
    import transformers

    tok = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    tok.train_from_iterator(
        ["What is two plus two? The answer is four, 4."] * 50,
        trainer=tokenizers.trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
            initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    fast.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    config = transformers.LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    return transformers.LlamaForCausalLM(config), fast


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--offline", action="store_true", help="tiny policy + rule-based judge, no network"
    )
    parser.add_argument(
        "--policy", default="Qwen/Qwen2.5-0.5B-Instruct", help="policy model to train"
    )
    parser.add_argument("--judge-model", default="gpt-4.1-mini")
    parser.add_argument("--judge-base-url", default=None, help="OpenAI-compatible judge endpoint")
    parser.add_argument("--max-steps", type=int, default=2)
    parser.add_argument("--output-dir", default="grpo-judge-out")
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

    judge = RubricJudge(client, criteria=CRITERIA, scale=(1, 5), on_error="abstain")
    dataset = Dataset.from_dict(
        {
            "prompt": [
                [{"role": "user", "content": f"What is two plus two? (variant {i})"}]
                for i in range(16)
            ],
            "reference": ["Four (4)."] * 16,
        }
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
        reward_funcs=[judge.as_reward_func(name="judge")],
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.train()
    means = [
        row["rewards/judge/mean"]
        for row in trainer.state.log_history
        if "rewards/judge/mean" in row
    ]
    print(f"steps: {trainer.state.global_step}  rewards/judge/mean per step: {means}")
    print(f"judge stats: judgments={judge.stats.judgments} failures={dict(judge.stats.failures)}")


if __name__ == "__main__":
    main()
