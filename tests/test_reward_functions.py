"""The reward-function objects: pickling, naming, async detection, metrics sinks, group finding."""

from __future__ import annotations

import inspect
import json
import logging
import pickle
from pathlib import Path
from typing import Any

import pytest

from rftjudge import ConfigurationError, FunctionClient, ListwiseJudge
from rftjudge.integrations.trl import sync_reward_func
from rftjudge.rewards import GroupRewardFunction, RewardFunction, group_rows

from support.judges import GOOD, scripted_judge
from support.listwise import ListwiseScript

trl_utils = pytest.importorskip("trl.trainer.utils")


class Collect:  # a module-level callable sink: it pickles
    def __init__(self) -> None:
        self.calls: list[dict[str, float]] = []

    def __call__(self, metrics: dict[str, float]) -> None:
        self.calls.append(metrics)


def test_reward_function_pickles_keeps_its_name_and_reads_as_async() -> None:
    judge, _ = scripted_judge(on_error=0.5)
    for func in (judge.as_reward_func(name="my judge"), sync_reward_func(judge, name="my judge")):
        copy = pickle.loads(pickle.dumps(func))
        assert type(copy) is type(func)
        assert copy.__name__ == func.__name__ == "my_judge"
        assert trl_utils.get_callable_name(copy) == "my_judge"
    func = judge.as_reward_func()
    assert isinstance(func, RewardFunction)
    assert trl_utils.is_async_callable(func) and trl_utils.is_async_callable(
        pickle.loads(pickle.dumps(func))
    )
    assert not trl_utils.is_async_callable(sync_reward_func(judge))


def test_python_3_12_marks_the_object_as_a_coroutine_function() -> None:
    judge, _ = scripted_judge()
    func = pickle.loads(pickle.dumps(judge.as_reward_func()))
    # TRL 0.27-1.13 and veRL check inspect.iscoroutinefunction: only Python >= 3.12 can mark an object
    expected = hasattr(inspect, "markcoroutinefunction")
    assert inspect.iscoroutinefunction(func) is expected


async def test_metrics_go_to_log_metric_when_the_trainer_passes_one_else_to_the_sink(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    judge, _ = scripted_judge()
    sink = Collect()
    func = judge.as_reward_func(metrics_sink=sink)
    logged: dict[str, float] = {}
    await func(prompts=["2+2?"] * 2, completions=["4", "FAIL"], log_metric=logged.__setitem__)
    assert logged["judge/failure_rate"] == 0.5 and sink.calls == []  # the trainer's logger wins
    rewards = await func(prompts=["2+2?"] * 2, completions=["4", "FAIL"])  # AsyncGRPO: no logger
    assert rewards == [GOOD, None]
    assert sink.calls[-1]["judge/failure_rate"] == 0.5
    assert sink.calls[-1]["judge/failures/parse"] == 1.0

    path = tmp_path / "judge_metrics.jsonl"
    func = pickle.loads(pickle.dumps(judge.as_reward_func(metrics_sink=path)))
    await func(prompts=["q"], completions=["4"])
    await func(prompts=["q"], completions=["FAIL"])
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["metrics"]["judge/failure_rate"] for line in lines] == [0.0, 1.0]
    assert {line["reward_func"] for line in lines} == {"judge"} and all("pid" in x for x in lines)

    func = judge.as_reward_func(metrics_sink=logging.getLogger("rftjudge.metrics"))
    with caplog.at_level(logging.INFO, logger="rftjudge.metrics"):
        await func(prompts=["q"], completions=["4"])
    assert any('"judge/failure_rate": 0.0' in r.getMessage() for r in caplog.records)


async def test_a_failing_sink_is_logged_and_the_rewards_still_come_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    judge, _ = scripted_judge()
    func = judge.as_reward_func(metrics_sink=tmp_path / "missing-dir" / "m.jsonl")
    with caplog.at_level(logging.ERROR, logger="rftjudge"):
        assert await func(prompts=["q"], completions=["4"]) == [GOOD]
    assert any("metrics_sink failed" in r.getMessage() for r in caplog.records)


def test_a_sink_that_is_none_of_the_three_is_refused() -> None:
    judge, _ = scripted_judge()
    with pytest.raises(ConfigurationError, match="metrics_sink"):
        judge.as_reward_func(metrics_sink=42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="group_by"):
        GroupRewardFunction(judge, group_by="step")  # type: ignore[arg-type]


