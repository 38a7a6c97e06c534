"""The verifiers adapters inside the real verifiers 0.4 scoring code, against a loopback judge.

verifiers 0.4 scores a finished rollout with ``Task.score(trace, runtime=None)``: it loads the
config-plugged rewards (``TaskConfig.rewards``, an import path per name) and judge plugins
(``TaskConfig.judges``, a module exporting one ``vf.Judge`` subclass), calls each with the
arguments it names, records ``trace.rewards[name] = Reward(score, weight)`` and sums them into
``trace.reward``. A rollout calls exactly that after the agent ran; it needs no policy model, no
runtime (our functions take none) and no network but the judge's, which here is a loopback server
scripted like ``support.judges``: ``correctness`` 5 when the response contains the reference (else
1), ``tone`` 3, and no JSON at all for a response containing ``FAIL``.
"""

from __future__ import annotations

import json
import sys
import textwrap
import types
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from rftjudge import OpenAIClient, ParseError, RetryPolicy, RubricJudge
from rftjudge.integrations.verifiers import v1_judge_class, v1_reward_func

from support.judges import BAD, CRITERIA, GOOD, fenced
from support.server import LoopbackServer, Reply, chat_reply

pytestmark = pytest.mark.integration

vf = pytest.importorskip("verifiers.v1")
file_module = pytest.importorskip("verifiers.v1.utils.loaders").file_module

PROMPT = "What is 2+2?"


def _grade(payload: dict[str, Any]) -> Reply:
    user = "\n".join(m["content"] for m in payload["messages"] if m["role"] == "user")
    response = fenced(user, "RESPONSE") or ""
    if "FAIL" in response:
        return Reply(body=chat_reply("I cannot produce JSON today."))
    target = fenced(user, "REFERENCE") or "4"
    scores = {"correctness": 5 if target in response else 1, "tone": 3}
    return Reply(body=chat_reply(json.dumps({"rationale": "scripted", "scores": scores})))


@pytest.fixture(scope="module")
def judge_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(_grade) as server:
        yield server


def make_judge(server: LoopbackServer, name: str = "judge") -> RubricJudge:
    # on_error=0.5 so that a test can see v1 ignore it: there a failure must raise, never score
    client = OpenAIClient(
        "test-judge",
        base_url=server.base_url,
        max_concurrency=4,
        retry_policy=RetryPolicy(max_retries=0),
    )
    return RubricJudge(client, criteria=CRITERIA, name=name, on_error=0.5)


@pytest.fixture
async def to_close() -> AsyncIterator[list[RubricJudge]]:
    """Judges whose connection pools close when the test ends, inside the test's event loop."""
    judges: list[RubricJudge] = []
    yield judges
    for judge in judges:
        assert isinstance(judge.client, OpenAIClient)
        await judge.client.aclose()


@pytest.fixture
def judge(judge_server: LoopbackServer, to_close: list[RubricJudge]) -> RubricJudge:
    judge = make_judge(judge_server)
    to_close.append(judge)
    return judge


def seen(server: LoopbackServer, index: int = -1) -> dict[str, str | None]:
    """What request ``index`` showed the judge."""
    user = "\n".join(
        m["content"] for m in server.requests[index]["messages"] if m["role"] == "user"
    )
    return {label: fenced(user, label) for label in ("PROMPT", "RESPONSE", "REFERENCE")}


class QAData(vf.TaskData):  # type: ignore[misc, name-defined]
    """A taskset row with a reference answer, as verifiers' docs declare one."""

    answer: str | list[str] | None = None
    question: str | None = None


def make_task(config: dict[str, Any], **data: Any) -> Any:
    fields = {"prompt": PROMPT, "answer": "4", **data}
    return vf.Task(QAData(**fields), vf.TaskConfig.model_validate(config))


def make_trace(task: Any, reply: str) -> Any:
    """A finished single-turn rollout: the user prompt, then the policy's sampled reply."""
    nodes = [
        vf.MessageNode(message=vf.UserMessage(content=task.data.prompt_text)),
        vf.MessageNode(parent=0, message=vf.AssistantMessage(content=reply), sampled=True),
    ]
    return vf.Trace(
        task=vf.TraceTask(type=type(task).__name__, data=task.data),
        agent=vf.AgentInfo(config=vf.AgentConfig()),
        nodes=nodes,
    )


