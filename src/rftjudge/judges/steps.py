"""Per-step progress: a judge that scores each assistant step of an agent trajectory.

LLM-as-a-Verifier's progress idea: beside the outcome, the judge says for every assistant step how
far it moved the task towards completion. The steps are numbered by the trajectory renderer
(``[step N]``, :mod:`rftjudge.templates._trajectory`; the default ``view`` is ``"full_trace"``) and
the verdict must hold exactly one score per step — a verdict with another count is re-asked like any
invalid one. The reward stays one number (``reward_from="outcome"``, the outcome's score, by default;
``"mean"`` or ``"min"`` of the steps on request); :attr:`StepJudgment.steps` carries the per-step
values in [0, 1] for trainers that take per-turn rewards.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model
from typing_extensions import Unpack

from .._errors import ConfigurationError
from .._types import Message, Usage
from ..clients._protocol import Client
from ..templates import PromptTemplate
from ._criteria import Criterion, Scale, ScaleSpec, check_criteria
from ._options import JudgeOptions
from .base import BaseJudge

__all__ = ["StepJudge", "StepJudgment"]

DEFAULT_GOAL = Criterion(
    name="progress", description="The agent completes the user's task correctly and efficiently."
)


class StepJudgment(BaseModel):
    """``score``: the reward in [0, 1]; ``steps``: each assistant step's progress in [0, 1];
    ``outcome``: the final outcome's score in [0, 1]; ``rationale``, ``usage``, ``raw`` as usual."""

    score: float
    steps: list[float]
    outcome: float
    rationale: str = ""
    usage: Usage = Field(default_factory=Usage)
    raw: str = ""
    reasks: int = 0
    guarded: str | None = None


class StepJudge(BaseJudge[StepJudgment]):
    """Score an agent trajectory step by step (see the module docstring).

    ``criteria`` describe what completing the task means (default: one ``progress`` criterion);
    ``scale`` is the per-step and outcome scale (default 0-10); ``template`` replaces the bundled
    ``prompts/steps.j2``; the judge options are every judge's (``view`` defaults to
    ``"full_trace"``).
    """

    def __init__(
        self,
        client: Client,
        criteria: Sequence[Criterion] | None = None,
        *,
        scale: ScaleSpec = (0, 10),
        template: str | Path | None = None,
        reward_from: Literal["outcome", "mean", "min"] = "outcome",
        **options: Unpack[JudgeOptions],
    ) -> None:
        self.criteria = check_criteria(criteria or [DEFAULT_GOAL])
        self.scale = Scale.parse(scale)
        if self.scale.binary:
            raise ConfigurationError("StepJudge needs a numeric scale, e.g. (0, 10)")
        if reward_from not in ("outcome", "mean", "min"):
            raise ConfigurationError(
                f'reward_from must be "outcome", "mean" or "min"; got {reward_from!r}'
            )
        self.reward_from = reward_from
        options.setdefault("view", "full_trace")
        options.setdefault("name", "step_progress")
        super().__init__(client, **options)
        self.template = PromptTemplate(template if template is not None else "steps.j2")
        self._criteria_vars = [c.model_dump() for c in self.criteria]
        self._models: dict[int, type[BaseModel]] = {}
        self.render("prompt", "[step 1] assistant:\nresponse", None)

    def steps_of(self, response: Any) -> int:
        """Assistant steps the rendering numbers: the assistant messages of a message list under
        ``"full_trace"``/``"tools"``, else 1 (a single answer)."""
        if self.view in ("full_trace", "tools") and isinstance(response, list | tuple):
            count = sum(
                1
                for m in response
                if isinstance(m, Mapping) and m.get("role", "assistant") == "assistant"
            )
            return max(1, count)
        return 1

    def render(
        self, prompt: str, response: str, reference: str | None, steps: int = 1
    ) -> tuple[Message, ...]:
        return self.template.render(
            prompt=prompt,
            response=response,
            reference=reference,
            criteria=self._criteria_vars,
            scale=self.scale,
            steps=steps,
            output_schema=json.dumps(self._schema(steps)),
        )

    def _schema(self, steps: int) -> dict[str, Any]:
        score = {"type": "integer", "enum": self.scale.values}
        return {
            "type": "object",
            "properties": {
                "rationale": {"type": "string"},
                "steps": {"type": "array", "items": score, "minItems": steps, "maxItems": steps},
                "outcome": score,
            },
            "required": ["rationale", "steps", "outcome"],
            "additionalProperties": False,
        }

    def _model(self, steps: int) -> type[BaseModel]:
        if steps not in self._models:
            value = Annotated[int, Field(ge=self.scale.low, le=self.scale.high, strict=True)]
            self._models[steps] = create_model(
                "StepVerdict",
                __config__=ConfigDict(extra="ignore"),
                rationale=(str, ""),
                steps=(list[value], Field(min_length=steps, max_length=steps)),
                outcome=(value, ...),
            )
        return self._models[steps]

    async def ajudge(self, prompt: Any, response: Any, reference: Any = None) -> StepJudgment:
        reason = self.non_answer(response)
        if reason is not None:
            return StepJudgment(score=0.0, steps=[], outcome=0.0, guarded=reason)
        steps = self.steps_of(response)
        messages = self.messages_for(
            prompt, response, reference, functools.partial(self.render, steps=steps)
        )
        asked = await self._ask(
            self.make_request(messages, self._schema(steps)), self._model(steps)
        )
        verdict: Any = asked.verdict
        values = [self.scale.normalise(v) for v in verdict.steps]
        outcome = self.scale.normalise(verdict.outcome)
        score = (
            outcome
            if self.reward_from == "outcome"
            else (sum(values) / len(values) if self.reward_from == "mean" else min(values))
        )
        return StepJudgment(
            score=score,
            steps=values,
            outcome=outcome,
            rationale=verdict.rationale,
            usage=asked.usage,
            raw=asked.response.text,
            reasks=asked.reasks,
        )

    def score_of(self, result: StepJudgment) -> float:
        return result.score

    def __repr__(self) -> str:
        return f"StepJudge(client={self.client!r}, scale={self.scale!r}, reward_from={self.reward_from!r})"
