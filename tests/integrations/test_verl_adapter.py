"""veRL adapter: the calls veRL 0.9's reward managers make, on rows shaped like its datasets."""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import threading
from typing import Any

import pytest

from rftjudge import ConfigurationError, JudgeError
from rftjudge.integrations.verl import make_batch_compute_score, make_compute_score

from support.judges import BAD, GOOD, scripted_judge

# A row as veRL's examples/data_preprocess/gsm8k.py writes it.
ROW: dict[str, Any] = {
    "data_source": "openai/gsm8k",
    "prompt": [{"role": "user", "content": "What is 2+2? Let's think step by step."}],
    "ability": "math",
    "reward_model": {"style": "rule", "ground_truth": "4"},
    "extra_info": {"split": "train", "index": 0, "answer": "2+2=4 #### 4", "question": "2+2?"},
}


async def naive_manager_call(compute_score: Any, solution: str, row: dict[str, Any] = ROW) -> Any:
    """What NaiveRewardManager.run_single does with a custom compute_score."""
    extra_info = dict(row.get("extra_info", {}))
    extra_info["num_turns"] = None
    extra_info["rollout_reward_scores"] = {}
    kwargs = {
        "data_source": row["data_source"],
        "solution_str": solution,
        "ground_truth": row["reward_model"]["ground_truth"],
        "extra_info": extra_info,
    }
    if inspect.iscoroutinefunction(compute_score):
        return await compute_score(**kwargs)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, lambda: compute_score(**kwargs))


def test_default_form_is_a_plain_async_def_that_verl_detects() -> None:
    judge, _ = scripted_judge(on_error=0.5)
    compute_score = make_compute_score(judge)
    assert inspect.iscoroutinefunction(compute_score)
    # reward.custom_reward_function.reward_kwargs are bound with functools.partial
    assert inspect.iscoroutinefunction(functools.partial(compute_score, extra_arg=1))
    assert compute_score.__name__ == "compute_score"


async def test_score_dict_with_per_criterion_extras_and_question_from_extra_info() -> None:
    judge, script = scripted_judge(on_error=0.5)
    compute_score = make_compute_score(judge)
    result = await naive_manager_call(compute_score, "The answer is 4.")
    assert result == {"score": GOOD, "judge_failed": 0.0, "correctness": 1.0, "tone": 0.5}
    assert script.seen[0] == {"prompt": "2+2?", "response": "The answer is 4.", "reference": "4"}


async def test_failure_gives_on_error_and_a_flag_with_the_same_keys() -> None:
    judge, _ = scripted_judge(on_error=0.5)
    compute_score = make_compute_score(judge)
    ok, failed = await asyncio.gather(
        naive_manager_call(compute_score, "4"), naive_manager_call(compute_score, "FAIL")
    )
    assert failed == {"score": 0.5, "judge_failed": 1.0, "correctness": 0.5, "tone": 0.5}
    assert ok.keys() == failed.keys()
    assert all(isinstance(v, float) and math.isfinite(v) for v in failed.values())
    assert judge.stats.failures["parse"] == 1


async def test_adapter_on_error_overrides_the_judges() -> None:
    judge, _ = scripted_judge()  # on_error="abstain"
    compute_score = make_compute_score(judge, on_error=0.25)
    result = await naive_manager_call(compute_score, "FAIL")
    assert result["score"] == 0.25 and result["judge_failed"] == 1.0


def test_abstaining_judge_without_a_number_is_refused() -> None:
    judge, _ = scripted_judge()  # on_error="abstain": veRL cannot take None
    with pytest.raises(ConfigurationError, match="on_error=<a number"):
        make_compute_score(judge)
    with pytest.raises(ConfigurationError):
        make_compute_score(judge, on_error="abstain")
    with pytest.raises(ConfigurationError):
        make_compute_score(judge, on_error=2.0)