def reward_file(tmp_path: Path, to_close: list[RubricJudge], **kwargs: Any) -> str:
    """The user's reward module, plugged by file path as the README shows; its ``fn`` entry (fresh
    per test: verifiers caches file modules by path)."""
    path = tmp_path / "my_reward.py"
    args = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
    path.write_text(
        textwrap.dedent(
            f"""
            import os
            from rftjudge import Criterion, OpenAIClient, RetryPolicy, RubricJudge
            from rftjudge.integrations.verifiers import v1_reward_func

            judge = RubricJudge(
                OpenAIClient("test-judge", base_url=os.environ["JUDGE_BASE_URL"],
                             retry_policy=RetryPolicy(max_retries=0)),
                criteria=[Criterion(name="correctness", description="Is it right?", weight=3.0),
                          Criterion(name="tone", description="Is it polite?")],
                name="judge",
                on_error=0.5,
            )
            judge_reward = v1_reward_func(judge, {args})
            """
        )
    )
    to_close.append(file_module(str(path)).judge)  # the module verifiers will plug from
    return f"{path}:judge_reward"


@pytest.fixture
def judge_env(monkeypatch: pytest.MonkeyPatch, judge_server: LoopbackServer) -> LoopbackServer:
    monkeypatch.setenv("JUDGE_BASE_URL", judge_server.base_url)
    return judge_server


# -- a reward function plugged from config -------------------------------------------------------


async def test_plugged_reward_scores_the_rollout(
    tmp_path: Path, judge_env: LoopbackServer, to_close: list[RubricJudge]
) -> None:
    fn = reward_file(tmp_path, to_close, weight=2.0)
    config = {"rewards": {"judge": {"fn": fn}}}
    good, bad = make_task(config), make_task(config)
    good_trace, bad_trace = make_trace(good, "It is 4."), make_trace(bad, "It is 5.")

    await good.score(good_trace)
    await bad.score(bad_trace)

    assert good_trace.rewards["judge"].score == GOOD
    assert good_trace.rewards["judge"].weight == 2.0  # the vf.reward tag survives plugging
    assert good_trace.reward == 2.0 * GOOD
    assert bad_trace.rewards["judge"].score == BAD
    assert seen(judge_env, -2) == {"PROMPT": PROMPT, "RESPONSE": "It is 4.", "REFERENCE": "4"}
    (record,) = good_trace.info["rftjudge"]
    assert record["criteria"] == {"correctness": 1.0, "tone": 0.5}
    assert record["rationale"] == "scripted"


async def test_config_weight_overrides_the_tag(
    tmp_path: Path, judge_env: LoopbackServer, to_close: list[RubricJudge]
) -> None:
    fn = reward_file(tmp_path, to_close, weight=2.0)
    task = make_task({"rewards": {"quality": {"fn": fn, "weight": 0.25}}})
    trace = make_trace(task, "4")
    await task.score(trace)
    assert trace.rewards["quality"].score == GOOD  # recorded under the plugged name
    assert trace.reward == 0.25 * GOOD


async def test_question_field_and_full_trace_view(
    tmp_path: Path, judge_env: LoopbackServer, to_close: list[RubricJudge]
) -> None:
    fn = reward_file(tmp_path, to_close, question_field="question", view="full_trace")
    task = make_task(
        {"rewards": {"judge": {"fn": fn}}},
        question="2+2 (plain)",
        answer=["4", "four"],
    )
    trace = make_trace(task, "four")
    await task.score(trace)
    assert seen(judge_env) == {
        "PROMPT": "2+2 (plain)",
        "RESPONSE": trace.transcript,  # verifiers' own rendering of the rollout
        "REFERENCE": "4\nfour",
    }
    assert trace.transcript == f"[user]\n{PROMPT}\n\n[assistant]\nfour"


async def test_a_failed_judgment_fails_scoring_instead_of_scoring_on_error(
    tmp_path: Path, judge_env: LoopbackServer, to_close: list[RubricJudge]
) -> None:
    fn = reward_file(tmp_path, to_close)
    task = make_task({"rewards": {"judge": {"fn": fn}}})
    trace = make_trace(task, "FAIL")
    with pytest.raises(vf.TaskError, match="ParseError") as caught:
        await task.score(trace)
    assert isinstance(caught.value.__cause__, ParseError)
    assert trace.rewards == {"judge": None}  # seeded "should have run", never scored (not 0.5)
    # what the rollout does with it (Rollout.fail): an errored trace, retried or dropped, not 0
    trace.record_error(caught.value)
    assert trace.ok is False and trace.stop_condition == "task_error"


