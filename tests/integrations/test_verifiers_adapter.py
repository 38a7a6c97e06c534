"""verifiers adapter against the documented contracts (verifiers is not installed in tests).

The helpers below reproduce how verifiers calls reward functions: the classic Rubric's argument
matching and group detection (``verifiers/legacy/rubrics/rubric.py``), v1's ``invoke`` by parameter
name and config plugging (``verifiers/v1/utils/decorators.py``, ``utils/loaders.py``), and the plugin
lookup of a ``vf.Judge`` subclass through a module's ``__all__``.
"""

from __future__ import annotations

import functools
import inspect
import sys
import types
from dataclasses import dataclass, field
from typing import Any, cast, get_origin

import pytest

from rftjudge import ConfigurationError, JudgeError, ParseError
from rftjudge.integrations.verifiers import (
    classic_group_reward_func,
    classic_reward_func,
    v1_judge_class,
    v1_reward_func,
)
from rftjudge.rewards import GroupJudge

from support.judges import BAD, GOOD, scripted_judge

GROUP_INDICATORS = {"states", "prompts", "completions", "answers", "tasks", "infos"}


def is_group_func(func: Any) -> bool:
    sig = inspect.signature(func)
    ret = sig.return_annotation
    return bool(set(sig.parameters) & GROUP_INDICATORS) or ret is list or get_origin(ret) is list


def classic_state(completion: str, answer: str = "4") -> dict[str, Any]:
    return {
        "prompt": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "What is 2+2?"},
        ],
        "completion": [{"role": "assistant", "content": completion}],
        "answer": answer,
        "task": "default",
        "info": {},
        "input": {"prompt": "What is 2+2?", "answer": answer},
    }


async def classic_call(func: Any, state: dict[str, Any]) -> float:
    """Rubric._call_individual_reward_func: everything to **kwargs functions, float() the result."""
    merged = {k: state[k] for k in ("prompt", "completion", "answer", "task", "info")}
    merged["state"] = state
    sig = inspect.signature(func)
    if not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
        merged = {k: v for k, v in merged.items() if k in sig.parameters}
    return float(await func(**merged))


async def classic_group_call(func: Any, states: list[dict[str, Any]]) -> list[float]:
    merged = {
        "prompts": [s["prompt"] for s in states],
        "completions": [s["completion"] for s in states],
        "answers": [s.get("answer", "") for s in states],
        "states": states,
        "tasks": [s.get("task") for s in states],
        "infos": [s.get("info", {}) for s in states],
    }
    result: list[float] = await func(**merged)
    return result


# -- classic -----------------------------------------------------------------------------------


async def test_classic_reward_func_is_an_individual_func_scoring_the_rollout() -> None:
    judge, script = scripted_judge(on_error=0.5)
    func = classic_reward_func(judge, name="judge reward")
    assert not is_group_func(func)
    assert func.__name__ == "judge_reward"
    assert await classic_call(func, classic_state("It is 4.")) == GOOD
    assert await classic_call(func, classic_state("It is 5.")) == BAD
    assert script.seen[0]["prompt"] == "system: Answer briefly.\nuser: What is 2+2?"
    assert script.seen[0]["response"] == "It is 4."
    assert script.seen[0]["reference"] == "4"


async def test_classic_failure_follows_on_error() -> None:
    judge, _ = scripted_judge(on_error=0.5)
    assert await classic_call(classic_reward_func(judge), classic_state("FAIL")) == 0.5
    assert (
        await classic_call(classic_reward_func(judge, on_error=0.0), classic_state("FAIL")) == 0.0
    )
    with pytest.raises(JudgeError):  # verifiers logs it and scores 0.0
        await classic_call(classic_reward_func(judge, on_error="raise"), classic_state("FAIL"))
    abstaining, _ = scripted_judge()
    with pytest.raises(ConfigurationError, match="cannot abstain"):
        classic_reward_func(abstaining)


async def test_classic_reference_falls_back_to_info_answer() -> None:
    judge, script = scripted_judge(on_error=0.5)
    state = classic_state("x", answer="")
    state["info"] = {"answer": "42"}
    await classic_call(classic_reward_func(judge), state)
    assert script.seen[-1]["reference"] == "42"


class FakeGroupJudge:
    """The group protocol: ajudge_group(prompt, responses, reference) -> win rates or errors."""

    name = "pref"
    on_error: Any = 0.5

    def __init__(self) -> None:
        self.calls: list[tuple[Any, list[str], Any]] = []

    async def ajudge_group(
        self, prompt: Any, responses: list[str], reference: Any = None
    ) -> list[float | BaseException]:
        self.calls.append((prompt, list(responses), reference))
        return [ParseError("no verdict") if "FAIL" in r else len(r) / 10 for r in responses]

    def reward_of(self, outcome: Any) -> float | None:
        return None if isinstance(outcome, BaseException) else float(outcome)


