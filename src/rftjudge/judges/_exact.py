"""Exact score and label distributions, read where the client can prefill and constrain.

After the judge has written its verdict (rationale first, then the score), :class:`ExactReader`
sends the verdict's own text up to the score back as a prefilled assistant turn, with generation
constrained to the valid labels (a *choice request*, see :mod:`rftjudge.clients._prefill`). The
first generated token's top logprobs are then the judge's distribution over the valid labels at
exactly that place, conditioned on its own reasoning — no search for the score token in the text, no
forbidden tokens in the list. The reads of one verdict share its whole prefix and are sent together,
ahead of queued first requests, to the replica (and on llama.cpp the slot) that wrote the verdict
(:mod:`rftjudge._affinity`), so a server with prefix caching computes that prefix once; each read
generates one or two tokens.

A read that cannot give a distribution (the request failed, the valid labels are not among the
top logprobs) returns None: the caller falls back to the in-band logprobs, then to the sampled
value. Every such fallback is counted (``fallbacks``), reported in the judge's metrics and logged —
a warning the first time, debug after that — never silent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .._errors import ConfigurationError
from .._types import ChatRequest, Message, TokenLogprob, Usage
from ..clients._prefill import CHOICE_SCHEMA_NAME, choice_schema
from ..parsing import distribution_at, score_distribution

if TYPE_CHECKING:
    from .base import BaseJudge

__all__ = ["ExactReader", "letter_labels"]

logger = logging.getLogger("rftjudge")

V = TypeVar("V")

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def letter_labels(values: Sequence[int]) -> dict[str, int]:
    """Single-token labels for a wide integer scale: A = lowest, B = next, ... (at most 26).

    "10" is two tokens in many tokenizers, so its first token is also the first token of "1": the
    distribution at one position cannot tell them apart. One letter per value always can.
    """
    if len(values) > len(_LETTERS):
        raise ConfigurationError(f"a letter scale has at most 26 values; got {len(values)}")
    return {_LETTERS[i]: v for i, v in enumerate(values)}


class ExactReader:
    """Reads label distributions with prefill + constrained choice for one judge.

    ``enabled=None`` follows the client's ``capabilities.prefill_choice``.
    """

    def __init__(self, judge: BaseJudge[Any], enabled: bool | None = None) -> None:
        capabilities = getattr(judge.client, "capabilities", None)
        available = bool(getattr(capabilities, "prefill_choice", False))
        if enabled and not available:
            raise ConfigurationError(
                "exact=True needs a client whose capabilities include prefill_choice "
                '(OpenAIClient(server="vllm" | "sglang" | "llamacpp"))'
            )
        self.judge = judge
        self.enabled = available if enabled is None else bool(enabled)
        self.top_logprobs = max(
            1, min(20, int(getattr(capabilities, "max_top_logprobs", 20) or 20))
        )
        self.reads = 0
        self.fallbacks = 0

    async def read_labels(
        self,
        messages: Sequence[Message],
        prefix: str,
        valid: Mapping[str, V],
        choices: Sequence[str],
        tokens: Sequence[int] | None = None,
    ) -> tuple[dict[V, float] | None, Usage]:
        """The distribution over the label values after ``prefix`` (None when unavailable,
        counted) and the usage of the read. ``valid`` maps label text (aliases allowed) to value;
        generation is constrained to ``choices``. ``tokens``: the server's own ids of the prefix
        (see :attr:`~rftjudge.ChatRequest.prefill_tokens`)."""
        found, usage = await self._ask(messages, prefix, choices, max_tokens=1, tokens=tokens)
        if found is None:
            return None, usage
        logprobs, index = found
        dist = distribution_at(logprobs, index, valid)
        if not dist:
            self._miss("no valid label among the top logprobs")
        return dist or None, usage

    async def read_scores(
        self,
        messages: Sequence[Message],
        prefix: str,
        valid: Mapping[str, float],
        tokens: Sequence[int] | None = None,
    ) -> tuple[dict[float, float] | None, Usage]:
        """Like :meth:`read_labels` for numeric labels: one spread over two tokens ("1" then "0"
        for 10) is resolved with the next position."""
        width = max(len(label) for label in valid)
        found, usage = await self._ask(
            messages, prefix, list(valid), max_tokens=max(1, width), tokens=tokens
        )
        if found is None:
            return None, usage
        logprobs, index = found
        dist = score_distribution(logprobs, index, valid)
        if not dist:
            self._miss("no valid score among the top logprobs")
        return dist or None, usage

    async def _ask(
        self,
        messages: Sequence[Message],
        prefix: str,
        choices: Sequence[str],
        *,
        max_tokens: int,
        tokens: Sequence[int] | None,
    ) -> tuple[tuple[Sequence[TokenLogprob], int] | None, Usage]:
        self.reads += 1
        request = ChatRequest(
            messages=(*messages, Message("assistant", prefix)),
            output_schema=choice_schema(choices),
            schema_name=CHOICE_SCHEMA_NAME,
            temperature=0.0,
            max_tokens=max_tokens,
            seed=self.judge.seed,
            extra_body=self.judge.extra_body,  # server extras (a slot, a penalty) apply to reads
            follow_up=True,  # continues the verdict just written: before the server forgets it
            logprobs=True,
            top_logprobs=max(self.top_logprobs, min(20, len(choices))),
            prefill_tokens=tuple(tokens) if tokens else None,
        )
        try:
            response = await self.judge.client.complete(request)
        except (asyncio.CancelledError, ConfigurationError):
            raise
        except Exception as exc:  # a failed read falls back; it never fails the verdict
            self._miss(f"the read failed ({type(exc).__name__}: {exc})")
            return None, Usage()
        self.judge.stats.usage = self.judge.stats.usage + response.usage
        logprobs = response.logprobs or ()
        index = next((i for i, t in enumerate(logprobs) if t.token.strip(" \t\n\"'")), None)
        if index is None:
            self._miss("the answer carried no logprobs")
            return None, response.usage
        return (logprobs, index), response.usage

    def skip(self, why: str) -> None:
        """Count a read that could not even be asked (no place for it in the verdict)."""
        self.reads += 1
        self._miss(why)

    def _miss(self, why: str) -> None:
        self.fallbacks += 1
        log = logger.warning if self.fallbacks == 1 else logger.debug
        log(
            "rftjudge: %s: exact distribution unavailable (%s); falling back "
            "(%d of %d reads so far)",
            self.judge.name,
            why,
            self.fallbacks,
            self.reads,
        )
