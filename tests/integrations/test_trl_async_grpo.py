"""TRL's AsyncGRPOTrainer path: reward functions pickled into a spawned child, called per group.

What runs for real (TRL 1.16, CPU): plain ``pickle`` of ``as_reward_func()``, a ``spawn`` child
that rebuilds the judge and calls it with exactly ``_score_group``'s kwargs against a loopback
judge; ``AsyncRolloutWorker.start()`` — its pickling check, the spawned ``_child_main`` (accelerate
``PartialState``) — running TRL's own ``_AsyncRolloutLoop._score_group`` (NaN for abstentions,
advantages, ``rewards/<name>`` metrics). What cannot run here: the worker's generation loop and the
trainer itself need a vLLM server (``AsyncRolloutWorker`` refuses to start without vllm installed;
the test patches that check and replaces generation by fixed groups, see support/async_grpo.py).
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import pickle
import queue
from collections.abc import Iterator
from typing import Any

import pytest

from rftjudge import Criterion, FunctionClient, ListwiseJudge, OpenAIClient, RubricJudge
from rftjudge.integrations.trl import sync_reward_func

from support.judges import fenced
from support.listwise import ListwiseScript
from support.server import LoopbackServer, Reply, chat_reply

pytest.importorskip("trl")

from trl.experimental.async_grpo import async_rollout_worker as arw
from trl.trainer.utils import get_callable_name, is_async_callable

from support.async_grpo import ScoreOnlyLoop, rollout_group, score_in_child

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

CRITERIA = [Criterion(name="correct", description="Is the answer right?")]


def _grade(payload: dict[str, Any]) -> Reply:
    user = "\n".join(m["content"] for m in payload["messages"] if m["role"] == "user")
    response = fenced(user, "RESPONSE") or ""
    if "FAIL" in response:
        return Reply(body=chat_reply("no verdict"))  # unparseable, also on the re-ask
    score = 5 if "4" in response else 1
    return Reply(body=chat_reply(json.dumps({"rationale": "graded", "scores": {"correct": score}})))


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(_grade) as running:
        yield running


def rubric_judge(server: LoopbackServer) -> RubricJudge:
    return RubricJudge(OpenAIClient("judge", base_url=server.base_url), criteria=CRITERIA)


# One GRPO group of 4 as _score_group passes it: conversational prompts and completions, the
# token ids, and the dataset's columns repeated once per completion. The prompts differ in an
# environment observation appended to the last message, as AsyncGRPO's generate loop does.
QUESTION = [{"role": "user", "content": "What is 2+2?"}]
COMPLETIONS = ["It is 4.", "It is 5.", "FAIL", "4, clearly."]
QUALITY = {c: q for c, q in zip(COMPLETIONS, (9, 3, 5, 7), strict=True)}


def score_group_kwargs(prompts: list[Any] | None = None) -> dict[str, Any]:
    n = len(COMPLETIONS)
    return {
        "completions": [[{"role": "assistant", "content": c}] for c in COMPLETIONS],
        "prompts": prompts or [QUESTION] * n,
        "completion_ids": [[1, 2, 3]] * n,
        "reference": ["4"] * n,
        "task": ["arithmetic"] * n,
    }


def observed_prompts() -> list[Any]:
    return [[{"role": "user", "content": f"What is 2+2?\nobservation: seed {i}"}] for i in range(4)]


@pytest.fixture(scope="module")
def child() -> Iterator[Any]:
    """One spawned process (a fresh interpreter, as AsyncRolloutWorker's child is)."""
    with mp.get_context("spawn").Pool(1) as pool:
        yield pool


def in_spawned_child(pool: Any, func: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    blob = pickle.dumps(func)  # plain pickle, as AsyncRolloutWorker.start checks
    return pool.apply(score_in_child, (blob, kwargs))  # type: ignore[no-any-return]


@pytest.fixture
def worker_module(monkeypatch: pytest.MonkeyPatch) -> Any:
    """TRL's worker module with the vLLM check passed (generation is not exercised) and a plain
    logger (accelerate's needs the trainer's PartialState)."""
    monkeypatch.setattr(arw, "is_vllm_available", lambda: True)
    monkeypatch.setattr(arw, "logger", logging.getLogger("trl.async_rollout_worker"))
    return arw


def test_reward_func_survives_plain_pickle_and_a_spawn_start(
    server: LoopbackServer, child: Any
) -> None:
    func = rubric_judge(server).as_reward_func(name="correctness")
    assert is_async_callable(func) and get_callable_name(func) == "correctness"
    result = in_spawned_child(child, func, score_group_kwargs())
    assert result["name"] == "correctness" and result["async"] is True
    assert result["rewards"] == [1.0, 0.0, None, 1.0]  # the unparseable one abstains
    assert result["failures"] == {"parse": 1}  # counted in the child's own judge.stats
    assert result["requests"] == 5  # 4 judgments + 1 re-ask, sent from the child


def test_sync_wrapper_and_group_function_survive_a_spawn_start(
    server: LoopbackServer, child: Any
) -> None:
    sync = sync_reward_func(rubric_judge(server), name="correctness_sync")
    assert not is_async_callable(sync)
    result = in_spawned_child(child, sync, score_group_kwargs())
    assert result["name"] == "correctness_sync"
    assert result["rewards"] == [1.0, 0.0, None, 1.0]

    judge = ListwiseJudge(FunctionClient(ListwiseScript(QUALITY)), permutations=3, name="rank")
    result = in_spawned_child(child, judge.as_reward_func(), score_group_kwargs(observed_prompts()))
    # one group of 4 despite four different prompt texts: 3 requests (one per order), not 4 groups
    assert result["rewards"] == pytest.approx([0.9, 0.3, 0.5, 0.7])
    assert result["calls"] == 3


def test_async_rollout_worker_refuses_a_closure(worker_module: Any) -> None:

    def closure(prompts: Any, completions: Any, **kwargs: Any) -> list[float]:
        return [0.0] * len(completions)

    refused = arw.AsyncRolloutWorker(reward_funcs=[closure], groups=[])
    refused._loop_cls = ScoreOnlyLoop
    with pytest.raises(TypeError, match="picklable"):
        refused.start()


def test_async_rollout_worker_scores_groups_with_trls_own_score_group(
    server: LoopbackServer, worker_module: Any
) -> None:
    per_sample = rubric_judge(server).as_reward_func(name="correct")
    group = ListwiseJudge(FunctionClient(ListwiseScript(QUALITY)), permutations=3, name="rank")
    n = len(COMPLETIONS)
    kwargs = score_group_kwargs(observed_prompts())
    groups = [
        rollout_group(
            kwargs["prompts"],
            kwargs["completions"],
            {"reference": "4", "task": "arithmetic"},
        ),
        rollout_group(  # the rubric cannot parse any verdict, the listwise script knows none
            [QUESTION] * n,
            [[{"role": "assistant", "content": f"FAIL {i}"}] for i in range(n)],
            {},
            1,
        ),
    ]
    worker = arw.AsyncRolloutWorker(
        reward_funcs=[per_sample, group.as_reward_func()], groups=groups, child_ready_timeout=300
    )
    worker._loop_cls = ScoreOnlyLoop
    worker.start()  # pickle.dumps of every kwarg, then spawn + _child_main
    try:
        first = worker.rollout_buffer.get(timeout=300)
        second = worker.rollout_buffer.get(timeout=300)
    except queue.Empty:  # pragma: no cover - the child died: its traceback is on stderr
        pytest.fail("the spawned rollout child produced no scored group")
    finally:
        worker.stop()
    metrics = [m for _, m in first]
    assert [m["rewards/correct"] for m in metrics] == [
        1.0,
        0.0,
        pytest.approx(math.nan, nan_ok=True),
        1.0,
    ]
    assert [m["rewards/rank"] for m in metrics] == pytest.approx([0.9, 0.3, 0.5, 0.7])
    assert [m["reward"] for m in metrics] == pytest.approx([1.9, 0.3, 0.5, 1.7])
    advantages = [a for a, _ in first]
    assert advantages[0] > advantages[3] > 0 > advantages[2] > advantages[1]
    # a group where every function abstained: NaN rewards, advantage 0 (left out, not punished)
    assert all(math.isnan(m["reward"]) for _, m in second)
    assert [a for a, _ in second] == [0.0] * n
