"""The reward boundary: where a judgment becomes a reward, and every failure a defined outcome.

:class:`RewardBase` is shared by model-backed judges (:mod:`.base`) and composed rewards
(:mod:`rftjudge.compose`). One async core per reward (``ajudge``); everything else is derived here
once:

- ``areward`` / ``areward_batch`` turn judgments into rewards and apply ``on_error`` — the single
  place where a failure becomes ``None`` (abstain), a neutral number, or an exception;
- ``judge`` / ``reward`` / ``reward_batch`` run the async core from synchronous code, also when an
  event loop is already running in the calling thread (see :mod:`rftjudge._sync`);
- ``as_reward_func`` adapts the reward to TRL's reward-function signature (:mod:`rftjudge.rewards`).

A batch never outlives its call: with a deadline (``areward_batch(..., deadline=s)``, or the
``batch_deadline``) items unfinished when it passes are cancelled, awaited and become the
``on_error`` outcome with kind ``"deadline"``; when the caller cancels the batch (task cancel,
KeyboardInterrupt through the sync twins) every judge call is cancelled and awaited before the
cancellation propagates, so no request keeps running — and billing — in the background.
"""

from __future__ import annotations

import asyncio
import logging
import math
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from .._errors import (
    ConfigurationError,
    DeadlineExceededError,
    JudgeError,
    ParseError,
)
from .._rebuild import Rebuildable
from .._sync import run_sync
from .._types import Usage
from ._options import OnError

if TYPE_CHECKING:
    from .._sinks import MetricsSinkLike
    from ..rewards import RewardFunc


__all__ = [
    "JudgeStats",
    "RewardBase",
    "validate_deadline",
    "validate_on_error",
]

logger = logging.getLogger("rftjudge")

R = TypeVar("R")
V = TypeVar("V", bound=BaseModel)




@dataclass
class JudgeStats:
    """Running totals of one judge: how many judgments, how many failed and why, tokens spent.

    Per process: a judge pickled into another process (TRL's AsyncGRPO child, Ray workers) starts
    there from zero and its counts stay there (``as_reward_func(metrics_sink=...)`` reports them).
    """

    judgments: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    reasks: int = 0
    expected_fallbacks: int = 0
    skipped_judge_calls: int = 0
    guarded: Counter[str] = field(default_factory=Counter)
    truncated: int = 0
    usage: Usage = field(default_factory=Usage)

    @property
    def failure_count(self) -> int:
        return sum(self.failures.values())


def validate_on_error(on_error: object) -> OnError:
    if on_error in ("abstain", "raise"):
        return on_error
    if isinstance(on_error, bool) or not isinstance(on_error, int | float):
        raise ConfigurationError(
            f'on_error must be "abstain", "raise" or a number in [0, 1]; got {on_error!r}'
        )
    value = float(on_error)
    if not (0.0 <= value <= 1.0):
        raise ConfigurationError(f"on_error must be a number in [0, 1]; got {on_error!r}")
    return value


def validate_deadline(deadline: object, what: str = "deadline") -> float | None:
    """None (no deadline) or seconds > 0; ``math.inf`` also means none."""
    if deadline is None:
        return None
    if isinstance(deadline, bool) or not isinstance(deadline, int | float) or not deadline > 0:
        raise ConfigurationError(
            f"{what} must be None or a number of seconds > 0; got {deadline!r}"
        )
    return None if math.isinf(deadline) else float(deadline)


