"""An OpenAI grader config as an rftjudge reward: ``load_openai_grader(config, models=client)``.

Two ways to read its result:

- as a reward (``reward``, ``reward_batch``, async twins, ``as_reward_func()`` for TRL and every
  integration built on rftjudge rewards): ``prompt`` is ignored, ``response`` is the model output
  (text, a chat completion, or a dict in the ``sample`` shape), ``reference`` is the data set row
  (the ``item``: a dict or a JSON object's text; anything else becomes ``{"reference": value}``);
- as ``/graders/run`` would answer: ``run(sample, item)`` → ``{"reward", "sub_rewards",
  "metadata": {"name", "type", "errors", "execution_time", "scores", "token_usage",
  "sampled_model_name"}, "model_grader_token_usage_per_model"}``.

``on_error``: ``"openai"`` (default) is OpenAI's rule — a sample the grader cannot grade scores 0,
with the reason in ``metadata.errors`` (counted in ``stats.failures`` and logged). For training,
``"abstain"`` (reward None: TRL ≥ 1.6 gives the row no advantage instead of a false 0) is safer;
``"raise"`` or a number work as for every rftjudge judge. Rewards are the grader's own numbers,
not clipped to [0, 1]: a ``score_model`` with ``range: [0, 10]`` gives 0…10, as on OpenAI.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from .._errors import ConfigurationError, JudgeError, VerdictError
from .._sync import run_sync
from .._types import Usage
from ..clients._protocol import Client
from ..judges.base import RewardBase
from ._config import MultiGrader, parse_grader
from ._nodes import compile_grader, has_python, model_graders
from ._outcome import Outcome
from ._sandbox import DEFAULT_MEMORY_BYTES, DEFAULT_TIMEOUT_S, Network, Sandbox
from ._similarity import Embed
from ._template import make_sample

if TYPE_CHECKING:
    from .._sinks import MetricsSinkLike
    from ..rewards import RewardFunc

__all__ = ["GradeResult", "GraderError", "OpenAIGrader", "load_openai_grader"]

logger = logging.getLogger("rftjudge")


class GraderError(VerdictError):
    """The grader could not grade a sample; ``kind`` is the ``/graders/run`` error flag."""

    def __init__(self, flag: str, details: str = "") -> None:
        self.flag = flag
        super().__init__(f"{flag}: {details}" if details else flag)

    @property
    def kind(self) -> str:
        return self.flag


class GradeResult(BaseModel):
    """One graded sample (what the CLI writes per row)."""

    score: float
    passed: bool | None = None
    sub_rewards: dict[str, float] = Field(default_factory=dict)
    errors: dict[str, str] = Field(default_factory=dict)
    model_grader_token_usage_per_model: dict[str, dict[str, int]] = Field(default_factory=dict)
    usage: Usage = Field(default_factory=Usage)
    rationale: str = ""


class OpenAIGrader(RewardBase[GradeResult]):
    """A loaded OpenAI grader (see the module docstring); build it with :func:`load_openai_grader`."""

    default_name = "grader"

    def __init__(
        self,
        config: Any,
        *,
        models: Client | Mapping[str, Client] | None = None,
        embed: Embed | None = None,
        on_error: Any = "openai",
        name: str | None = None,
        python_timeout: float = DEFAULT_TIMEOUT_S,
        python_memory_bytes: int | None = DEFAULT_MEMORY_BYTES,
        network: Network = "isolate",
        batch_deadline: float | None = None,
        distribution: bool = False,
    ) -> None:
        self.config = parse_grader(config)
        self.faithful = on_error == "openai"
        super().__init__(
            on_error=0.0 if self.faithful else on_error,
            name=name or self.config.name or self.config.type,
            batch_deadline=batch_deadline,
        )
        sandbox = (
            Sandbox(timeout=python_timeout, memory_bytes=python_memory_bytes, network=network)
            if has_python(self.config)
            else None
        )
        self.node = compile_grader(
            self.config, models=models, embed=embed, sandbox=sandbox, distribution=distribution
        )
        self.pass_threshold: float | None = getattr(self.config, "pass_threshold", None)
        if self.pass_threshold is None and self.config.type in ("string_check", "label_model"):
            self.pass_threshold = 1.0  # their scores are pass (1) or fail (0)

    @property
    def distribution_fallbacks(self) -> int:
        """With ``distribution=True``: answers whose distribution could not be read, so that the
        sampled answer counted."""
        return sum(g.distribution_fallbacks for g in model_graders(self.node))

    # -- the /graders/run shape ------------------------------------------------------------------

    async def arun(self, sample: Any, item: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Grade one sample as ``/graders/run`` does; ``sample`` is the model output (a string is
        ``model_sample``), ``item`` the data set row."""
        started = time.perf_counter()
        outcome = await self._grade(make_sample(sample), dict(item or {}))
        return self._response(outcome, time.perf_counter() - started)

    def run(self, sample: Any, item: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Synchronous :meth:`arun`."""
        return run_sync(self.arun(sample, item))

    def _response(self, outcome: Outcome, elapsed: float) -> dict[str, Any]:
        tokens = sum(c["total_tokens"] for c in outcome.token_usage.values())
        scores: dict[str, Any] = dict(outcome.sub_rewards) or {self.name: outcome.score}
        return {
            "reward": outcome.score,
            "sub_rewards": dict(outcome.sub_rewards),
            "metadata": {
                "name": self.config.name,
                "type": self.config.type,
                "errors": outcome.errors_object(),
                "execution_time": elapsed,
                "scores": scores,
                "token_usage": tokens if outcome.token_usage else None,
                "sampled_model_name": None,
            },
            "model_grader_token_usage_per_model": outcome.token_usage,
        }

    async def _grade(self, sample: Mapping[str, Any], item: Mapping[str, Any]) -> Outcome:
        return await self.node.grade(sample, item)

    # -- the reward boundary ---------------------------------------------------------------------

    async def ajudge(self, prompt: Any, response: Any, reference: Any = None) -> GradeResult:
        item = _item(reference)
        try:
            sample = make_sample(response)
        except (ConfigurationError, TypeError, ValueError) as exc:
            outcome = Outcome.failed("sample_parse_error", str(exc))
        else:
            outcome = await self._grade(sample, item)
        if outcome.errors:
            flag, details = next(iter(outcome.errors.items()))
            if not self.faithful:
                raise GraderError(flag, details)
            for each in outcome.errors:
                self.stats.failures[each] += 1
            logger.warning(
                "rftjudge: grader %s: %s (OpenAI rule: the failed part scores 0): %s",
                self.name,
                flag,
                details,
            )
        usage = Usage(
            input_tokens=sum(c["prompt_tokens"] for c in outcome.token_usage.values()),
            output_tokens=sum(c["completion_tokens"] for c in outcome.token_usage.values()),
        )
        self.stats.usage = self.stats.usage + usage
        return GradeResult(
            score=outcome.score,
            passed=None if self.pass_threshold is None else outcome.score >= self.pass_threshold,
            sub_rewards=outcome.sub_rewards,
            errors=outcome.errors,
            model_grader_token_usage_per_model=outcome.token_usage,
            usage=usage,
            rationale=outcome.rationale,
        )

    def score_of(self, result: GradeResult) -> float:
        return result.score

    def reward_of(self, outcome: GradeResult | float | BaseException) -> float | None:
        """As for every judge, except that any finite number passes: graders are not in [0, 1]."""
        if isinstance(outcome, BaseException):
            return super().reward_of(outcome)
        score = outcome if isinstance(outcome, float) else outcome.score
        if not math.isfinite(score):
            return super().reward_of(outcome)  # counted and replaced per on_error
        return score

    def failures_of(self, outcomes: Sequence[GradeResult | float | BaseException]) -> Counter[str]:
        kinds: Counter[str] = Counter()
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                kinds[outcome.kind if isinstance(outcome, JudgeError) else "internal"] += 1
            elif isinstance(outcome, GradeResult):
                kinds.update(outcome.errors)
        return kinds

    def metrics_of(
        self, outcomes: Sequence[GradeResult | float | BaseException]
    ) -> dict[str, float]:
        """Adds each ``multi`` sub-reward's batch mean and, with a threshold, the pass rate."""
        metrics = super().metrics_of(outcomes)
        done = [o for o in outcomes if isinstance(o, GradeResult)]
        for key in sorted({k for o in done for k in o.sub_rewards}):
            values = [o.sub_rewards[key] for o in done if key in o.sub_rewards]
            metrics[f"sub_rewards/{key}"] = math.fsum(values) / len(values)
        passed = [o.passed for o in done if o.passed is not None]
        if passed:
            metrics["pass_rate"] = sum(passed) / len(passed)
        return metrics

    def as_reward_func(
        self,
        name: str | None = None,
        reference_column: str = "reference",
        *,
        metrics_sink: MetricsSinkLike | None = None,
    ) -> RewardFunc:
        """TRL's reward function (a picklable object); the ``item`` is the whole row (``prompt``
        and every column TRL passes), so ``reference_column`` is not needed (kept for the common
        signature)."""
        from ..rewards import trl_item_reward_func

        return trl_item_reward_func(self, name=name, metrics_sink=metrics_sink)

    def __repr__(self) -> str:
        return f"OpenAIGrader(name={self.name!r}, type={self.config.type!r})"


def _item(reference: Any) -> dict[str, Any]:
    """The ``item`` a reward call's reference stands for: a dict is the row; a JSON object in text
    is too (integrations such as veRL's hand a dict ``ground_truth`` over as JSON text); anything
    else is ``{"reference": value}``."""
    if reference is None:
        return {}
    if isinstance(reference, Mapping):
        return dict(reference)
    if isinstance(reference, str) and reference.lstrip().startswith("{"):
        try:
            parsed = json.loads(reference)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    return {"reference": reference}


def load_openai_grader(
    config: Any,
    *,
    models: Client | Mapping[str, Client] | None = None,
    embed: Embed | None = None,
    on_error: Any = "openai",
    name: str | None = None,
    python_timeout: float = DEFAULT_TIMEOUT_S,
    python_memory_bytes: int | None = DEFAULT_MEMORY_BYTES,
    network: Network = "isolate",
    batch_deadline: float | None = None,
    distribution: bool = False,
) -> OpenAIGrader:
    """Load an OpenAI grader config — a dict, a JSON string or a path (a ``/graders/run`` body's
    ``{"grader": ...}`` works too) — as a reward. See :class:`OpenAIGrader`.

    ``models``: the client for every ``score_model``/``label_model`` (one client, or a mapping
    from the config's model names, ``"*"`` for the rest). ``embed``: ``fn(texts) -> vectors`` for
    ``cosine`` similarity. ``distribution``: read model graders' score distributions from
    logprobs instead of the one sampled answer (opt-in, see :mod:`rftjudge.graders._model`).
    ``python_*`` and ``network``: the python-grader sandbox
    (:mod:`rftjudge.graders._sandbox`). Raises :class:`~rftjudge.ConfigurationError` naming the
    field for a config that cannot run.
    """
    return OpenAIGrader(
        config,
        models=models,
        embed=embed,
        on_error=on_error,
        name=name,
        python_timeout=python_timeout,
        python_memory_bytes=python_memory_bytes,
        network=network,
        batch_deadline=batch_deadline,
        distribution=distribution,
    )


def validate_grader(config: Any) -> Any:
    """The validated config (no clients needed); ConfigurationError naming the field otherwise.

    Formulas are parsed against the sub-graders' names too, as a load would.
    """
    parsed = parse_grader(config)
    if isinstance(parsed, MultiGrader):
        from ._formula import FormulaError, parse_formula

        try:
            parse_formula(parsed.calculate_output, list(parsed.named))
        except FormulaError as exc:
            raise ConfigurationError(f"grader.calculate_output: {exc}") from None
    return parsed
