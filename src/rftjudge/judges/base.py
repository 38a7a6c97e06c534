"""Model-backed judges: a request to a client, a validated verdict back, bounded re-asks.

:class:`BaseJudge` adds to the reward boundary (:mod:`._boundary`: ``on_error``, batches, deadlines,
sync twins, the TRL adapter) what every judge with a model client needs:

- two input rules, applied by each judge's ``ajudge``: ``guard`` (a deterministic non-answer
  check, :mod:`rftjudge.guards`, on by default) and ``max_input_chars`` (head + tail truncation with
  a visible marker, :func:`truncate_middle`);
- :meth:`BaseJudge._ask`, the request → verdict step: send, detect refusals and truncation, parse
  the verdict, and re-ask (bounded) with the validation error when the answer does not validate.

``RewardBase``, ``JudgeStats`` and the validators are re-exported here, where they used to live.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from .._errors import (
    ConfigurationError,
    ParseError,
    RefusalError,
    TruncatedError,
)
from .._text import as_text, reference_text
from .._types import ChatRequest, ChatResponse, Message, Usage
from ..clients._protocol import Client
from ..guards import Guard, resolve_guard
from ..parsing import parse_verdict
from ..templates import truncate_middle
from ._boundary import JudgeStats, RewardBase, validate_deadline, validate_on_error
from ._options import OnError, check_sampling

if TYPE_CHECKING:
    pass

__all__ = [
    "DEFAULT_MAX_INPUT_CHARS",
    "BaseJudge",
    "JudgeStats",
    "OnError",
    "RewardBase",
    "validate_deadline",
    "validate_on_error",
]

logger = logging.getLogger("rftjudge")

R = TypeVar("R")
V = TypeVar("V", bound=BaseModel)

DEFAULT_MAX_INPUT_CHARS = 100_000
"""Per input (prompt, response, reference), about 25k tokens: no ordinary completion is cut, while a
runaway one cannot blow a 128k-token judge context. Smaller judges want a smaller limit."""


@dataclass(frozen=True)
class Asked(Generic[V]):
    """A validated verdict with the response it came from and the usage of every request it took."""

    verdict: V
    response: ChatResponse
    usage: Usage
    reasks: int


class BaseJudge(RewardBase[R]):
    """A judge backed by a model client: builds requests and turns answers into validated verdicts.

    ``guard`` (default ``True``: a :class:`~rftjudge.NonAnswerGuard`; ``False``: off; or your own
    :class:`~rftjudge.guards.Guard`) scores content-free "master key" responses as failing every
    criterion without a judge call — see :meth:`non_answer`. ``max_input_chars`` (default
    :data:`DEFAULT_MAX_INPUT_CHARS`, ``None``: no limit) cuts each of prompt, response and reference
    beyond it to head + tail with a visible ``[... N characters omitted ...]`` marker — see
    :meth:`prepare`. ``batch_deadline``: see :meth:`~RewardBase.ajudge_batch`.
    """

    def __init__(
        self,
        client: Client,
        *,
        on_error: OnError = "abstain",
        max_reasks: int = 1,
        temperature: float | None = 0.0,
        max_tokens: int | None = 1024,
        seed: int | None = None,
        top_p: float | None = None,
        stop: str | Sequence[str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        name: str | None = None,
        guard: Guard | bool | None = True,
        max_input_chars: int | None = DEFAULT_MAX_INPUT_CHARS,
        batch_deadline: float | None = None,
    ) -> None:
        if not callable(getattr(client, "complete", None)):
            raise ConfigurationError(
                f"client must provide `async complete(ChatRequest)`; got {type(client).__name__}"
            )
        if not isinstance(max_reasks, int) or max_reasks < 0:
            raise ConfigurationError(f"max_reasks must be an int >= 0; got {max_reasks!r}")
        if max_input_chars is not None and (
            isinstance(max_input_chars, bool)
            or not isinstance(max_input_chars, int)
            or max_input_chars < 1
        ):
            raise ConfigurationError(
                f"max_input_chars must be a positive int or None; got {max_input_chars!r}"
            )
        super().__init__(on_error=on_error, name=name, batch_deadline=batch_deadline)
        self.client = client
        self.max_reasks = max_reasks
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.top_p, self.stop, self.extra_body = check_sampling(top_p, stop, extra_body)
        self.guard: Guard | None = resolve_guard(guard)
        self.max_input_chars = max_input_chars

    # -- input rules -----------------------------------------------------------------------------

    def non_answer(self, response: Any) -> str | None:
        """The guard's reason when ``response`` is no answer at all (counted), else None.

        Judges call this first in ``ajudge`` and, on a reason, return a failing result without
        asking the model: a content-free response must not get a chance to fool the judge.
        """
        if self.guard is None:
            return None
        text = response if isinstance(response, str) else as_text(response, what="response")
        reason = self.guard.reason(text)
        if reason is not None:
            self.stats.guarded[reason] += 1
            logger.debug(
                "rftjudge: %s: guard %s flagged a response (%s)", self.name, self.guard.name, reason
            )
        return reason

    def prepare(self, prompt: Any, response: Any, reference: Any) -> tuple[str, str, str | None]:
        """The inputs as the judge sees them: TRL shapes flattened to text, each cut by
        :meth:`clip`."""
        ref = reference_text(reference)
        return (
            self.clip(as_text(prompt, what="prompt")),
            self.clip(as_text(response, what="response")),
            None if ref is None else self.clip(ref),
        )

    def clip(self, text: str) -> str:
        """``text`` cut to ``max_input_chars`` by :func:`~rftjudge.templates.truncate_middle`
        (head + tail, with a visible marker; counted in ``stats.truncated``)."""
        limit = self.max_input_chars
        if limit is None or len(text) <= limit:
            return text
        self.stats.truncated += 1
        return truncate_middle(text, limit)

    def metrics_of(self, outcomes: Sequence[R | BaseException]) -> dict[str, float]:
        """Adds ``guard_rate``: the share of the batch the guard failed without a judge call."""
        metrics = super().metrics_of(outcomes)
        if self.guard is not None and outcomes:
            guarded = sum(getattr(o, "guarded", None) is not None for o in outcomes)
            metrics["guard_rate"] = guarded / len(outcomes)
        return metrics

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
            top_p=self.top_p,
            stop=self.stop,
            extra_body=self.extra_body,
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

    return replace(request, messages=messages, follow_up=True)  # a re-ask extends the verdict

