"""Amazon Nova / Bedrock reinforcement fine-tuning: a judge as the reward Lambda.

The RFT service invokes the Lambda with a batch — a bare JSON list of samples
``{"id", "messages": [{"role", "content"}, ...], "reference_answer"?, "metadata"?}`` whose last
assistant message is the generated answer — and expects a bare list back, one entry per sample::

    {"id": <same id>, "aggregate_reward_score": <number>,
     "metrics_list": [{"name": str, "value": number, "type": "Reward" | "Metric"}, ...]}

:func:`make_lambda_handler` builds that handler:

- the reference is ``reference_answer`` at the top level (Nova 2 / SageMaker guide, Nova Forge SDK)
  or under ``metadata`` (Bedrock guide), a string or any JSON value; it may be absent;
- the answer is the last ``assistant`` (or ``nova_assistant``) message; the messages before it are
  the prompt the judge sees;
- pre-checks (:mod:`rftjudge.integrations.checks`) run first; a check returning 0.0 gates the sample
  (reward 0.0, no judge call), other values multiply the judge's reward;
- the samples of one invocation are judged concurrently; judgments unfinished at the deadline
  (``deadline_s``, and never later than the Lambda's remaining time minus ``safety_margin_s``) and
  failed judgments get ``neutral`` (default 0.5, AWS's advice) and ``judge_failed = 1``;
- the handler never raises: the training step must not fail because of the judge.

``metrics_list`` holds the ``Reward`` entry (named after the judge), one ``Metric`` per criterion
(rubric judges; only for samples the judge scored), one per check that had an opinion, and the 0/1
flags ``judge_failed`` and ``gated``.

No AWS package is needed: the handler is a plain function of ``(event, context)``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._errors import ConfigurationError
from .._sync import run_sync
from .._text import as_text, reference_text, safe_name
from ._common import ScoringJudge, criterion_names, judge_within, settle
from ._rubrics import attach_rubric
from .checks import Check, json_valid, non_empty

__all__ = ["Check", "json_valid", "make_lambda_handler", "non_empty"]

logger = logging.getLogger("rftjudge")

ASSISTANT_ROLES = ("assistant", "nova_assistant")
DEFAULT_DEADLINE_S = 600.0
_FLAGS = ("judge_failed", "gated")

LambdaHandler = Callable[..., list[dict[str, Any]]]


@dataclass
class _Sample:
    id: Any
    prompt: str = ""
    answer: str = ""
    reference: str | None = None
    checks: dict[str, float] = field(default_factory=dict)
    factor: float = 1.0
    gated: bool = False
    failed: bool = False
    judged: bool = False
    reward: float = 0.0
    criteria: dict[str, float] = field(default_factory=dict)
    sources: tuple[Any, ...] = ()


def make_lambda_handler(
    judge: ScoringJudge,
    *,
    neutral: float = 0.5,
    deadline_s: float = DEFAULT_DEADLINE_S,
    checks: Sequence[Check] = (),
    reward_name: str | None = None,
    safety_margin_s: float = 5.0,
) -> LambdaHandler:
    """A synchronous ``handler(event, context=None) -> list`` for Nova / Bedrock RFT.

    ``neutral``: the reward of a failed or timed-out sample. ``deadline_s``: the longest the handler
    spends judging (set the Lambda's timeout above it; Lambda's maximum is 15 minutes). With a
    Lambda ``context`` the deadline also ends ``safety_margin_s`` before the invocation would be
    killed. ``checks``: pre-checks ``check(answer_text, sample) -> float | None``.
    """
    if (
        isinstance(neutral, bool)
        or not isinstance(neutral, int | float)
        or not math.isfinite(neutral)
    ):
        raise ConfigurationError(f"neutral must be a finite number; got {neutral!r}")
    if not deadline_s > 0:
        raise ConfigurationError(f"deadline_s must be > 0 seconds; got {deadline_s!r}")
    if not safety_margin_s >= 0:
        raise ConfigurationError(f"safety_margin_s must be >= 0; got {safety_margin_s!r}")
    checks = tuple(checks)
    for check in checks:
        if not callable(check):
            raise ConfigurationError(f"checks must be callables; got {type(check).__name__}")
    check_names = [getattr(c, "__name__", type(c).__name__) for c in checks]
    name = safe_name(reward_name, judge.name)
    criteria = criterion_names(judge)
    taken = [name, *criteria, *check_names, *_FLAGS]
    clashes = sorted({n for n in taken if taken.count(n) > 1})
    if clashes:
        raise ConfigurationError(f"metric names must be unique; repeated: {clashes}")
    fallback = float(neutral)

    async def score(samples: list[_Sample], timeout: float) -> None:
        todo = [s for s in samples if not s.gated and not s.failed]
        outcomes = await judge_within(
            judge,
            [s.prompt for s in todo],
            [s.answer for s in todo],
            [attach_rubric(judge, s.reference, *s.sources) for s in todo],
            timeout=timeout,
        )
        for sample, outcome in zip(todo, outcomes, strict=True):
            value, failed = settle(judge, outcome, fallback)
            sample.failed, sample.judged = failed, True
            sample.reward = fallback if failed else value * sample.factor
            normalized = getattr(outcome, "normalized", None)
            if not failed and isinstance(normalized, Mapping):
                sample.criteria = {c: float(normalized[c]) for c in criteria if c in normalized}

    def handler(event: Any, context: Any = None) -> list[dict[str, Any]]:
        started = time.monotonic()
        raw = event if isinstance(event, list) else [event]
        samples = [_read(item, i) for i, item in enumerate(raw)]
        for sample, item in zip(samples, raw, strict=True):
            if not sample.failed:
                _run_checks(sample, item, checks, check_names)
        try:
            budget = _budget(deadline_s, context, safety_margin_s) - (time.monotonic() - started)
            run_sync(score(samples, budget))
        except Exception:  # never fail the training step: whatever is unscored gets neutral
            logger.exception("rftjudge: Nova reward handler failed")
        for sample in samples:
            if sample.failed or not (sample.gated or sample.judged):
                sample.failed, sample.reward = True, fallback
        return [_output(s, name, check_names) for s in samples]

    handler.__name__ = handler.__qualname__ = "lambda_handler"
    return handler


def _budget(deadline_s: float, context: Any, margin: float) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        try:
            return min(deadline_s, float(remaining()) / 1000.0 - margin)
        except Exception:  # pragma: no cover - a context object of another shape
            logger.warning("rftjudge: could not read the Lambda's remaining time")
    return deadline_s


def _read(item: Any, index: int) -> _Sample:
    """One sample's id, prompt, answer and reference; a malformed sample is marked failed."""
    if not isinstance(item, Mapping):
        logger.warning("rftjudge: Nova sample %d is not an object", index)
        return _Sample(id=None, failed=True)
    sample = _Sample(id=item.get("id"))
    messages = item.get("messages")
    if not isinstance(messages, list) or not messages:
        logger.warning("rftjudge: Nova sample %r has no messages", sample.id)
        sample.failed = True
        return sample
    last = max(
        (
            i
            for i, m in enumerate(messages)
            if isinstance(m, Mapping) and m.get("role") in ASSISTANT_ROLES
        ),
        default=None,
    )
    if last is None:
        logger.warning("rftjudge: Nova sample %r has no assistant message", sample.id)
        sample.failed = True
        return sample
    try:
        sample.answer = as_text(messages[last], what="completion")
        sample.prompt = as_text(
            [m for m in messages[:last] if isinstance(m, Mapping)], what="prompt"
        )
    except ConfigurationError as exc:
        logger.warning("rftjudge: Nova sample %r: %s", sample.id, exc)
        sample.failed = True
        return sample
    metadata = item.get("metadata")
    reference = item.get("reference_answer")
    if reference is None and isinstance(metadata, Mapping):
        reference = metadata.get("reference_answer")
    sample.reference = reference_text(reference)
    sample.sources = (item, metadata)  # where a per-row rubric may be (integrations/_rubrics.py)
    return sample


