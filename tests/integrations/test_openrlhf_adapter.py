"""OpenRLHF adapter: query stripping and the reward_func file form, called as OpenRLHF calls it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rftjudge import ConfigurationError
from rftjudge.integrations.openrlhf import make_reward_func, response_of

from support.judges import BAD, GOOD, scripted_judge

# Qwen2.5's chat template, as OpenRLHF renders prompts with --data.apply_chat_template.
QWEN_PROMPT = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
)
EOS = "<|im_end|>"


@pytest.mark.parametrize(
    ("query", "prompt", "eos", "expected"),
    [
        # decode(prompt + response ids, skip_special_tokens=False): the template, the answer, EOS
        (QWEN_PROMPT + "The answer is 4." + EOS, QWEN_PROMPT, EOS, "The answer is 4."),
        # a tokenizer that adds BOS when encoding: the decoded query starts with it
        ("<s>[INST] 2+2? [/INST] 4</s>", "[INST] 2+2? [/INST]", "</s>", " 4"),
        # several end tokens, in any order, and trailing whitespace
        ("P: x\nA: four<|im_end|><|endoftext|>\n", "P: x\nA:", ["<|endoftext|>", EOS], " four"),
        # a left-truncated prompt: only its end survives in the query
        (QWEN_PROMPT[40:] + "4" + EOS, QWEN_PROMPT, EOS, "4"),
        # no EOS configured: special tokens stay
        (QWEN_PROMPT + "4" + EOS, QWEN_PROMPT, None, "4" + EOS),
        # the prompt cannot be found: judge the whole query rather than guess
        ("completely different", QWEN_PROMPT, None, "completely different"),
        # no prompt sent
        ("just a response", "", None, "just a response"),
    ],
)
def test_response_of_strips_prompt_and_eos(
    query: str, prompt: str, eos: Any, expected: str
) -> None:
    assert response_of(query, prompt, eos) == expected


async def openrlhf_calls(reward_func: Any, query: str, prompt: str, label: str) -> Any:
    """What SingleTurnExecutor._fetch_rewards_via_func does: one sample per call, in a thread."""
    return await asyncio.to_thread(reward_func, [query], [prompt], [label])


async def test_reward_func_answers_the_openrlhf_dict() -> None:
    judge, script = scripted_judge(on_error=0.5)
    reward_func = make_reward_func(judge, eos_token=EOS)
    result = await openrlhf_calls(reward_func, QWEN_PROMPT + "It is 4." + EOS, QWEN_PROMPT, "4")
    assert result == {
        "rewards": [GOOD],
        "scores": [GOOD],
        "extra_logs": {"judge_failed": [0.0], "correctness": [1.0], "tone": [0.5]},
    }
    assert script.seen[0]["response"] == "It is 4."
    assert script.seen[0]["reference"] == "4"
    assert script.seen[0]["prompt"] == QWEN_PROMPT


async def test_reward_func_failure_and_missing_label() -> None:
    judge, script = scripted_judge(on_error=0.5)
    reward_func = make_reward_func(judge, eos_token=EOS, prompt_text=lambda p: p.upper())
    failed = await openrlhf_calls(reward_func, QWEN_PROMPT + "FAIL" + EOS, QWEN_PROMPT, "4")
    assert failed["rewards"] == [0.5]
    assert failed["extra_logs"]["judge_failed"] == [1.0]
    no_label = await openrlhf_calls(reward_func, QWEN_PROMPT + "2" + EOS, QWEN_PROMPT, "")
    assert no_label["rewards"] == [BAD]
    assert script.seen[-1]["reference"] is None  # "" (no --data.label_key) means no reference
    assert script.seen[-1]["prompt"] == QWEN_PROMPT.upper()


def test_reward_func_batches_and_tolerates_empty_lists() -> None:
    judge, _ = scripted_judge(on_error=0.5)
    reward_func = make_reward_func(judge)
    assert reward_func([], [], []) == {
        "rewards": [],
        "scores": [],
        "extra_logs": {"judge_failed": [], "correctness": [], "tone": []},
    }
    result = reward_func(["p 4", "p 1", "p FAIL"], ["p", "p", "p"], ["4", "4", "4"])
    assert result["rewards"] == [GOOD, BAD, 0.5]


def test_reward_func_needs_a_number_on_failure() -> None:
    judge, _ = scripted_judge()  # abstain
    with pytest.raises(ConfigurationError, match="on_error"):
        make_reward_func(judge)
    with pytest.raises(ConfigurationError, match="always answer"):
        make_reward_func(judge, on_error="raise")
    with pytest.raises(ConfigurationError, match="deadline_s"):
        make_reward_func(judge, on_error=0.5, deadline_s=0)


def test_reward_func_deadline_gives_the_neutral_value() -> None:
    judge, script = scripted_judge(on_error=0.5)
    reward_func = make_reward_func(judge, deadline_s=0.2)
    result = reward_func(["p 4", "p HANG"], ["p", "p"], ["4", "4"])
    assert result["rewards"] == [GOOD, 0.5]
    assert result["extra_logs"]["judge_failed"] == [0.0, 1.0]
    assert script.hung == 1
    assert judge.stats.failures["timeout"] == 1