# -- which rows form a group ----------------------------------------------------------------------

ASYNC_GRPO = {"completion_ids": [[1]] * 3, "reference": ["4"] * 3, "task": [{"k": 1}] * 3}


@pytest.mark.parametrize(
    ("prompts", "kwargs", "expected"),
    [
        # GRPOTrainer: a batch of several groups (trainer_state passed): by prompt
        (
            ["a", "b", "a", "b"],
            {"trainer_state": None, "completion_ids": [[1]] * 4},
            [[0, 2], [1, 3]],
        ),
        # AsyncGRPOTrainer's _score_group: one group, prompts differing by an observation
        (["a 1", "a 2", "a 3"], ASYNC_GRPO, [[0, 1, 2]]),
        # the same shape, but a column that varies: not one dataset row, so by prompt
        (["a", "b", "a"], {**ASYNC_GRPO, "reference": ["4", "5", "4"]}, [[0, 2], [1]]),
        # a hand-written call without completion_ids: by prompt
        (["a", "b"], {"reference": ["4", "4"]}, [[0], [1]]),
        # every prompt the same: one group whoever calls
        (["a", "a"], {"trainer_state": None}, [[0, 1]]),
        ([], {}, []),
    ],
)
def test_group_rows(prompts: list[str], kwargs: dict[str, Any], expected: list[list[int]]) -> None:
    assert group_rows(prompts, kwargs) == expected


def test_group_by_prompt_or_call_overrides_the_detection() -> None:
    assert group_rows(["a 1", "a 2"], ASYNC_GRPO, "prompt") == [[0], [1]]
    assert group_rows(["a", "b"], {"trainer_state": None}, "call") == [[0, 1]]


async def test_one_whole_group_is_judged_whole_and_a_batch_by_prompt() -> None:
    quality = {"p-0": 9, "p-1": 6, "p-2": 3, "q-0": 8, "q-1": 2}
    client = FunctionClient(ListwiseScript(quality))
    func = ListwiseJudge(client, permutations=1, name="lw").as_reward_func()
    prompts = ["p + observation 1", "p + observation 2", "p + observation 3"]
    rewards = await func(
        prompts=prompts, completions=["p-0", "p-1", "p-2"], completion_ids=[[1]] * 3
    )
    assert rewards == pytest.approx([0.9, 0.6, 0.3]) and len(client.calls) == 1
    rewards = await func(
        prompts=["p", "q", "p", "q"],
        completions=["p-0", "q-0", "p-1", "q-1"],
        completion_ids=[[1]] * 4,
        trainer_state=None,
    )
    assert rewards == pytest.approx([0.9, 0.8, 0.6, 0.2]) and len(client.calls) == 3


async def test_sink_file_forwards_to_the_trainers_logs_through_a_callback(tmp_path: Path) -> None:
    """The docs' recipe: a TrainerCallback placed first adds the judge's means to the step's logs,
    which the reporting callbacks (W&B, TensorBoard) after it then receive."""
    transformers: Any = pytest.importorskip("transformers")
    from rftjudge.integrations.trl import MetricsFileReader

    path = tmp_path / "judge.jsonl"
    judge, _ = scripted_judge()
    func = judge.as_reward_func(metrics_sink=path)

    class JudgeMetrics(transformers.TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.reader = MetricsFileReader(path)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs is not None:
                logs.update(self.reader.read())

    class Reporter(transformers.TrainerCallback):  # type: ignore[misc]  # stands for W&B's
        def __init__(self) -> None:
            self.seen: list[dict[str, float]] = []

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            self.seen.append(dict(logs))

    reporter = Reporter()
    handler = transformers.trainer_callback.CallbackHandler([reporter], None, None, None, None)
    handler.callbacks.insert(0, JudgeMetrics())
    state, control = transformers.TrainerState(), transformers.TrainerControl()
    await func(prompts=["q", "q"], completions=["4", "FAIL"])
    await func(prompts=["q"], completions=["4"])
    handler.on_log(None, state, control, {"loss": 1.0})
    assert reporter.seen[-1]["loss"] == 1.0
    assert reporter.seen[-1]["judge/failure_rate"] == pytest.approx(0.25)  # mean of 0.5 and 0
    with path.open("a") as file:
        file.write('{"metrics": {"judge/failure_rate": 1.0}')  # a line still being written
    handler.on_log(None, state, control, {"loss": 0.5})
    assert "judge/failure_rate" not in reporter.seen[-1]