def _run_checks(sample: _Sample, item: Any, checks: Sequence[Check], names: Sequence[str]) -> None:
    for check, name in zip(checks, names, strict=True):
        try:
            value = check(sample.answer, item)
        except Exception:
            logger.exception("rftjudge: Nova check %s raised on sample %r", name, sample.id)
            sample.failed = True
            return
        if value is None:
            continue
        if not _unit_number(value):
            logger.error("rftjudge: Nova check %s returned %r (not in [0, 1])", name, value)
            sample.failed = True
            return
        sample.checks[name] = float(value)
        if value == 0.0:
            sample.gated = True
            sample.reward = 0.0
            return
        sample.factor *= float(value)


def _unit_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0.0 <= value <= 1.0
    )


def _output(sample: _Sample, reward_name: str, check_names: Sequence[str]) -> dict[str, Any]:
    metrics = [{"name": reward_name, "value": sample.reward, "type": "Reward"}]
    metrics += [{"name": k, "value": v, "type": "Metric"} for k, v in sample.criteria.items()]
    metrics += [
        {"name": k, "value": sample.checks[k], "type": "Metric"}
        for k in check_names
        if k in sample.checks
    ]
    metrics.append({"name": "judge_failed", "value": float(sample.failed), "type": "Metric"})
    metrics.append({"name": "gated", "value": float(sample.gated), "type": "Metric"})
    return {"id": sample.id, "aggregate_reward_score": sample.reward, "metrics_list": metrics}
