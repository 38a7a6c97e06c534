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
from dataclasses import replace as _replace
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from .._affinity import in_conversation
from .._content import content_text
from .._errors import (
    ConfigurationError,
    JudgeError,
    ParseError,
    RefusalError,
    TruncatedError,
)
from .._text import as_text, reference_text
from .._types import ChatRequest, ChatResponse, Message, Usage
from ..clients._protocol import Client
from ..guards import Guard, resolve_guard
from ..parsing import read_verdict
from ..templates import truncate_middle
from ..templates._trajectory import DEFAULT_TOOL_BUDGET, View
from ._boundary import JudgeStats, RewardBase, validate_deadline, validate_on_error
from ._inputs import Render, build_messages, carries_image, check_view
from ._options import OnError, check_sampling

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

_MAX_ECHO_CHARS = 8_000
"""How much of an unusable answer a re-ask sends back to the judge (head and tail)."""

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
    end: int = -1
    """Where the verdict object ends in ``response.text`` (-1: unknown)."""
    messages: tuple[Message, ...] = ()
    """The messages the verdict answered (after any re-asks): what an exact read continues."""

    @property
    def verdict_text(self) -> str:
        """The answer up to the end of the verdict: where its values' logprobs are read, so that
        nothing the judge wrote after its verdict (a quote) can be read as one of them."""
        return self.response.text if self.end < 0 else self.response.text[: self.end]

    @property
    def verdict_response(self) -> ChatResponse:
        """``response`` with its text cut after the verdict (see :attr:`verdict_text`)."""
        if self.end < 0 or self.end == len(self.response.text):
            return self.response
        return _replace(self.response, text=self.response.text[: self.end])


