"""The real veRL 0.9 reward path, on CPU: veRL loads our reward file by path and scores a DataProto.

No model, GPU or vLLM: a tiny in-process tokenizer (saved to disk, loaded by veRL's hf_tokenizer)
decodes the responses, a loopback server plays the judge. The trainer's own path is covered end to
end — ``RewardLoopManager`` on a local Ray cluster, ``compute_rm_score`` and ``extract_reward`` —
and the managers' edge cases in-process through ``RewardLoopWorker`` (the class veRL wraps as the
Ray actor) and the legacy ``verl.workers.reward_manager`` classes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from rftjudge import JudgeError

from support.server import LoopbackServer, Reply, chat_reply
from support.tiny_model import tiny_model_and_tokenizer

pytest.importorskip("verl")

import numpy as np
import torch
import verl
from omegaconf import DictConfig, OmegaConf
from verl import DataProto
from verl.experimental.reward_loop.reward_loop import (
    RewardLoopManager,
    RewardLoopWorker,
)
from verl.trainer.ppo.reward import extract_reward

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "verl_reward.py"
FORMS = ROOT / "tests" / "support" / "verl_reward_forms.py"

# (correctness, clarity) on the example's 1-5 scale per response; UNJUDGED gets no verdict at all
# (words of the tiny tokenizer's vocabulary, so that it decodes to itself and is content to the guard).
# Normalised to [0, 1] and weighted 2:1, as the example's rubric says.
VERDICTS = {"The answer is four": (5, 3), "two plus two is 4": (3, 5), "five": (1, 1)}
EXPECTED = {  # response -> (score, correctness, clarity)
    "The answer is four": (2.5 / 3, 1.0, 0.5),
    "two plus two is 4": (2.0 / 3, 0.5, 1.0),
    "five": (0.0, 0.0, 0.0),
}
NEUTRAL = 0.5  # the example's JUDGE_ON_ERROR default
UNJUDGED = "Maybe three"
SAMPLES = [  # (question, response): different lengths, so the reward lands on different tokens
    ("What is two plus two?", "The answer is four"),
    ("two plus two?", "two plus two is 4"),
    ("What is 2+2?", UNJUDGED),
    ("2+2?", "five"),
]


def _grade(payload: dict[str, Any]) -> Reply:
    first_user = next(m["content"] for m in payload["messages"] if m["role"] == "user")
    response = first_user.split("RESPONSE:")[-1]
    for text, (correctness, clarity) in VERDICTS.items():
        if text in response:
            verdict = {
                "rationale": "scripted",
                "scores": {"correctness": correctness, "clarity": clarity},
            }
            return Reply(body=chat_reply(json.dumps(verdict)))
    return Reply(body=chat_reply("no verdict"))  # UNJUDGED: unparseable, also on the re-ask


@pytest.fixture(scope="module")
def judge_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(_grade) as server:
        yield server


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """veRL loads the tokenizer itself (``actor_rollout_ref.model.path``), so it lives on disk."""
    _, tokenizer = tiny_model_and_tokenizer()
    path = tmp_path_factory.mktemp("tiny-tokenizer")
    tokenizer.save_pretrained(str(path))
    return path


@pytest.fixture
def judge_env(judge_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> LoopbackServer:
    """What the example reads when veRL imports it in this process."""
    monkeypatch.setenv("JUDGE_BASE_URL", judge_server.base_url)
    monkeypatch.setenv("JUDGE_MODEL", "loopback-judge")
    return judge_server


def verl_config(
    tokenizer_dir: Path, path: Path, name: str, manager: str, **reward: Any
) -> DictConfig:
    """veRL's own full PPO config (the generated YAML main_ppo composes), with the reward overrides."""
    config = OmegaConf.load(
        Path(verl.__path__[0]) / "trainer" / "config" / "_generated_ppo_trainer.yaml"
    )
    config.actor_rollout_ref.model.path = str(tokenizer_dir)
    config.reward.custom_reward_function.path = str(path)
    config.reward.custom_reward_function.name = name
    config.reward.reward_manager.name = manager
    for key, value in reward.items():
        config.reward[key] = value
    assert isinstance(config, DictConfig)
    return config


