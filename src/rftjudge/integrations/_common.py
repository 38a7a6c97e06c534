"""What every trainer adapter shares: a number for every sample, deadlines, per-criterion values.

TRL can abstain (``None``); veRL, OpenRLHF, classic verifiers and Amazon Nova cannot — each needs a
number for every sample. :func:`resolve_fallback` makes the choice of that number explicit once,
when the adapter is built (a judge left at ``on_error="abstain"`` must be given one), and
:func:`settle` applies it to each outcome, reporting whether the sample failed so that the failure
can be flagged next to the score instead of passing for a real judgment.

:func:`judge_within` judges items one task each so that a deadline can cut off the slow ones while
the finished ones keep their verdicts (servers and Lambdas must answer in time, always).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, Protocol

from .._errors import ConfigurationError, JudgeError, JudgeTimeoutError, ParseError
from .._text import safe_name
from ..judges.base import OnError, validate_on_error

__all__ = [
    "Fallback",
    "ScoringJudge",
    "criterion_names",
    "criterion_values",
    "judge_within",
    "plain",
    "resolve_fallback",
    "safe_name",
    "settle",
]

logger = logging.getLogger("rftjudge")

Fallback = float | Literal["raise"]
"""What a failed sample becomes where abstaining is impossible: a number, or the error raised."""


class ScoringJudge(Protocol):
    """The part of :class:`~rftjudge.BaseJudge` the adapters use (fakes in tests implement it)."""

    name: str
    on_error: OnError

    async def ajudge_batch(
        self,
        prompts: Sequence[Any],
        responses: Sequence[Any],
        references: Sequence[Any] | None = None,
    ) -> list[Any]: ...

    def reward_of(self, outcome: Any) -> float | None: ...

    def metrics_of(self, outcomes: Sequence[Any]) -> dict[str, float]: ...


def resolve_fallback(
    judge: Any, on_error: OnError | None, *, where: str, allow_raise: bool = True
) -> Fallback:
    """The number (or ``"raise"``) a failed sample becomes in ``where``; chosen once, up front.

    ``on_error=None`` takes the judge's own ``on_error``. ``"abstain"`` is refused: ``where`` has no
    way to leave a sample out, and silently picking a number for the user would invent a reward.
    """
    value = getattr(judge, "on_error", "abstain") if on_error is None else on_error
    value = validate_on_error(value)
    if value == "abstain":
        raise ConfigurationError(
            f"{where} needs a number for every sample and cannot abstain; pass on_error=<a number "
            "in [0, 1]> (the value a failed judgment becomes, e.g. 0.5)"
            + (' or on_error="raise"' if allow_raise else "")
            + " to the adapter, or build the judge with a numeric on_error"
        )
    if value == "raise" and not allow_raise:
        raise ConfigurationError(
            f'{where} must always answer, so on_error="raise" is not allowed there; pass '
            "on_error=<a number in [0, 1]>, e.g. 0.5"
        )
    return value


def settle(judge: Any, outcome: Any, fallback: Fallback) -> tuple[float, bool]:
    """``(value, failed)`` for one outcome; with ``fallback="raise"`` a failure raises instead.

    A result passes through ``judge.reward_of`` (which checks that the score is a finite number in
    [0, 1]), so an unusable score counts as a failure too.
    """
    error: BaseException | None = outcome if isinstance(outcome, BaseException) else None
    if error is None:
        try:
            value = judge.reward_of(outcome)
        except JudgeError as exc:  # an out-of-range score under the judge's on_error="raise"
            error = exc
        else:
            if value is not None and math.isfinite(value):
                return float(value), False
            error = ParseError(f"{judge.name}: the judge produced no usable score")
    if fallback == "raise":
        raise error
    return float(fallback), True


def criterion_names(judge: Any) -> tuple[str, ...]:
    """Names of the per-criterion values a judge's results carry (rubric judges), else ``()``."""
    from ..judges.rubric import RubricJudge

    if isinstance(judge, RubricJudge):
        return tuple(c.name for c in judge.criteria)
    return ()