async def test_classic_group_func_ranks_each_prompts_rollouts_together() -> None:
    judge = FakeGroupJudge()
    # the fake carries only the part of the GroupJudge protocol that the adapter calls
    func = classic_group_reward_func(cast(GroupJudge, judge))
    assert is_group_func(func)
    states = [classic_state("abcd"), classic_state("FAIL"), classic_state("ab")]
    other = classic_state("abcdef")
    other["prompt"] = [{"role": "user", "content": "Another question"}]
    values = await classic_group_call(func, [*states, other])
    assert values == [0.4, 0.5, 0.2, 0.6]
    assert [len(c[1]) for c in judge.calls] == [3, 1]
    assert judge.calls[0][2] == "4"


def test_classic_group_func_needs_a_group_judge() -> None:
    judge, _ = scripted_judge(on_error=0.5)
    with pytest.raises(ConfigurationError, match="ajudge_group"):
        classic_group_reward_func(judge)  # type: ignore[arg-type]


# -- v1 ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeTask:
    """TaskData's surface used here: prompt_text and row fields."""

    prompt_text: str = "What is 2+2?"
    answer: Any = "4"
    question: str | None = None


@dataclass
class FakeTrace:
    last_reply: str = ""
    transcript: str = ""
    info: dict[str, Any] = field(default_factory=dict)


async def v1_invoke(fn: Any, task: Any, trace: Any) -> Any:
    """verifiers.v1.utils.decorators.invoke: only the parameters the function names."""
    available = {"task": task, "trace": trace, "runtime": object()}
    params = inspect.signature(fn).parameters
    return await fn(**{name: available[name] for name in params if name in available})