def make_batch(
    tokenizer_dir: Path,
    samples: list[tuple[str, str]],
    extra_infos: list[Any] | Literal["questions"] | None = "questions",
) -> DataProto:
    """A rollout batch as veRL's trainer holds it: left-padded prompts, right-padded responses.

    ``extra_infos``: each row's ``extra_info`` (default: split, index and question, as veRL's
    example preprocessors store them); ``None``: the data set has no ``extra_info`` column at all.
    """
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    pad = tok.pad_token_id
    prompt_ids = [tok(q, add_special_tokens=False)["input_ids"] for q, _ in samples]
    response_ids = [tok(r, add_special_tokens=False)["input_ids"] for _, r in samples]
    p_len = max(map(len, prompt_ids)) + 1
    r_len = max(map(len, response_ids)) + 2
    prompts, responses, mask = [], [], []
    for p, r in zip(prompt_ids, response_ids, strict=True):
        prompts.append([pad] * (p_len - len(p)) + p)
        responses.append(r + [pad] * (r_len - len(r)))
        mask.append([0] * (p_len - len(p)) + [1] * len(p) + [1] * len(r) + [0] * (r_len - len(r)))
    prompts_t, responses_t = torch.tensor(prompts), torch.tensor(responses)
    n = len(samples)
    if extra_infos == "questions":
        extra_infos = [
            {"split": "train", "index": i, "question": q} for i, (q, _) in enumerate(samples)
        ]
    non_tensors = {
        "data_source": np.array(["openai/gsm8k"] * n, dtype=object),
        "reward_model": np.array([{"style": "rule", "ground_truth": "4"}] * n, dtype=object),
    }
    if extra_infos is not None:
        column = np.empty(n, dtype=object)
        column[:] = extra_infos
        non_tensors["extra_info"] = column
    data: DataProto = DataProto.from_dict(
        tensors={
            "prompts": prompts_t,
            "responses": responses_t,
            "input_ids": torch.cat([prompts_t, responses_t], dim=1),
            "attention_mask": torch.tensor(mask),
        },
        non_tensors=non_tensors,
    )
    return data


def last_token(data: DataProto) -> torch.Tensor:
    """Index of each sample's last valid response token, where veRL puts the sequence reward."""
    response_length = data.batch["responses"].shape[1]
    index: torch.Tensor = data.batch["attention_mask"][:, -response_length:].sum(dim=1) - 1
    return index


def expected_row(response: str) -> dict[str, float]:
    if response not in EXPECTED:
        return {"score": NEUTRAL, "judge_failed": 1.0, "correctness": NEUTRAL, "clarity": NEUTRAL}
    score, correctness, clarity = EXPECTED[response]
    return {"score": score, "judge_failed": 0.0, "correctness": correctness, "clarity": clarity}


def assert_token_rewards(
    reward: torch.Tensor, data: DataProto, samples: list[tuple[str, str]]
) -> None:
    last = last_token(data)
    assert len(set(last.tolist())) > 1  # the samples really end on different tokens
    expected = torch.zeros_like(reward)
    for i, (_, response) in enumerate(samples):
        expected[i, last[i]] = expected_row(response)["score"]
    torch.testing.assert_close(reward, expected)


def assert_extra_info(info: dict[str, Any], samples: list[tuple[str, str]]) -> None:
    assert list(info) == ["score", "judge_failed", "correctness", "clarity"]
    for key, values in info.items():
        want = [expected_row(r)[key] for _, r in samples]
        np.testing.assert_allclose(np.asarray(values, dtype=float), want)


def assert_judge_saw_the_dataset(server: LoopbackServer, start: int = 0) -> None:
    """Question from extra_info["question"], reference from reward_model.ground_truth."""
    sent = [p["messages"][-1]["content"] for p in server.requests[start:]]
    for question, response in SAMPLES:
        prompt = next(s for s in sent if response in s.split("RESPONSE:")[-1])
        assert question in prompt.split("REFERENCE:")[0]
        assert "4" in prompt.split("REFERENCE:")[1].split("RESPONSE:")[0]


# -- the trainer's path: RewardLoopManager on a local Ray cluster -------------------------------


@pytest.fixture(scope="module")
def ray_cluster(judge_server: LoopbackServer) -> Iterator[Any]:
    """Ray's workers get the judge's address the way a launcher would give it: the job's env."""
    ray = pytest.importorskip("ray")
    env = {"JUDGE_BASE_URL": judge_server.base_url, "JUDGE_MODEL": "loopback-judge"}
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env}
    )
    try:
        yield ray
    finally:
        ray.shutdown()