async def test_on_error_raise_lets_the_error_through() -> None:
    judge, _ = scripted_judge()
    compute_score = make_compute_score(judge, on_error="raise")
    with pytest.raises(JudgeError):
        await naive_manager_call(compute_score, "FAIL")


async def test_question_key_is_configurable_and_a_missing_question_is_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    judge, script = scripted_judge(on_error=0.5)
    row = {**ROW, "extra_info": {"problem": "What is 2+2?"}}
    compute_score = make_compute_score(judge)
    with caplog.at_level("WARNING", logger="rftjudge"):
        await naive_manager_call(compute_score, "4", row)
        await naive_manager_call(compute_score, "4", row)
    assert script.seen[-1]["prompt"] == ""
    warnings = [r for r in caplog.records if "judging without the question" in r.getMessage()]
    assert len(warnings) == 1 and "problem" in warnings[0].getMessage()  # once, naming the keys
    await naive_manager_call(make_compute_score(judge, question_key="problem"), "4", row)
    assert script.seen[-1]["prompt"] == "What is 2+2?"
    await naive_manager_call(make_compute_score(judge, question_key=None), "4", row)
    assert script.seen[-1]["prompt"] == ""


async def test_structured_ground_truth_reaches_the_judge_as_json() -> None:
    np = pytest.importorskip("numpy")
    judge, script = scripted_judge(on_error=0.5)
    compute_score = make_compute_score(judge)
    row = {**ROW, "reward_model": {"ground_truth": np.array(["4", "four"])}}  # parquet list column
    await naive_manager_call(compute_score, "4", row)
    assert script.seen[-1]["reference"] == '["4", "four"]'
    row = {**ROW, "reward_model": {"ground_truth": 4}}
    await naive_manager_call(compute_score, "4", row)
    assert script.seen[-1]["reference"] == "4"


async def test_sync_form_runs_in_verl_thread_pool_and_under_a_running_loop() -> None:
    judge, _ = scripted_judge(on_error=0.5)
    compute_score = make_compute_score(judge, sync=True)
    assert not inspect.iscoroutinefunction(compute_score)
    result = await naive_manager_call(compute_score, "4")  # run_in_executor, as veRL does
    assert result["score"] == GOOD
    # called directly from a thread whose event loop is running (this test's loop)
    direct = compute_score(
        data_source="x", solution_str="2", ground_truth="4", extra_info={"question": "q"}
    )
    assert direct["score"] == BAD
    assert threading.current_thread() is threading.main_thread()


def test_batch_form_for_the_legacy_batch_manager() -> None:
    np = pytest.importorskip("numpy")
    judge, _ = scripted_judge(on_error=0.5)
    compute_score = make_batch_compute_score(judge)
    infos = np.array(
        [{"question": "2+2?"}, {"question": "3+1?"}, {"question": "1+1?"}], dtype=object
    )
    results = compute_score(
        data_sources=np.array(["gsm8k"] * 3, dtype=object),
        solution_strs=["4", "FAIL", "3"],
        ground_truths=["4", "4", "2"],
        extra_infos=infos,
        custom_kwarg=True,
    )
    assert [r["score"] for r in results] == [GOOD, 0.5, BAD]
    assert [r["judge_failed"] for r in results] == [0.0, 1.0, 0.0]
    assert len({tuple(r) for r in results}) == 1  # same keys for every sample
    with pytest.raises(ConfigurationError, match="3 solutions"):
        compute_score(
            data_sources=["a"] * 3, solution_strs=["a"] * 3, ground_truths=["4"], extra_infos=infos
        )


def test_criterion_named_like_a_result_key_is_refused() -> None:
    from rftjudge import Criterion, FunctionClient, RubricJudge

    judge = RubricJudge(
        FunctionClient(lambda r: "{}"),
        criteria=[Criterion(name="score", description="x")],
        on_error=0.5,
    )
    with pytest.raises(ConfigurationError, match="clash"):
        make_compute_score(judge)
