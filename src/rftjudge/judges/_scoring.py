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

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._types import ChatResponse, Message, Usage
from ..parsing import json_value_offset
from ._criteria import Criterion, Scale
from ._distribution import Labels, exact_each, expectation, in_band

if TYPE_CHECKING:
    from ._exact import ExactReader

__all__ = ["exact_scores", "expected_scores", "scale_labels"]

_BINARY = Labels.of({"true": 1.0, "false": 0.0})


def scale_labels(scale: Scale) -> Labels[float]:
    """What may be written as a score on ``scale``: true/false, or the integers."""
    return _BINARY if scale.binary else Labels.scores(scale.values)


def expected_scores(
    response: ChatResponse, criteria: Sequence[Criterion], scale: Scale
) -> dict[str, float | None]:
    """Expected raw score per criterion (None where the logprobs do not allow it)."""
    if not response.logprobs:
        return {c.name: None for c in criteria}
    labels = scale_labels(scale)
    return {
        c.name: expectation(in_band(response, json_value_offset(response.text, c.name), labels))
        for c in criteria
    }


async def exact_scores(
    reader: ExactReader,
    messages: Sequence[Message],
    answer: ChatResponse,
    criteria: Sequence[Criterion],
    scale: Scale,
) -> tuple[dict[str, float | None], Usage]:
    """Expected raw score per criterion from exact distributions (see :mod:`._exact`).

    Each criterion's read continues the verdict ``answer`` up to where that criterion's value is
    written; the reads share the prefix and are sent together. None where a read gave nothing
    (already counted by the reader as a fallback).
    """
    offsets = {c.name: json_value_offset(answer.text, c.name) for c in criteria}
    dists, usage = await exact_each(
        reader, messages, answer, offsets, scale_labels(scale), lambda name: repr(name)
    )
    return {name: expectation(dist) for name, dist in dists.items()}, usage