def run_reward_loop(ray: Any, config: DictConfig, data: DataProto) -> tuple[torch.Tensor, dict[str, Any]]:
    """What RayPPOTrainer does each step: compute_rm_score, union into the batch, extract_reward."""
    manager = RewardLoopManager(config)
    try:
        batch = data.union(manager.compute_rm_score(data))
        reward: tuple[torch.Tensor, dict[str, Any]] = extract_reward(batch)
        return reward
    finally:
        for worker in manager.reward_loop_workers:  # named actors: free the names for the next test
            ray.kill(worker)


def test_reward_loop_on_ray_scores_the_example_as_the_trainer_does(
    ray_cluster: Any, judge_server: LoopbackServer, tokenizer_dir: Path
) -> None:
    start = len(judge_server.requests)
    config = verl_config(
        tokenizer_dir, EXAMPLE, "compute_score", "rate_limited", num_workers=2, max_concurrent=8
    )
    data = make_batch(tokenizer_dir, SAMPLES)
    reward, info = run_reward_loop(ray_cluster, config, data)
    assert_token_rewards(reward, data, SAMPLES)
    assert_extra_info(info, SAMPLES)  # the failed sample: neutral value, judge_failed = 1
    assert_judge_saw_the_dataset(judge_server, start)


def test_remote_manager_runs_the_sync_form_in_its_own_ray_actors(
    ray_cluster: Any, judge_server: LoopbackServer, tokenizer_dir: Path
) -> None:
    """The ``remote`` manager refuses async functions and pickles the function into Ray actors."""
    config = verl_config(tokenizer_dir, FORMS, "compute_score_sync", "remote", num_workers=1)
    data = make_batch(tokenizer_dir, SAMPLES)
    reward, info = run_reward_loop(ray_cluster, config, data)
    assert_token_rewards(reward, data, SAMPLES)
    assert_extra_info(info, SAMPLES)


def test_on_error_raise_fails_the_step_even_under_rate_limited(
    ray_cluster: Any, tokenizer_dir: Path
) -> None:
    """rate_limited turns the error into other keys; the collection takes the first sample's keys."""
    config = verl_config(
        tokenizer_dir, FORMS, "compute_score_raise", "rate_limited", num_workers=1, max_concurrent=4
    )
    with pytest.raises(KeyError):
        run_reward_loop(ray_cluster, config, make_batch(tokenizer_dir, SAMPLES))


# -- the managers in-process (RewardLoopWorker is the class veRL runs as the Ray actor) ----------


async def score_in_process(config: DictConfig, data: DataProto) -> list[dict[str, Any]]:
    worker = RewardLoopWorker(config)  # built inside the running loop, as in its actor
    return await worker.compute_score_batch(data)


