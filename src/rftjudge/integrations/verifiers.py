"""verifiers (PrimeIntellect): a judge as a reward function, classic or v1.

**Classic API** (verifiers ≤ 0.3; the 0.4 wheel ships only ``verifiers.v1``: no ``vf.Rubric``, no
``verifiers.legacy``, no group reward functions): a rubric calls each function
with the named arguments it declares — ``prompt``, ``completion``, ``answer``, ``state``, ``task``,
``info`` — and expects a float; a function with plural arguments (``prompts``, ``completions``,
``answers``, ``states``, ...) is a *group* function scoring all rollouts of a prompt together and
returning a list. :func:`classic_reward_func` and :func:`classic_group_reward_func` build those.
The classic rubric turns an exception into 0.0 and cannot skip a sample, so a failed judgment
becomes ``on_error`` (a number, or ``"raise"`` to let verifiers log it and score 0.0).

**v1** (verifiers 0.4): tasks score with ``@vf.reward`` functions that name what they need —
``task`` (``task.prompt_text``, row fields such as ``task.answer``) and ``trace``
(``trace.last_reply``, ``trace.transcript``) — or with judge plugins (``task.judges = [{id = ...}]``,
an installed module whose ``__all__`` exports one ``vf.Judge`` subclass with ``async score(task,
trace)``). Its contract is that a judge failure *raises* ("so judge failures are not scored against
the model"), whatever the judge's ``on_error``. :func:`v1_reward_func` builds the reward function
(plug it with ``task.rewards.<name>.fn = "your_module:judge_reward"``, or set it as an attribute of
a ``vf.Task`` subclass), :func:`v1_judge_class` the plugin class. ``Task.score(trace)`` runs both,
and a raise there fails the rollout (``TaskError``, the reward left ``None``). Judgement across
rollouts is an ``Env.finalize(task, episode)`` in 0.4 (plain code over ``episode.traces``), not a
reward function, so there is no v1 group adapter.

verifiers is imported only by :func:`v1_judge_class` (and by :func:`v1_reward_func`, to tag the
function with ``vf.reward``, when it is installed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, cast

from .._errors import ConfigurationError
from .._text import as_text, completion_text, reference_text, safe_name
from ..judges.base import OnError
from ..rewards import GroupJudge, judged_completion
from ._common import ScoringJudge, criterion_names, settle
from ._rubrics import attach_rubric

__all__ = [
    "classic_group_reward_func",
    "classic_reward_func",
    "v1_judge_class",
    "v1_reward_func",
]

logger = logging.getLogger("rftjudge")

View = Literal["last_reply", "full_trace"]


def _classic_fallback(judge: Any, on_error: OnError | None) -> float | Literal["raise"]:
    from ._common import resolve_fallback

    return resolve_fallback(judge, on_error, where="a classic verifiers rubric")


def _reference(answer: Any, info: Any) -> str | None:
    if answer in (None, "") and isinstance(info, Mapping):
        answer = info.get("answer")
    text = reference_text(answer)
    return text or None


# -- classic (<= 0.3 / verifiers.legacy) ---------------------------------------------------------


def classic_reward_func(
    judge: ScoringJudge, *, name: str | None = None, on_error: OnError | None = None
) -> Callable[..., Awaitable[float]]:
    """``async def f(prompt, completion, answer, state, info, **kwargs) -> float`` for a classic
    ``vf.Rubric(funcs=[...])``; the reference is ``answer`` (else ``info["answer"]``)."""
    fallback = _classic_fallback(judge, on_error)
    func_name = safe_name(name, judge.name)

    async def reward(
        prompt: Any = None,
        completion: Any = None,
        answer: Any = None,
        state: Any = None,
        info: Any = None,
        **kwargs: Any,
    ) -> float:
        (outcome,) = await judge.ajudge_batch(
            [as_text(prompt, what="prompt")],
            [judged_completion(judge, completion, completion_text(completion))],
            [attach_rubric(judge, _reference(answer, info), info)],
        )
        value, _ = settle(judge, outcome, fallback)
        return value

    reward.__name__ = reward.__qualname__ = func_name
    return reward


def classic_group_reward_func(
    judge: GroupJudge, *, name: str | None = None, on_error: OnError | None = None
) -> Callable[..., Awaitable[list[float]]]:
    """``async def f(prompts, completions, answers, states, infos, **kwargs) -> list[float]``.

    For judges that score the completions of one prompt relative to each other (a
    :class:`~rftjudge.PreferenceJudge` in group mode, or anything with ``ajudge_group(prompt,
    responses, reference) -> list[float | BaseException]`` and ``reward_of``). Rollouts are grouped
    by prompt text, so a call holding several prompts is ranked within each.
    """
    if not callable(getattr(judge, "ajudge_group", None)):
        raise ConfigurationError(
            "classic_group_reward_func needs a judge with ajudge_group(prompt, responses, "
            f"reference) (e.g. PreferenceJudge); got {type(judge).__name__}"
        )
    fallback = _classic_fallback(judge, on_error)
    func_name = safe_name(name, judge.name)

    async def reward(
        prompts: Sequence[Any] = (),
        completions: Sequence[Any] = (),
        answers: Sequence[Any] | None = None,
        states: Sequence[Any] | None = None,
        infos: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        n = len(completions)
        if len(prompts) != n:
            raise ConfigurationError(f"{func_name}: {len(prompts)} prompts for {n} completions")
        answer_list = list(answers) if answers is not None else [None] * n
        info_list = list(infos) if infos is not None else [None] * n
        texts = [as_text(p, what="prompt") for p in prompts]
        responses = [judged_completion(judge, c, completion_text(c)) for c in completions]
        refs = [_reference(a, i) for a, i in zip(answer_list, info_list, strict=False)]
        refs += [None] * (n - len(refs))
        groups: dict[str, list[int]] = {}
        for index, text in enumerate(texts):
            groups.setdefault(text, []).append(index)
        results = await asyncio.gather(
            *(
                judge.ajudge_group(
                    prompt,
                    [responses[i] for i in rows],
                    next((refs[i] for i in rows if refs[i] is not None), None),
                )
                for prompt, rows in groups.items()
            )
        )
        values = [0.0] * n
        for rows, outcomes in zip(groups.values(), results, strict=True):
            for i, outcome in zip(rows, outcomes, strict=True):
                values[i], _ = settle(judge, outcome, fallback)
        return values

    reward.__name__ = reward.__qualname__ = func_name
    return reward


# -- v1 (0.4) ----------------------------------------------------------------------------------


class _V1Scorer:
    """task + trace → one judgment → float, raising on failure (v1's contract)."""

    def __init__(
        self, judge: ScoringJudge, question_field: str, answer_field: str | None, view: View
    ) -> None:
        if view not in ("last_reply", "full_trace"):
            raise ConfigurationError(f'view must be "last_reply" or "full_trace"; got {view!r}')
        self.judge = judge
        self.question_field = question_field
        self.answer_field = answer_field
        self.view = view
        self.criteria = criterion_names(judge)

    async def score(self, task: Any, trace: Any) -> float:
        # Set as an attribute of a vf.Task subclass, the function is found by its vf.reward tag and
        # called bound: ``task`` is then the Task, whose row (TaskData) is ``task.data``. Without
        # this the judge would silently see an empty prompt and no reference.
        if not hasattr(task, "prompt_text") and hasattr(getattr(task, "data", None), "prompt_text"):
            task = task.data
        if self.question_field:
            question = getattr(task, self.question_field, None)
            if question is None:
                raise ConfigurationError(f"the task has no {self.question_field!r} field")
        else:
            question = getattr(task, "prompt_text", None)
        reference = getattr(task, self.answer_field, None) if self.answer_field else None
        if isinstance(reference, list | tuple):  # one acceptable answer per line, as verifiers does
            reference = "\n".join(str(item) for item in reference)
        response = trace.transcript if self.view == "full_trace" else trace.last_reply
        (outcome,) = await self.judge.ajudge_batch(
            [as_text(question, what="prompt")],
            [str(response or "")],
            [reference_text(reference)],
        )
        value, _ = settle(self.judge, outcome, "raise")
        self._record(trace, outcome, value)
        return value

    def _record(self, trace: Any, outcome: Any, value: float) -> None:
        """Per-criterion scores and the rationale on ``trace.info`` (reward keys would be summed)."""
        info = getattr(trace, "info", None)
        if not isinstance(info, dict):
            return
        normalized = getattr(outcome, "normalized", None)
        record: dict[str, Any] = {"judge": self.judge.name, "score": value}
        if isinstance(normalized, Mapping):
            record["criteria"] = {c: normalized[c] for c in self.criteria if c in normalized}
        rationale = getattr(outcome, "rationale", None)
        if rationale:
            record["rationale"] = str(rationale)
        info.setdefault("rftjudge", []).append(record)


def v1_reward_func(
    judge: ScoringJudge,
    *,
    name: str | None = None,
    weight: float = 1.0,
    question_field: str = "",
    answer_field: str | None = "answer",
    view: View = "last_reply",
) -> Callable[..., Awaitable[float]]:
    """``async def f(task, trace) -> float`` for verifiers v1, tagged like ``@vf.reward(weight=)``.

    The question is ``task.prompt_text`` (or ``task.<question_field>``), the reference
    ``task.<answer_field>`` (None: no reference), the response ``trace.last_reply`` (``view=
    "full_trace"``: ``trace.transcript``). A failed judgment raises. Per-criterion scores and the
    rationale are appended to ``trace.info["rftjudge"]``.
    """
    scorer = _V1Scorer(judge, question_field, answer_field, view)
    func_name = safe_name(name, judge.name)

    async def reward(task: Any, trace: Any) -> float:
        return await scorer.score(task, trace)

    reward.__name__ = reward.__qualname__ = func_name
    return _tag_reward(reward, weight)


def _tag_reward(func: Callable[..., Any], weight: float) -> Callable[..., Any]:
    """``vf.reward(func, weight=)`` when verifiers is installed; else the same tags by hand."""
    try:
        from verifiers.v1 import reward as vf_reward  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        vf_reward = None
    if vf_reward is not None:
        return vf_reward(func, weight=weight)  # type: ignore[no-any-return]
    func.reward = True  # type: ignore[attr-defined]
    func.reward_priority = 0  # type: ignore[attr-defined]
    func._vf_weight = float(weight)  # type: ignore[attr-defined]
    return func


JudgeFactory = Callable[[Any], ScoringJudge]


def v1_judge_class(
    judge: ScoringJudge | JudgeFactory,
    *,
    class_name: str = "RftJudge",
    question_field: str = "",
    answer_field: str | None = "answer",
    view: View = "last_reply",
) -> type:
    """A ``vf.Judge`` subclass for ``task.judges`` plugins; needs verifiers >= 0.4 installed.

    ``judge`` is an rftjudge judge (shared by every instance: verifiers builds a plugin judge per
    scoring call, and one judge keeps one connection pool and concurrency limit), or a factory
    ``judge(config) -> judge`` called once per distinct plugin config (``config.model`` etc.). Put
    the class in a module's ``__all__`` and name that module as the plugin ``id``.
    """
    if view not in ("last_reply", "full_trace"):
        raise ConfigurationError(f'view must be "last_reply" or "full_trace"; got {view!r}')
    try:
        from verifiers.v1 import Judge  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError as exc:
        raise ImportError(
            'v1_judge_class needs verifiers 0.4 or later: pip install "verifiers>=0.4"'
        ) from exc
    shared = judge if callable(getattr(judge, "ajudge_batch", None)) else None
    factory: Any = None if shared is not None else judge
    if shared is None and not callable(factory):
        raise ConfigurationError(
            f"v1_judge_class needs a judge or a factory config -> judge; got {type(judge).__name__}"
        )
    built: dict[str, _V1Scorer] = {}
    if shared is not None:
        built[""] = _V1Scorer(cast("ScoringJudge", shared), question_field, answer_field, view)

    def scorer_for(config: Any) -> _V1Scorer:
        if shared is not None:
            return built[""]
        dump = getattr(config, "model_dump_json", None)
        key = str(dump()) if callable(dump) else repr(config)
        if key not in built:
            built[key] = _V1Scorer(factory(config), question_field, answer_field, view)
        return built[key]

    async def score(self: Any, task: Any, trace: Any) -> float:
        return await scorer_for(getattr(self, "config", None)).score(task, trace)

    score.__qualname__ = f"{class_name}.score"
    return type(class_name, (Judge,), {"score": score, "__doc__": "rftjudge judge plugin."})
