"""OpenEnv: a judge (or a :class:`~rftjudge.CompositeReward`) as an OpenEnv ``Rubric``.

OpenEnv (``pip install openenv``, 0.10) gives environments — and TRL's ``environment_factory`` —
their reward abstraction, ``openenv.core.rubrics``: a ``Rubric`` is called as
``rubric(action, observation)`` and returns a float (or, when its ``forward`` is ``async def``, a
coroutine of one); ``WeightedSum``, ``Gate`` and ``Sequential`` combine rubrics, sync or async.
Its own ``LLMJudge`` formats a string, takes the first number in the answer and returns
``default_score`` (0.0) when there is none — a failed judgment reads as a real zero.

:func:`judge_rubric` wraps any rftjudge judge instead: retries, parsing, guards and failure
counting stay rftjudge's, and a failed judgment becomes, by ``on_error``:

- a number you choose (e.g. ``0.5``) — the judge's own numeric ``on_error`` by default;
- ``"nan"`` (what a judge left at ``on_error="abstain"`` gives): ``float("nan")``, OpenEnv's float
  that is no score. ``WeightedSum`` then sums to NaN and ``Gate`` passes it through (``nan <
  threshold`` is false), so the whole reward abstains; TRL reads a NaN reward as "no reward"
  (``nanmean``; a row where every reward is NaN gets advantage 0) — never as a zero;
- ``"raise"``: the error propagates out of the rubric call.

``rubric.last_score`` is OpenEnv's; ``rubric.last_failed`` says whether it was a fallback, and
``judge.stats`` counts failures by kind (per process).

What the judge reads comes from ``(action, observation)`` through three functions, each
``f(action, observation)``: ``response`` (default: the action itself if it is text, else its
``message`` / ``content`` / ``text`` attribute), ``prompt`` (default: the observation's
``metadata["prompt"]`` if any, else none) and ``reference`` (default: ``metadata["reference"]``
if any). OpenEnv's trajectory rubrics (``TrajectoryRubric``) are not wrapped yet.

openenv is imported on first use (``judge_rubric`` or the classes), not with this module: openenv
0.10 needs ``mcp < 2`` (through fastmcp) while verifiers 0.4 pins ``mcp == 2.0.0``, so the two
cannot share one environment.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

from .._errors import ConfigurationError
from .._sync import run_sync
from .._text import as_text
from ..judges.base import validate_on_error
from ._common import settle

__all__ = ["judge_rubric", "rubric_classes"]  # and, lazily, AsyncJudgeRubric and JudgeRubric

Extract = Callable[[Any, Any], Any]
OpenEnvOnError = float | Literal["nan", "raise"]

_RESPONSE_ATTRIBUTES = ("message", "content", "text")


def default_response(action: Any, observation: Any) -> Any:
    """The action's text: the action itself, or its ``message`` / ``content`` / ``text``."""
    if isinstance(action, str | list):
        return action
    for attribute in _RESPONSE_ATTRIBUTES:
        value = getattr(action, attribute, None)
        if isinstance(value, str | list):
            return value
    raise ConfigurationError(
        f"cannot find the response text in a {type(action).__name__} action; pass response="
        "lambda action, observation: <its text>"
    )


def default_prompt(action: Any, observation: Any) -> Any:
    """``observation.metadata["prompt"]`` when the environment put it there, else no prompt."""
    return _metadata(observation).get("prompt", "")


def default_reference(action: Any, observation: Any) -> Any:
    """``observation.metadata["reference"]`` when the environment put it there, else none."""
    return _metadata(observation).get("reference")


def _metadata(observation: Any) -> Mapping[str, Any]:
    metadata = getattr(observation, "metadata", None)
    return metadata if isinstance(metadata, Mapping) else {}