def plug(name: str, fn: Any, weight: float | None = None) -> Any:
    """load_plugged_fn: wrap under the plugged name, weight from config or the fn's tag."""

    @functools.wraps(fn)
    def plugged(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    plugged.__name__ = name
    plugged._vf_weight = weight if weight is not None else getattr(fn, "_vf_weight", 1.0)  # type: ignore[attr-defined]
    return plugged


async def test_v1_reward_takes_task_and_trace_and_is_tagged_like_vf_reward(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "verifiers", None)  # tags set by hand without verifiers
    judge, script = scripted_judge(on_error=0.5)
    fn = v1_reward_func(judge, weight=2.0)
    assert list(inspect.signature(fn).parameters) == ["task", "trace"]  # no runtime: runs offline
    assert fn.reward is True and fn._vf_weight == 2.0  # type: ignore[attr-defined]
    plugged = plug("judge", fn)
    trace = FakeTrace(last_reply="The answer is 4", transcript="[user]\n2+2?\n\n[assistant]\n4")
    assert await v1_invoke(plugged, FakeTask(), trace) == GOOD
    assert plugged._vf_weight == 2.0
    assert script.seen[0] == {
        "prompt": "What is 2+2?",
        "response": "The answer is 4",
        "reference": "4",
    }
    (record,) = trace.info["rftjudge"]
    assert record["criteria"] == {"correctness": 1.0, "tone": 0.5}
    assert record["rationale"] == "scripted"


async def test_v1_judge_failure_raises_whatever_on_error_says() -> None:
    judge, _ = scripted_judge(on_error=0.5)
    fn = v1_reward_func(judge)
    with pytest.raises(ParseError):
        await v1_invoke(fn, FakeTask(), FakeTrace(last_reply="FAIL"))


async def test_v1_fields_and_view() -> None:
    judge, script = scripted_judge(on_error=0.5)
    fn = v1_reward_func(judge, question_field="question", answer_field="answer", view="full_trace")
    task = FakeTask(question="2+2 (plain)", answer=["4", "four"])
    await v1_invoke(fn, task, FakeTrace(last_reply="x", transcript="[assistant]\n4"))
    assert script.seen[-1] == {
        "prompt": "2+2 (plain)",
        "response": "[assistant]\n4",
        "reference": "4\nfour",  # one acceptable answer per line, as verifiers' reference judge
    }
    with pytest.raises(ConfigurationError, match="'question'"):
        await v1_invoke(fn, FakeTask(), FakeTrace())
    no_ref = v1_reward_func(judge, answer_field=None)
    await v1_invoke(no_ref, FakeTask(), FakeTrace(last_reply="4"))
    assert script.seen[-1]["reference"] is None
    with pytest.raises(ConfigurationError, match="view"):
        v1_reward_func(judge, view="everything")  # type: ignore[arg-type]


async def test_v1_reward_bound_on_a_task_reads_the_row_from_its_data() -> None:
    """Set on a vf.Task subclass, verifiers calls the function bound: ``task`` is the Task."""
    judge, script = scripted_judge(on_error=0.5)

    class Task:
        judge_reward = v1_reward_func(judge)

        def __init__(self, data: FakeTask) -> None:
            self.data = data

    bound = Task(FakeTask(answer="5")).judge_reward
    assert list(inspect.signature(bound).parameters) == ["trace"]
    assert await v1_invoke(bound, object(), FakeTrace(last_reply="It is 5.")) == GOOD
    assert script.seen[-1] == {"prompt": "What is 2+2?", "response": "It is 5.", "reference": "5"}


@pytest.fixture
def fake_verifiers(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A stand-in for ``verifiers.v1``: ``Judge(config)`` and the ``reward`` decorator."""
    pkg = types.ModuleType("verifiers")
    v1 = types.ModuleType("verifiers.v1")

    class Judge:
        def __init__(self, config: Any = None) -> None:
            self.config = config

        async def score(self, task: Any, trace: Any) -> float:
            raise NotImplementedError

    def reward(func: Any = None, weight: float = 1.0, priority: int = 0) -> Any:
        def mark(f: Any) -> Any:
            f.reward, f.reward_priority, f._vf_weight, f.marked_by_vf = True, priority, weight, True
            return f

        return mark if func is None else mark(func)

    v1.Judge = Judge  # type: ignore[attr-defined]
    v1.reward = reward  # type: ignore[attr-defined]
    pkg.v1 = v1  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "verifiers", pkg)
    monkeypatch.setitem(sys.modules, "verifiers.v1", v1)
    return v1


def plugin_class(module: types.ModuleType, base: type) -> type:
    """verifiers.v1.utils.loaders._plugin_class: exactly one subclass exported via __all__."""
    matches = [
        obj
        for name in module.__all__
        if isinstance(obj := getattr(module, name, None), type) and issubclass(obj, base)
    ]
    assert len(matches) == 1
    return matches[0]


@dataclass
class FakeJudgeConfig:
    id: str = "my_rft_judge"
    model: str = "judge-model"

    def model_dump_json(self) -> str:
        return f'{{"id": "{self.id}", "model": "{self.model}"}}'


async def test_v1_judge_plugin_class(fake_verifiers: types.ModuleType) -> None:
    judge, _ = scripted_judge(on_error=0.5)
    module = types.ModuleType("my_rft_judge")
    module.RftJudge = v1_judge_class(judge)  # type: ignore[attr-defined]
    module.__all__ = ["RftJudge"]  # type: ignore[attr-defined]
    cls = plugin_class(module, fake_verifiers.Judge)
    # verifiers builds one instance per scoring call (Task.plugged_judges): all share the judge
    first, second = cls(FakeJudgeConfig()), cls(FakeJudgeConfig())
    assert await first.score(FakeTask(), FakeTrace(last_reply="4")) == GOOD
    assert await second.score(FakeTask(), FakeTrace(last_reply="5")) == BAD
    with pytest.raises(ParseError):
        await first.score(FakeTask(), FakeTrace(last_reply="FAIL"))
    assert judge.stats.judgments == 3  # one rftjudge judge behind every instance


async def test_v1_judge_plugin_from_a_factory(fake_verifiers: types.ModuleType) -> None:
    built: list[str] = []

    def factory(config: Any) -> Any:
        built.append(config.model)
        return scripted_judge(on_error=0.5)[0]

    cls = v1_judge_class(factory, class_name="FactoryJudge")
    assert cls.__name__ == "FactoryJudge" and issubclass(cls, fake_verifiers.Judge)
    for _ in range(3):
        assert await cls(FakeJudgeConfig()).score(FakeTask(), FakeTrace(last_reply="4")) == GOOD
    await cls(FakeJudgeConfig(model="other")).score(FakeTask(), FakeTrace(last_reply="4"))
    assert built == ["judge-model", "other"]  # one judge per distinct config, not per call


def test_v1_reward_uses_vf_reward_when_installed(fake_verifiers: types.ModuleType) -> None:
    judge, _ = scripted_judge(on_error=0.5)
    fn = v1_reward_func(judge, weight=0.5)
    assert fn.marked_by_vf is True and fn._vf_weight == 0.5  # type: ignore[attr-defined]


def test_v1_judge_class_names_the_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "verifiers", None)
    monkeypatch.setitem(sys.modules, "verifiers.v1", None)
    judge, _ = scripted_judge(on_error=0.5)
    with pytest.raises(ImportError, match=r"pip install \"verifiers>=0.4\""):
        v1_judge_class(judge)
