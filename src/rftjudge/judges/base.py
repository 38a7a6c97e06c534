"""What every judge shares: asking for a validated verdict, the reward boundary, sync twins.

One async core per judge (``ajudge``); everything else is derived here once:

- ``areward`` / ``areward_batch`` turn judgments into rewards and apply ``on_error`` — the single
  place where a failure becomes ``None`` (abstain), a neutral number, or an exception;
- ``judge`` / ``reward`` / ``reward_batch`` run the async core from synchronous code, also when an
  event loop is already running in the calling thread (see :mod:`rftjudge._sync`);
- ``as_reward_func`` adapts the judge to TRL's reward-function signature.

:meth:`BaseJudge._ask` is the request → verdict step: send, detect refusals and truncation, parse
the verdict, and re-ask (bounded) with the validation error when the answer does not validate.
"""

from __future__ import annotations

import asyncio
import logging
import math
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel

from .._errors import (
    ConfigurationError,
    JudgeError,
    ParseError,
    RefusalError,
    TruncatedError,
)
from .._sync import run_sync
from .._types import ChatRequest, ChatResponse, Message, Usage
from ..clients.base import Client
from ..parsing import parse_verdict

if TYPE_CHECKING:
    from ..rewards import RewardFunc

__all__ = ["BaseJudge", "JudgeStats", "OnError", "RewardBase"]

logger = logging.getLogger("rftjudge")

OnError = Literal["abstain", "raise"] | float
R = TypeVar("R")
V = TypeVar("V", bound=BaseModel)


@dataclass
class JudgeStats:
    """Running totals of one judge: how many judgments, how many failed and why, tokens spent."""

    judgments: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    reasks: int = 0
    expected_fallbacks: int = 0
    skipped_judge_calls: int = 0
    usage: Usage = field(default_factory=Usage)

    @property
    def failure_count(self) -> int:
        return sum(self.failures.values())


@dataclass(frozen=True)
class Asked(Generic[V]):
    """A validated verdict with the response it came from and the usage of every request it took."""

    verdict: V
    response: ChatResponse
    usage: Usage
    reasks: int


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


class RewardBase(ABC, Generic[R]):
    """The reward boundary shared by judges and composed rewards.

    Subclasses implement :meth:`ajudge` (one result, or a :class:`~rftjudge.JudgeError`) and
    :meth:`score_of`; everything else — ``on_error``, batches with deduplication, sync twins, the
    TRL adapter, failure counting — is defined here once.
    """

    default_name: str = "judge"

    def __init__(self, *, on_error: OnError = "abstain", name: str | None = None) -> None:
        self.on_error: OnError = validate_on_error(on_error)
        self.name = name or self.default_name
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
    ) -> list[R | BaseException]:
        """Outcomes for every item, in input order; identical items are judged once."""
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
        outcomes = await asyncio.gather(*(self.ajudge_safe(*item) for item in work))
        return [outcomes[i] for i in slots]

    async def areward_batch(
        self,
        prompts: Sequence[Any],
        responses: Sequence[Any],
        references: Sequence[Any] | None = None,
    ) -> list[float | None]:
        """Rewards for every item, concurrently (bounded by the client), in input order."""
        outcomes = await self.ajudge_batch(prompts, responses, references)
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
    ) -> list[float | None]:
        """Synchronous :meth:`areward_batch`."""
        return run_sync(self.areward_batch(prompts, responses, references))

    # -- trainer adapters ------------------------------------------------------------------------

    def as_reward_func(
        self, name: str | None = None, reference_column: str = "reference"
    ) -> RewardFunc:
        """An ``async def`` reward function with TRL's signature (see :mod:`rftjudge.rewards`)."""
        from ..rewards import trl_reward_func

        return trl_reward_func(self, name=name, reference_column=reference_column)

    def metrics_of(self, outcomes: Sequence[R | BaseException]) -> dict[str, float]:
        """Per-batch metrics to log (subclasses add per-criterion means)."""
        failed = sum(isinstance(o, BaseException) for o in outcomes)
        return {"failure_rate": failed / len(outcomes) if outcomes else 0.0}

    def rationale_of(self, outcome: R | BaseException) -> str:
        if isinstance(outcome, BaseException):
            kind = outcome.kind if isinstance(outcome, JudgeError) else "internal"
            return f"[judge failed: {kind}]"
        return str(getattr(outcome, "rationale", ""))


class BaseJudge(RewardBase[R]):
    """A judge backed by a model client: builds requests and turns answers into validated verdicts."""

    def __init__(
        self,
        client: Client,
        *,
        on_error: OnError = "abstain",
        max_reasks: int = 1,
        temperature: float | None = 0.0,
        max_tokens: int | None = 1024,
        seed: int | None = None,
        name: str | None = None,
    ) -> None:
        if not callable(getattr(client, "complete", None)):
            raise ConfigurationError(
                f"client must provide `async complete(ChatRequest)`; got {type(client).__name__}"
            )
        if not isinstance(max_reasks, int) or max_reasks < 0:
            raise ConfigurationError(f"max_reasks must be an int >= 0; got {max_reasks!r}")
        super().__init__(on_error=on_error, name=name)
        self.client = client
        self.max_reasks = max_reasks
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed

    # -- request -> validated verdict ------------------------------------------------------------

    def make_request(
        self,
        messages: tuple[Message, ...],
        schema: dict[str, Any],
        *,
        logprobs: bool = False,
        top_logprobs: int = 0,
    ) -> ChatRequest:
        return ChatRequest(
            messages=messages,
            output_schema=schema,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            seed=self.seed,
            logprobs=logprobs,
            top_logprobs=top_logprobs,
        )

    async def _ask(self, request: ChatRequest, model: type[V]) -> Asked[V]:
        """Send ``request``; re-ask up to ``max_reasks`` times while the verdict does not validate."""
        usage = Usage()
        messages = request.messages
        for attempt in range(self.max_reasks + 1):
            current = request if attempt == 0 else _with_messages(request, messages)
            response = await self.client.complete(current)
            usage = usage + response.usage
            if response.refusal or response.finish_reason in ("refusal", "content_filter"):
                self.stats.usage = self.stats.usage + usage
                raise RefusalError(
                    f"the judge refused: {response.refusal or response.finish_reason}",
                    raw=response.text,
                )
            try:
                verdict = parse_verdict(response.text, model)
            except ParseError as exc:
                if attempt == self.max_reasks:
                    self.stats.usage = self.stats.usage + usage
                    if response.finish_reason == "length":
                        raise TruncatedError(
                            "the judge hit max_tokens before completing its verdict "
                            f"(max_tokens={request.max_tokens}); raise max_tokens",
                            raw=response.text,
                        ) from exc
                    raise ParseError(
                        f"{exc} (after {attempt + 1} request(s))", raw=response.text
                    ) from None
                self.stats.reasks += 1
                messages = (
                    *messages,
                    Message("assistant", response.text),
                    Message(
                        "user",
                        f"Your answer could not be used: {exc}. Reply again with only the "
                        "corrected JSON object.",
                    ),
                )
                continue
            self.stats.usage = self.stats.usage + usage
            return Asked(verdict=verdict, response=response, usage=usage, reasks=attempt)
        raise AssertionError("unreachable")  # pragma: no cover


def _with_messages(request: ChatRequest, messages: tuple[Message, ...]) -> ChatRequest:
    from dataclasses import replace

    return replace(request, messages=messages)


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


_Callback = Callable[..., Any]