def criterion_values(
    names: Sequence[str], outcome: Any, failed: bool, fallback: float
) -> dict[str, float]:
    """Per-criterion scores in [0, 1] — the same keys for every sample, never NaN.

    A failed sample gets ``fallback`` for every criterion (trainers that average these columns
    need a number; the failure itself is flagged separately).
    """
    normalized = getattr(outcome, "normalized", None)
    values: dict[str, float] = {}
    for name in names:
        value = normalized.get(name) if isinstance(normalized, Mapping) and not failed else None
        values[name] = (
            float(value) if isinstance(value, int | float) and math.isfinite(value) else fallback
        )
    return values


async def judge_within(
    judge: ScoringJudge,
    prompts: Sequence[Any],
    responses: Sequence[Any],
    references: Sequence[Any],
    *,
    timeout: float | None,
    gate: Callable[[], AbstractAsyncContextManager[None]] | None = None,
) -> list[Any]:
    """Outcomes for every item (result or exception), none later than ``timeout`` seconds.

    Each item is its own task, so a deadline cancels only the unfinished ones (which stops their
    requests) and they come back as :class:`~rftjudge.JudgeTimeoutError`, counted in the judge's
    ``stats.failures["timeout"]``. Unexpected errors also come back as outcomes: callers that must
    always answer never see an exception from here (identical items still share one request
    through the client's request coalescing). Without a deadline (``timeout=None``) the items go
    through one ``ajudge_batch`` call, so identical items are judged once, and configuration errors
    (the caller's bug) propagate. ``gate``: a slot each item holds while judged (a server's fair
    share of the judge, :class:`~rftjudge.integrations._serving.FairShare`).
    """
    if not prompts:
        return []
    if timeout is None:
        return list(await judge.ajudge_batch(prompts, responses, references))
    if timeout <= 0:  # no time left at all (a Lambda about to be killed): judge nothing
        _count_timeouts(judge, len(prompts))
        return [_late(timeout) for _ in prompts]

    async def one(prompt: Any, response: Any, reference: Any) -> list[Any]:
        if gate is None:
            return list(await judge.ajudge_batch([prompt], [response], [reference]))
        async with gate():
            return list(await judge.ajudge_batch([prompt], [response], [reference]))

    tasks = [
        asyncio.ensure_future(one(p, r, ref))
        for p, r, ref in zip(prompts, responses, references, strict=True)
    ]
    done, _ = await asyncio.wait(tasks, timeout=timeout)
    pending = [t for t in tasks if t not in done]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)  # let cancelled requests unwind
        _count_timeouts(judge, len(pending))
        logger.warning(
            "rftjudge: %s: %d of %d judgments missed the %.1f s deadline",
            judge.name,
            len(pending),
            len(tasks),
            timeout,
        )
    outcomes: list[Any] = []
    for task in tasks:
        if task in done:
            exc = task.exception()
            if exc is not None:
                logger.error("rftjudge: %s judgment raised: %r", judge.name, exc)
                outcomes.append(exc)
            else:
                outcomes.append(task.result()[0])
        else:
            outcomes.append(_late(timeout))
    return outcomes


def _late(timeout: float) -> JudgeTimeoutError:
    return JudgeTimeoutError(f"judging did not finish within the {max(timeout, 0):.1f} s deadline")


def _count_timeouts(judge: Any, count: int) -> None:
    """Late items never reach the judge's own failure counter (they were cancelled): add them."""
    failures = getattr(getattr(judge, "stats", None), "failures", None)
    if failures is not None:
        failures["timeout"] += count


def plain(value: Any) -> Any:
    """numpy arrays and scalars (veRL's parquet columns) as plain Python values for JSON."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and not isinstance(value, str | bytes):
        try:
            return tolist()
        except Exception:  # pragma: no cover - an odd object with a tolist attribute
            return value
    return value