class RewardBase(Rebuildable, ABC, Generic[R]):
    """The reward boundary shared by judges and composed rewards.

    Subclasses implement :meth:`ajudge` (one result, or a :class:`~rftjudge.JudgeError`) and
    :meth:`score_of`; everything else — ``on_error``, batches with deduplication, sync twins, the
    TRL adapter, failure counting — is defined here once.
    """

    default_name: str = "judge"

    def __init__(
        self,
        *,
        on_error: OnError = "abstain",
        name: str | None = None,
        batch_deadline: float | None = None,
    ) -> None:
        self.on_error: OnError = validate_on_error(on_error)
        self.name = name or self.default_name
        self.batch_deadline = validate_deadline(batch_deadline, "batch_deadline")
        self.stats = JudgeStats()

    # -- what subclasses provide -----------------------------------------------------------------

    @abstractmethod
    async def ajudge(self, prompt: Any, response: Any, reference: Any = None) -> R:
        """Judge one response; raise a :class:`~rftjudge.JudgeError` when no verdict is possible."""

    @abstractmethod
    def score_of(self, result: R) -> float:
        """The reward in [0, 1] carried by a result."""

    def dedupe_key(self, prompt: Any, response: Any, reference: Any) -> Hashable | None:
        """Items of one batch with equal keys are judged once. None disables deduplication."""
        try:
            return (repr(prompt), repr(response), repr(reference))
        except Exception:  # pragma: no cover - repr of user objects
            return None

    # -- the reward boundary ---------------------------------------------------------------------

    async def ajudge_safe(
        self, prompt: Any, response: Any, reference: Any = None
    ) -> R | BaseException:
        """The result, or the exception that prevented it (counted and logged); never raises
        except for ``on_error="raise"`` callers, who re-raise it themselves."""
        self.stats.judgments += 1
        try:
            return await self.ajudge(prompt, response, reference)
        except asyncio.CancelledError:
            raise
        except ConfigurationError:
            raise  # bad input or setup is the caller's bug: never turned into a reward
        except JudgeError as exc:
            self.stats.failures[exc.kind] += 1
            logger.warning("rftjudge: %s judgment failed (%s): %s", self.name, exc.kind, exc)
            return exc
        except Exception as exc:  # a bug must not crash a days-long training run either
            self.stats.failures["internal"] += 1
            logger.exception("rftjudge: %s judgment failed with an unexpected error", self.name)
            return exc

    def reward_of(self, outcome: R | float | BaseException) -> float | None:
        """Apply ``on_error`` to one outcome (a result, a bare score, or the error)."""
        if isinstance(outcome, BaseException):
            if self.on_error == "raise":
                raise outcome
            if self.on_error == "abstain":
                return None
            return float(self.on_error)
        score = outcome if isinstance(outcome, float) else self.score_of(outcome)
        if not math.isfinite(score) or not (0.0 <= score <= 1.0):  # never a wrong number
            if self.on_error == "raise":
                raise ParseError(f"judge produced an out-of-range score {score!r}")
            self.stats.failures["out_of_range"] += 1
            return None if self.on_error == "abstain" else float(self.on_error)
        return score

    async def areward(self, prompt: Any, response: Any, reference: Any = None) -> float | None:
        """Reward in [0, 1], or the ``on_error`` outcome when judging fails."""
        return self.reward_of(await self.ajudge_safe(prompt, response, reference))

    async def ajudge_batch(
        self,
        prompts: Sequence[Any],
        responses: Sequence[Any],
        references: Sequence[Any] | None = None,
        *,
        deadline: float | None = None,
    ) -> list[R | BaseException]:
        """Outcomes for every item, in input order; identical items are judged once.

        ``deadline`` (seconds; default: the judge's ``batch_deadline``; ``math.inf``: none) bounds
        the whole batch: items unfinished by then are cancelled and their outcome is a
        :class:`~rftjudge.DeadlineExceededError` (kind ``"deadline"``).
        """
        limit = self.batch_deadline if deadline is None else validate_deadline(deadline)
        prompts, responses, refs = _check_lengths(prompts, responses, references)
        unique: dict[Hashable, int] = {}
        slots: list[int] = []
        work: list[tuple[Any, Any, Any]] = []
        for item in zip(prompts, responses, refs, strict=True):
            key = self.dedupe_key(*item)
            if key is None or key not in unique:
                if key is not None:
                    unique[key] = len(work)
                slots.append(len(work))
                work.append(item)
            else:
                slots.append(unique[key])
        outcomes = await self._judge_all(work, limit)
        return [outcomes[i] for i in slots]

    async def _judge_all(
        self, work: Sequence[tuple[Any, Any, Any]], deadline: float | None
    ) -> list[R | BaseException]:
        """Judge every item concurrently; whatever happens, no task outlives this call."""
        tasks = [asyncio.ensure_future(self.ajudge_safe(*item)) for item in work]
        if not tasks:
            return []
        try:
            # ajudge_safe raises only for configuration errors (a bug): stop at the first one.
            done, pending = await asyncio.wait(
                tasks, timeout=deadline, return_when=asyncio.FIRST_EXCEPTION
            )
        except BaseException:  # the caller cancelled the batch
            await _cancel_and_wait(tasks)
            raise
        await _cancel_and_wait(pending)
        for task in done:
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                raise failure
        outcomes: list[R | BaseException] = []
        late = 0
        for task in tasks:
            if task in pending and task.cancelled():  # only a deadline leaves tasks pending
                late += 1
                outcomes.append(
                    DeadlineExceededError(
                        f"batch deadline of {deadline:g}s passed before this item was judged"
                    )
                )
            elif task.cancelled():  # cancelled from inside the judge, not by us
                self.stats.failures["internal"] += 1
                outcomes.append(asyncio.CancelledError("the judgment was cancelled"))
            elif (error := task.exception()) is not None:
                raise error  # a late configuration error, raised while we were cancelling
            else:
                outcomes.append(task.result())
        if late:
            self.stats.failures["deadline"] += late
            logger.warning(
                "rftjudge: %s: %d of %d judgments unfinished at the %gs batch deadline",
                self.name,
                late,
                len(tasks),
                deadline,
            )
        return outcomes

    async def areward_batch(
        self,
        prompts: Sequence[Any],
        responses: Sequence[Any],
        references: Sequence[Any] | None = None,
        *,
        deadline: float | None = None,
    ) -> list[float | None]:
        """Rewards for every item, concurrently (bounded by the client), in input order.

        ``deadline``: see :meth:`ajudge_batch`.
        """
        outcomes = await self.ajudge_batch(prompts, responses, references, deadline=deadline)
        return [self.reward_of(o) for o in outcomes]

    # -- synchronous twins -----------------------------------------------------------------------

    def judge(self, prompt: Any, response: Any, reference: Any = None) -> R:
        """Synchronous :meth:`ajudge`; works inside a running event loop too."""
        return run_sync(self.ajudge(prompt, response, reference))

    def reward(self, prompt: Any, response: Any, reference: Any = None) -> float | None:
        """Synchronous :meth:`areward`."""
        return run_sync(self.areward(prompt, response, reference))

    def reward_batch(
        self,
        prompts: Sequence[Any],
        responses: Sequence[Any],
        references: Sequence[Any] | None = None,
        *,
        deadline: float | None = None,
    ) -> list[float | None]:
        """Synchronous :meth:`areward_batch`."""
        return run_sync(self.areward_batch(prompts, responses, references, deadline=deadline))

    # -- trainer adapters ------------------------------------------------------------------------

    def as_reward_func(
        self,
        name: str | None = None,
        reference_column: str = "reference",
        *,
        metrics_sink: MetricsSinkLike | None = None,
    ) -> RewardFunc:
        """A TRL reward function: a picklable object with an async ``__call__`` (see
        :mod:`rftjudge.rewards`), for ``GRPOTrainer`` and ``AsyncGRPOTrainer`` alike.

        ``metrics_sink`` (a callable, a JSONL path or a ``logging.Logger``) receives each call's
        metrics when the trainer passes no ``log_metric``. For callers that only call synchronous
        functions (TRL's Online DPO, TRL < 0.27) wrap it:
        ``rftjudge.integrations.trl.sync_reward_func(judge)``.
        """
        from ..rewards import trl_reward_func

        return trl_reward_func(
            self, name=name, reference_column=reference_column, metrics_sink=metrics_sink
        )

    def metrics_of(self, outcomes: Sequence[R | float | BaseException]) -> dict[str, float]:
        """Per-batch metrics to log (subclasses add per-criterion means).

        ``failure_rate``, and ``failures/<kind>``: this batch's count per failure kind, for every
        kind this judge has seen so far (zeros included, so that each logged series is continuous).
        """
        kinds = self.failures_of(outcomes)
        failed = sum(kinds.values())
        metrics = {"failure_rate": failed / len(outcomes) if outcomes else 0.0}
        for kind in sorted(set(kinds) | set(self.stats.failures)):
            metrics[f"failures/{kind}"] = float(kinds.get(kind, 0))
        return metrics

    def failures_of(self, outcomes: Sequence[R | float | BaseException]) -> Counter[str]:
        """How many outcomes of a batch failed, by kind (what ``judge.stats.failures`` counts).

        An out-of-range score counts as ``"out_of_range"``: :meth:`reward_of` never passes it on.
        """
        kinds: Counter[str] = Counter()
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                kinds[outcome.kind if isinstance(outcome, JudgeError) else "internal"] += 1
                continue
            try:
                score = outcome if isinstance(outcome, float) else self.score_of(outcome)
            except Exception:
                kinds["internal"] += 1
                continue
            if not (math.isfinite(score) and 0.0 <= score <= 1.0):
                kinds["out_of_range"] += 1
        return kinds

    def rationale_of(self, outcome: R | BaseException) -> str:
        if isinstance(outcome, BaseException):
            kind = outcome.kind if isinstance(outcome, JudgeError) else "internal"
            return f"[judge failed: {kind}]"
        return str(getattr(outcome, "rationale", ""))


def _check_lengths(
    prompts: Sequence[Any], responses: Sequence[Any], references: Sequence[Any] | None
) -> tuple[Sequence[Any], Sequence[Any], Sequence[Any]]:
    for label, seq in (("prompts", prompts), ("responses", responses)):
        if isinstance(seq, str) or not isinstance(seq, Sequence):
            raise ConfigurationError(f"{label} must be a list, got {type(seq).__name__}")
    if len(prompts) != len(responses):
        raise ConfigurationError(
            f"prompts and responses differ in length ({len(prompts)} vs {len(responses)})"
        )
    if references is None:
        return prompts, responses, [None] * len(prompts)
    if isinstance(references, str) or not isinstance(references, Sequence):
        raise ConfigurationError(f"references must be a list, got {type(references).__name__}")
    if len(references) != len(prompts):
        raise ConfigurationError(
            f"references and prompts differ in length ({len(references)} vs {len(prompts)})"
        )
    return prompts, responses, references


async def _cancel_and_wait(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and wait until each has finished unwinding (connections released)."""
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)


_Callback = Callable[..., Any]