class _JudgeRubricLogic:
    """What both rubric classes do; OpenEnv's ``Rubric`` base is added when openenv is imported."""

    def _setup(
        self,
        judge: Any,
        on_error: OpenEnvOnError | None,
        response: Extract,
        prompt: Extract,
        reference: Extract,
    ) -> None:
        if not callable(getattr(judge, "ajudge_batch", None)):
            raise ConfigurationError(
                f"judge_rubric needs an rftjudge judge or CompositeReward; got {type(judge).__name__}"
            )
        self.judge = judge
        self.fallback = _fallback(judge, on_error)
        self.response_of, self.prompt_of, self.reference_of = response, prompt, reference
        self.last_failed: bool | None = None

    async def _judge(self, action: Any, observation: Any) -> float:
        prompt = self.prompt_of(action, observation)
        response = self.response_of(action, observation)
        reference = self.reference_of(action, observation)
        (outcome,) = await self.judge.ajudge_batch(
            [as_text(prompt, what="prompt") if prompt is not None else ""],
            [response],
            [reference],
        )
        value, failed = settle(self.judge, outcome, self.fallback)
        self.last_failed = failed
        return value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.judge!r}, on_error={self.fallback!r})"


@functools.cache
def rubric_classes() -> tuple[type[Any], type[Any]]:
    """``(AsyncJudgeRubric, JudgeRubric)``: subclasses of OpenEnv's ``Rubric``, built on first use.

    openenv is imported here, not when this module is imported: it cannot be installed next to every
    trainer (openenv 0.10 needs ``mcp < 2`` through fastmcp, verifiers 0.4 pins ``mcp == 2.0.0``).
    """
    try:
        from openenv.core.rubrics import Rubric
    except ImportError as exc:
        raise ImportError(
            f'rftjudge.integrations.openenv needs OpenEnv: pip install "rftjudge[openenv]" ({exc})'
        ) from exc

    class AsyncJudgeRubric(_JudgeRubricLogic, Rubric):  # type: ignore[misc]
        """An rftjudge judge as an OpenEnv ``Rubric`` with an ``async def forward``."""

        def __init__(
            self,
            judge: Any,
            *,
            on_error: OpenEnvOnError | None = None,
            response: Extract = default_response,
            prompt: Extract = default_prompt,
            reference: Extract = default_reference,
        ) -> None:
            Rubric.__init__(self)
            self._setup(judge, on_error, response, prompt, reference)

        async def forward(self, action: Any, observation: Any) -> float:
            return await self._judge(action, observation)

    class JudgeRubric(AsyncJudgeRubric):
        """The same rubric with a synchronous ``forward`` (blocks until the judgment is made)."""

        def forward(self, action: Any, observation: Any) -> float:  # type: ignore[override]
            return run_sync(self._judge(action, observation))

    for cls in (AsyncJudgeRubric, JudgeRubric):  # found by pickle under the module's names
        cls.__module__, cls.__qualname__ = __name__, cls.__name__
    return AsyncJudgeRubric, JudgeRubric


def __getattr__(name: str) -> Any:
    """``AsyncJudgeRubric`` / ``JudgeRubric`` (importing openenv on first access)."""
    if name == "AsyncJudgeRubric":
        return rubric_classes()[0]
    if name == "JudgeRubric":
        return rubric_classes()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def judge_rubric(
    judge: Any,
    *,
    on_error: OpenEnvOnError | None = None,
    response: Extract = default_response,
    prompt: Extract = default_prompt,
    reference: Extract = default_reference,
    sync: bool = False,
) -> Any:
    """``judge`` as an OpenEnv ``Rubric``: async ``forward`` by default, ``sync=True`` a plain one.

    ``on_error``: the value of a failed judgment — a number, ``"nan"`` (abstain) or ``"raise"``;
    default: the judge's own ``on_error`` (``"abstain"`` becomes ``"nan"``).
    """
    async_cls, sync_cls = rubric_classes()
    cls = sync_cls if sync else async_cls
    return cls(judge, on_error=on_error, response=response, prompt=prompt, reference=reference)


def _fallback(judge: Any, on_error: OpenEnvOnError | None) -> float | Literal["raise"]:
    if on_error == "nan":
        return math.nan
    value = validate_on_error(
        getattr(judge, "on_error", "abstain") if on_error is None else on_error
    )
    return math.nan if value == "abstain" else value