async def test_reward_set_on_a_task_subclass(
    judge: RubricJudge, judge_server: LoopbackServer
) -> None:
    """The function as a class attribute of a ``vf.Task`` subclass: verifiers finds it by its
    ``vf.reward`` tag and calls it *bound*, so ``task`` is the Task itself (its row is ``.data``)."""

    class JudgedTask(vf.Task):  # type: ignore[misc, name-defined]
        judge_reward = v1_reward_func(judge, weight=3.0)

    task = JudgedTask(QAData(prompt=PROMPT, answer="4"))
    trace = make_trace(task, "It is 4.")
    await task.score(trace)
    assert trace.rewards["judge"].score == GOOD
    assert trace.reward == 3.0 * GOOD
    assert seen(judge_server) == {"PROMPT": PROMPT, "RESPONSE": "It is 4.", "REFERENCE": "4"}


# -- the judge plugin (task.judges) --------------------------------------------------------------


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """An importable plugin module, found by id as verifiers finds an installed package."""
    module = types.ModuleType("rftjudge_vf_plugin")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


async def test_judge_plugin_scores_the_rollout(
    plugin: types.ModuleType, judge: RubricJudge, judge_server: LoopbackServer
) -> None:
    plugin.RftJudge = v1_judge_class(judge)  # type: ignore[attr-defined]
    plugin.__all__ = ["RftJudge"]  # type: ignore[attr-defined]
    config = {"judges": [{"id": "rftjudge_vf_plugin", "weight": 2.0}]}
    good, bad = make_task(config), make_task(config)
    good_trace, bad_trace = make_trace(good, "It is 4."), make_trace(bad, "It is 5.")
    await good.score(good_trace)
    await bad.score(bad_trace)
    assert good_trace.rewards["rftjudge_vf_plugin"].score == GOOD  # the plugin id is the key
    assert good_trace.reward == 2.0 * GOOD
    assert bad_trace.rewards["rftjudge_vf_plugin"].score == BAD
    assert judge.stats.judgments == 2  # verifiers built a plugin per call; one judge behind them
    assert good_trace.info["rftjudge"][0]["judge"] == "judge"

    named = make_task({"judges": [{"id": "rftjudge_vf_plugin", "name": "quality"}]})
    trace = make_trace(named, "4")
    await named.score(trace)
    assert trace.rewards["quality"].score == GOOD


async def test_judge_plugin_failure_fails_scoring(
    plugin: types.ModuleType, judge: RubricJudge, judge_server: LoopbackServer
) -> None:
    plugin.RftJudge = v1_judge_class(judge)  # type: ignore[attr-defined]
    plugin.__all__ = ["RftJudge"]  # type: ignore[attr-defined]
    task = make_task({"judges": [{"id": "rftjudge_vf_plugin"}]})
    trace = make_trace(task, "FAIL")
    with pytest.raises(vf.TaskError) as caught:
        await task.score(trace)
    assert isinstance(caught.value.__cause__, ParseError)
    assert trace.rewards == {"rftjudge_vf_plugin": None}


async def test_judge_plugin_from_a_factory_gets_the_plugin_config(
    plugin: types.ModuleType, judge_server: LoopbackServer, to_close: list[RubricJudge]
) -> None:
    built: list[str] = []

    def factory(config: Any) -> RubricJudge:
        built.append(config.model)
        to_close.append(make_judge(judge_server, name=config.model))
        return to_close[-1]

    plugin.FactoryJudge = v1_judge_class(factory, class_name="FactoryJudge")  # type: ignore[attr-defined]
    plugin.__all__ = ["FactoryJudge"]  # type: ignore[attr-defined]
    config = {"judges": [{"id": "rftjudge_vf_plugin", "model": "judge-a"}]}
    for reply in ("4", "5", "4"):
        task = make_task(config)
        await task.score(make_trace(task, reply))
    other = make_task({"judges": [{"id": "rftjudge_vf_plugin", "model": "judge-b"}]})
    trace = make_trace(other, "4")
    await other.score(trace)
    assert built == ["judge-a", "judge-b"]  # one judge per distinct config, not per call
    assert trace.rewards["rftjudge_vf_plugin"].score == GOOD
    assert trace.info["rftjudge"][0]["judge"] == "judge-b"


# -- what 0.4 no longer has ----------------------------------------------------------------------


def test_no_classic_rubric_in_verifiers_04() -> None:
    """0.4 ships only ``verifiers.v1``: no ``Rubric``, no ``verifiers.legacy``, so the classic
    adapters (and their group form) are for verifiers <= 0.3 only."""
    import verifiers

    assert verifiers.__version__.startswith("0.4")
    assert not hasattr(vf, "Rubric") and not hasattr(verifiers, "Rubric")
    with pytest.raises(ModuleNotFoundError):
        __import__("verifiers.legacy")
