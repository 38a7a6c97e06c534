"""Probability-weighted (G-Eval style) criterion scores from a judge's token logprobs.

A sampled integer on a 1–5 scale ties a lot: GRPO then sees groups whose completions all got the
same reward and learns nothing from them. The expected value over the score tokens' probabilities
keeps the judge's uncertainty and rarely ties (measured on a 135M judge here: 67 % of groups tied
with sampled integers, none with expected scores — see benchmarks/).

For each criterion: find where its value was written in the verdict JSON, read the alternatives at
that token, keep the valid score tokens (servers report pre-grammar logprobs, so forbidden tokens
appear too), renormalise, take the expectation. When that is impossible the caller falls back to the
sampled value and counts it — a fallback is never silent.

Where the client can prefill and constrain (``Capabilities.prefill_choice``), :func:`exact_scores`
reads each criterion's distribution exactly instead (see :mod:`._exact`); the in-band reading above
remains the fallback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._types import ChatResponse, Message, Usage
from ..parsing import json_value_offset, score_distribution, token_index_at
from ._criteria import Criterion, Scale

if TYPE_CHECKING:
    from ._exact import ExactReader

__all__ = ["exact_scores", "expected_scores"]


def expected_scores(
    response: ChatResponse, criteria: Sequence[Criterion], scale: Scale
) -> dict[str, float | None]:
    """Expected raw score per criterion (None where the logprobs do not allow it)."""
    result: dict[str, float | None] = {c.name: None for c in criteria}
    if not response.logprobs:
        return result
    if scale.binary:
        valid = {"true": 1.0, "false": 0.0}
    else:
        valid = {str(v): float(v) for v in scale.values}
    for criterion in criteria:
        offset = json_value_offset(response.text, criterion.name)
        if offset is None:
            continue
        index = token_index_at(response.logprobs, response.text, offset)
        if index is None:
            continue
        dist = score_distribution(response.logprobs, index, valid)
        if dist:
            result[criterion.name] = sum(value * p for value, p in dist.items())
    return result


async def exact_scores(
    reader: ExactReader,
    messages: Sequence[Message],
    text: str,
    criteria: Sequence[Criterion],
    scale: Scale,
) -> tuple[dict[str, float | None], Usage]:
    """Expected raw score per criterion from exact distributions (see :mod:`._exact`).

    Each criterion's read continues the verdict ``text`` up to where that criterion's value is
    written; the reads share the prefix and are sent together. None where a read gave nothing
    (already counted by the reader as a fallback).
    """

    async def one(criterion: Criterion) -> tuple[float | None, Usage]:
        offset = json_value_offset(text, criterion.name)
        if offset is None:
            reader.skip(f"no value for {criterion.name!r} in the verdict text")
            return None, Usage()
        prefix = text[:offset]
        if scale.binary:
            labels, usage = await reader.read_labels(
                messages, prefix, {"true": 1.0, "false": 0.0}, ["true", "false"]
            )
            dist = labels
        else:
            dist, usage = await reader.read_scores(
                messages, prefix, {str(v): float(v) for v in scale.values}
            )
        if not dist:
            return None, usage
        return sum(value * p for value, p in dist.items()), usage

    reads = await asyncio.gather(*(one(c) for c in criteria))
    total = Usage()
    for _, usage in reads:
        total = total + usage
    return {c.name: value for c, (value, _) in zip(criteria, reads, strict=True)}, total