class BaseJudge(RewardBase[R]):
    """A judge backed by a model client: builds requests and turns answers into validated verdicts.

    ``guard`` (default ``True``: a :class:`~rftjudge.NonAnswerGuard`; ``False``: off; or your own
    :class:`~rftjudge.guards.Guard`) scores content-free "master key" responses as failing every
    criterion without a judge call — see :meth:`non_answer`. ``max_input_chars`` (default
    :data:`DEFAULT_MAX_INPUT_CHARS`, ``None``: no limit) cuts each of prompt, response and reference
    beyond it to head + tail with a visible ``[... N characters omitted ...]`` marker — see
    :meth:`prepare`. ``batch_deadline``: see :meth:`~RewardBase.ajudge_batch`.

    ``view`` (``None``: the assistant text, as before; ``"final"``, ``"full_trace"``, ``"tools"``)
    renders a response given as a message list — an agent trajectory with tool calls — see
    :mod:`rftjudge.templates._trajectory`; ``tool_budget`` caps the characters of tool output per
    trajectory (head + tail kept); ``max_context_tokens`` makes an over-long request clip tool
    outputs further, then abstain with kind ``"context"`` (:mod:`rftjudge.judges._inputs`).
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
        view: View | None = None,
        tool_budget: int | None = DEFAULT_TOOL_BUDGET,
        max_context_tokens: int | None = None,
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
        for label, value in (
            ("tool_budget", tool_budget),
            ("max_context_tokens", max_context_tokens),
        ):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ConfigurationError(f"{label} must be an int >= 0 or None; got {value!r}")
        super().__init__(on_error=on_error, name=name, batch_deadline=batch_deadline)
        self.client = client
        self.max_reasks = max_reasks
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.top_p, self.stop, self.extra_body = check_sampling(top_p, stop, extra_body)
        self.guard: Guard | None = resolve_guard(guard)
        self.max_input_chars = max_input_chars
        self.view: View | None = check_view(view)
        self.tool_budget = tool_budget
        self.max_context_tokens = max_context_tokens

    # -- input rules -----------------------------------------------------------------------------

    def non_answer(self, response: Any) -> str | None:
        """The guard's reason when ``response`` is no answer at all (counted), else None.

        Judges call this first in ``ajudge`` and, on a reason, return a failing result without
        asking the model: a content-free response must not get a chance to fool the judge. A
        response longer than ``max_input_chars`` is guarded on the head and tail the judge would
        see, so the guard's work is bounded by ``max_input_chars``.
        """
        if self.guard is None or carries_image(response):
            return None  # an image is an answer the text guard cannot read
        text = response if isinstance(response, str) else as_text(response, what="response")
        limit = self.max_input_chars
        if limit is not None and len(text) > limit:
            # The guard sees what the judge would see (head and tail), never more: nothing
            # untrusted gets to run long on the event loop. Without the "omitted" marker, whose
            # words would make any non-answer look like content.
            head = (limit + 1) // 2
            text = text[:head] + "\n" + text[len(text) - (limit - head) :]
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

    def messages_for(
        self, prompt: Any, response: Any, reference: Any, render: Render
    ) -> tuple[Message, ...]:
        """The request messages for one item: trajectories rendered under ``view``, images attached
        as parts, the ``max_context_tokens`` rule applied (see :mod:`rftjudge.judges._inputs`)."""
        return build_messages(self, prompt, response, reference, render)

    def clip(self, text: str) -> str:
        """``text`` cut to ``max_input_chars`` by :func:`~rftjudge.templates.truncate_middle`
        (head + tail, with a visible marker; counted in ``stats.truncated``)."""
        limit = self.max_input_chars
        if limit is None or len(text) <= limit:
            return text
        self.stats.truncated += 1
        return truncate_middle(text, limit)

    def metrics_of(self, outcomes: Sequence[R | float | BaseException]) -> dict[str, float]:
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

    @in_conversation
    async def _ask(self, request: ChatRequest, model: type[V]) -> Asked[V]:
        """Send ``request``; re-ask up to ``max_reasks`` times while there is no valid verdict.

        A verdict comes only from the judge's own final answer (:func:`~rftjudge.parsing.
        read_verdict`): an answer cut at ``max_tokens`` is never parsed — whatever JSON it holds
        may be a draft or a quote the judge had not finished weighing — and is re-asked, then
        fails as ``truncated``; a final JSON object that does not validate, or that is copied from
        the inputs, is re-asked, then fails as ``parse``. An earlier object is never used instead.
        """
        usage = Usage()
        messages = request.messages
        quoted = [content_text(m.content) for m in request.messages if m.role == "user"]
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
            error: JudgeError
            if response.finish_reason == "length":
                error = TruncatedError(
                    "the judge hit max_tokens before completing its verdict "
                    f"(max_tokens={request.max_tokens}); raise max_tokens",
                    raw=response.text,
                )
                problem = "it was cut off at the token limit"
            else:
                try:
                    verdict, end = read_verdict(response.text, model, quoted=quoted)
                except ParseError as exc:
                    error = ParseError(f"{exc} (after {attempt + 1} request(s))", raw=exc.raw)
                    problem = str(exc)
                else:
                    self.stats.usage = self.stats.usage + usage
                    return Asked(
                        verdict=verdict,
                        response=response,
                        usage=usage,
                        reasks=attempt,
                        end=end,
                        messages=current.messages,
                    )
            if attempt == self.max_reasks:
                self.stats.usage = self.stats.usage + usage
                raise error
            self.stats.reasks += 1
            messages = (
                *messages,
                # What the judge said, clipped: a runaway answer is not sent back in full.
                Message("assistant", truncate_middle(response.text, _MAX_ECHO_CHARS)),
                Message(
                    "user",
                    f"Your answer could not be used: {problem}. Reply again with only the "
                    "corrected JSON object.",
                ),
            )
        raise AssertionError("unreachable")  # pragma: no cover


def _with_messages(request: ChatRequest, messages: tuple[Message, ...]) -> ChatRequest:
    from dataclasses import replace

    return replace(request, messages=messages, follow_up=True)  # a re-ask extends the verdict