@pytest.mark.parametrize("manager", ["naive", "rate_limited", "dapo", "gdpo"])
async def test_every_async_manager_awaits_the_example(
    manager: str, judge_env: LoopbackServer, tokenizer_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from verl.experimental.reward_loop.reward_manager.limited import RateLimitedRewardManager

    # its limiters are class state bound to the first event loop that used them
    monkeypatch.setattr(RateLimitedRewardManager, "_class_initialized", False)
    start = len(judge_env.requests)
    config = verl_config(
        tokenizer_dir,
        EXAMPLE,
        "compute_score",
        manager,
        max_concurrent=4,
    )
    config.reward.custom_reward_function.reward_kwargs = {"extra_arg": 1}  # bound with a partial
    data = make_batch(tokenizer_dir, SAMPLES)
    outputs = await score_in_process(config, data)
    assert [o["reward_score"] for o in outputs] == pytest.approx(
        [expected_row(r)["score"] for _, r in SAMPLES]
    )
    assert [o["reward_extra_info"] for o in outputs] == [
        pytest.approx(expected_row(r)) for _, r in SAMPLES
    ]
    assert_judge_saw_the_dataset(judge_env, start)


async def test_on_error_raise_fails_the_naive_manager(
    judge_env: LoopbackServer, tokenizer_dir: Path
) -> None:
    config = verl_config(tokenizer_dir, FORMS, "compute_score_raise", "naive")
    with pytest.raises(JudgeError):
        await score_in_process(config, make_batch(tokenizer_dir, SAMPLES[2:3]))


async def test_on_error_raise_under_rate_limited_scores_zero_with_an_error_key(
    judge_env: LoopbackServer, tokenizer_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rate_limited catches the error itself: 0.0 and other keys — which the reward loop's
    collection (keys of the first sample, for every sample) cannot stack with judged samples."""
    from verl.experimental.reward_loop.reward_manager.limited import RateLimitedRewardManager

    monkeypatch.setattr(RateLimitedRewardManager, "_class_initialized", False)
    config = verl_config(tokenizer_dir, FORMS, "compute_score_raise", "rate_limited")
    ok, failed = await score_in_process(config, make_batch(tokenizer_dir, SAMPLES[:3:2]))
    assert ok["reward_extra_info"] == pytest.approx(expected_row(SAMPLES[0][1]))
    assert failed["reward_score"] == 0.0
    assert set(failed["reward_extra_info"]) == {"error", "acc"}
    assert failed["reward_extra_info"]["acc"] == 0.0
    assert isinstance(failed["reward_extra_info"]["error"], str)


# -- the legacy verl.workers.reward_manager classes (sync; no longer used by 0.9's trainers) ------


@pytest.mark.parametrize(
    ("manager_name", "path", "function"),
    [
        ("BatchRewardManager", EXAMPLE, "compute_score_batch"),  # the batch form
        ("NaiveRewardManager", FORMS, "compute_score_sync"),  # calls it synchronously
    ],
)
def test_legacy_managers_take_the_batch_and_sync_forms(
    judge_env: LoopbackServer, tokenizer_dir: Path, manager_name: str, path: Path, function: str
) -> None:
    from transformers import AutoTokenizer
    from verl.utils.import_utils import load_extern_object
    from verl.workers import reward_manager

    compute_score = load_extern_object(str(path), function)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    manager = getattr(reward_manager, manager_name)(
        tokenizer, num_examine=0, compute_score=compute_score
    )
    data = make_batch(tokenizer_dir, SAMPLES)
    out = manager(data, return_dict=True)
    assert_token_rewards(out["reward_tensor"], data, SAMPLES)
    assert_extra_info(dict(out["reward_extra_info"]), SAMPLES)


# -- rows without a question: judged without it, never refused ----------------------------------

NO_QUESTION: dict[str, list[dict[str, Any]] | None] = {
    "no extra_info column": None,
    "empty extra_info": [{} for _ in SAMPLES],
    "extra_info without a question": [{"split": "train", "index": i} for i in range(len(SAMPLES))],
}


def assert_judge_saw_no_question(server: LoopbackServer, start: int) -> None:
    sent = [p["messages"][-1]["content"] for p in server.requests[start:]]
    assert sent
    for question, _ in SAMPLES:
        assert not any(question in s.split("RESPONSE:")[0] for s in sent)


@pytest.mark.parametrize("case", list(NO_QUESTION))
@pytest.mark.parametrize("manager", ["naive", "rate_limited"])
async def test_rows_without_a_question_are_judged_without_it(
    case: str,
    manager: str,
    judge_env: LoopbackServer,
    tokenizer_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from verl.experimental.reward_loop.reward_manager.limited import RateLimitedRewardManager

    monkeypatch.setattr(RateLimitedRewardManager, "_class_initialized", False)
    start = len(judge_env.requests)
    config = verl_config(tokenizer_dir, EXAMPLE, "compute_score", manager, max_concurrent=4)
    outputs = await score_in_process(
        config, make_batch(tokenizer_dir, SAMPLES, extra_infos=NO_QUESTION[case])
    )
    assert [o["reward_extra_info"] for o in outputs] == [
        pytest.approx(expected_row(r)) for _, r in SAMPLES
    ]
    assert_judge_saw_no_question(judge_env, start)


async def test_extra_info_none_in_the_reward_loops_call_shape(judge_env: LoopbackServer) -> None:
    """veRL's own managers index extra_info before calling (a None row fails inside veRL), but a
    custom manager or a direct call may pass None: judged without the question."""
    forms = _load_example_module()
    start = len(judge_env.requests)
    for extra_info in (None, {}, {"question": None}, {"question": ""}):
        result = await forms.compute_score(
            data_source="openai/gsm8k",
            solution_str="The answer is four",
            ground_truth="4",
            extra_info=extra_info,
        )
        assert result == pytest.approx(expected_row("The answer is four"))
    batch = forms.compute_score_batch(
        data_sources=["x", "x"],
        solution_strs=["The answer is four", "five"],
        ground_truths=["4", None],
        extra_infos=[None, {"split": "train"}],
    )
    assert batch == [
        pytest.approx(expected_row("The answer is four")),
        pytest.approx(expected_row("five")),
    ]
    assert_judge_saw_no_question(judge_env, start)


def _load_example_module() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("rftjudge_example_verl_reward_t20", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
