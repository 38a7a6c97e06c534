"""One reader of "what could the judge have written here": the distribution over valid labels.

Every judge reads a score or label distribution at a place in its verdict — a rubric criterion's
score, a listwise candidate's score, a preference's winner — in one of two ways:

- **in band**, from the verdict's own token logprobs at that place (:func:`in_band`);
- **exactly**, by prefilling the verdict up to that place and asking for one constrained token
  (:func:`exact`, where the client has ``Capabilities.prefill_choice``; see :mod:`._exact`).

:class:`Labels` says what may be written there. Numbers can spread over two tokens ("1" then "0"
for 10), which the numeric readers resolve; labels (``A``/``B``/``tie``, letters, true/false) are
one token each and may have aliases. A place that cannot be read gives ``None``: callers fall back
to the written value and count it — never a silent guess.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from .._types import ChatResponse, LazyLogprobs, Message, Usage
from ..parsing import distribution_at, score_distribution, token_index_at

if TYPE_CHECKING:
    from ._criteria import Scale
    from ._exact import ExactReader

__all__ = [
    "Labels",
    "exact",
    "exact_each",
    "expectation",
    "gather_all",
    "in_band",
    "labels_top_logprobs",
    "tokens_before",
]

T = TypeVar("T")
V = TypeVar("V", bound=Hashable)
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Labels(Generic[V]):
    """What may be written at a place: label text (aliases allowed) → value, and the choices an
    exact read may generate. ``numeric``: numbers, possibly spread over two tokens."""

    valid: Mapping[str, V]
    choices: tuple[str, ...]
    numeric: bool = False

    @staticmethod
    def scores(values: Iterable[int]) -> Labels[float]:
        """Integer scores written as numbers."""
        valid = {str(v): float(v) for v in values}
        return Labels(valid, tuple(valid), numeric=True)

    @staticmethod
    def of(valid: Mapping[str, V], choices: Sequence[str] | None = None) -> Labels[V]:
        """One-token labels (``choices``: the canonical ones, default every key of ``valid``)."""
        return Labels(dict(valid), tuple(choices if choices is not None else valid))


def in_band(response: ChatResponse, offset: int | None, labels: Labels[V]) -> dict[V, float] | None:
    """The distribution at character ``offset`` of the answer, from its own logprobs."""
    if offset is None or not response.logprobs:
        return None
    index = token_index_at(response.logprobs, response.text, offset)
    if index is None:
        return None
    if labels.numeric:
        numeric = cast("Mapping[str, float]", labels.valid)
        return cast("dict[V, float] | None", score_distribution(response.logprobs, index, numeric))
    return distribution_at(response.logprobs, index, labels.valid)


async def exact(
    reader: ExactReader,
    messages: Sequence[Message],
    answer: ChatResponse,
    offset: int | None,
    labels: Labels[V],
    *,
    what: str,
) -> tuple[dict[V, float] | None, Usage]:
    """The distribution after ``answer.text[:offset]``, read by prefill + constrained choice
    (continuing the server's own tokens where it gave them, see :func:`tokens_before`)."""
    if offset is None:
        reader.skip(f"no value for {what} in the verdict text")
        return None, Usage()
    prefix = answer.text[:offset]
    tokens = tokens_before(answer, offset)
    if labels.numeric:
        numeric = cast("Mapping[str, float]", labels.valid)
        dist, usage = await reader.read_scores(messages, prefix, numeric, tokens)
        return cast("dict[V, float] | None", dist), usage
    return await reader.read_labels(messages, prefix, labels.valid, labels.choices, tokens)


def tokens_before(answer: ChatResponse, offset: int) -> tuple[int, ...] | None:
    """The server's own token ids of ``answer`` before the token that wrote the value at
    ``offset``, or None when it gave no ids or its tokens do not line up with the text.

    A read continuing these ids is the exact state in which the judge wrote its value, and a
    server that keeps them cached (llama.cpp's slot) evaluates nothing again. Between the last of
    them and ``offset`` only spaces or a quote may lie (a token " 4" carries its space); text the
    server generated before the answer's text (a code fence it stripped) stays, as generated.
    """
    logprobs = answer.logprobs
    if not isinstance(logprobs, LazyLogprobs):
        return None
    index = token_index_at(logprobs, answer.text, offset)
    if index is None:
        return None
    texts = logprobs.texts()
    joined = "".join(texts)
    base = 0 if joined == answer.text else joined.rfind(answer.text)  # last: after any thinking
    start = sum(map(len, texts[:index]))
    if base < 0 or joined[start : base + offset].strip(" \t\n\"'"):
        return None
    return logprobs.ids(index)


async def exact_each(
    reader: ExactReader,
    messages: Sequence[Message],
    answer: ChatResponse,
    offsets: Mapping[K, int | None],
    labels: Labels[V],
    what: Callable[[K], str],
) -> tuple[dict[K, dict[V, float] | None], Usage]:
    """:func:`exact` at several places of one answer; the reads share its prefix and go together.

    Together, not one after another: in a batch, a queued verdict took the slot between two reads
    of llama.cpp's server and more prompt was evaluated again (``benchmarks/slot_cache.py``,
    before slots were pinned per conversation). The read with the longest prefix goes first: one
    server slot answering them in turn then holds every later read's prefix already (a shorter
    read sent first would cut the slot's cache back to its own prefix)."""
    keys = sorted(offsets, key=lambda k: _or_first(offsets[k]), reverse=True)
    reads = await gather_all(
        [exact(reader, messages, answer, offsets[k], labels, what=what(k)) for k in keys]
    )
    total = Usage()
    for _, usage in reads:
        total = total + usage
    return {k: dist for k, (dist, _) in zip(keys, reads, strict=True)}, total


async def gather_all(awaitables: Sequence[Awaitable[T]]) -> list[T]:
    """All results, or the first failure with every other request cancelled and awaited."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _or_first(offset: int | None) -> int:
    return -1 if offset is None else offset


def expectation(dist: Mapping[Any, float] | None) -> float | None:
    """The expected value of a numeric distribution (None for none)."""
    if not dist:
        return None
    return float(sum(value * p for value, p in dist.items()))


def labels_top_logprobs(scale: Scale) -> int:
    """Alternatives to ask for at each generated token when none are given: twice the scale's
    labels, at least 10, at most 20 (the APIs' cap). The reply shrinks with it (top-20 is ~37 KB
    for a three-criterion verdict), and a score position's mass sits on its labels: on the local
    judge, top-10 gave the same expected scores as top-20 for a 1-5 scale (32 of 32), top-7 did
    not (one off by 0.14)."""
    labels = 2 if scale.binary else scale.high - scale.low + 1
    return max(10, min(20, 2 * labels))
