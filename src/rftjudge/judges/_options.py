"""The options every model-backed judge shares, declared once.

Rubric, preference and listwise judges each take their own method's arguments (``scale``,
``swap``, ``permutations`` ...) and, as keywords, the same :class:`JudgeOptions`, which they pass on
to :class:`~rftjudge.judges.base.BaseJudge` untouched. The defaults live in ``BaseJudge.__init__``
alone; the judge config schema (:mod:`rftjudge.app.config`) reads the judges' signatures instead of
keeping its own lists, and ``tests/judges/test_options.py`` checks that judges, config and docs agree.

Judges take ``(client, criteria=None, *, ...)``. Earlier releases took a few more positional
arguments, each judge different ones; :func:`rftjudge._deprecation.legacy_positionals` keeps those calls working for one
release, with a ``DeprecationWarning`` naming the keywords to use.
"""

from __future__ import annotations

import warnings
from typing import Literal, TypedDict

from ..guards import Guard

__all__ = ["UNSET", "JudgeOptions", "OnError", "Scoring", "Unset", "scoring_from_logprobs"]

OnError = Literal["abstain", "raise"] | float
Scoring = Literal["auto", "expected", "sampled"]
"""``expected``: probability-weighted scores from logprobs (or exact reads); ``sampled``: the value
the judge wrote; ``auto``: expected where the client reports logprobs."""

class Unset:
    """The default of a deprecated argument: tells "not passed" from every value, None included."""

    def __repr__(self) -> str:
        return "<unset>"


UNSET = Unset()


class JudgeOptions(TypedDict, total=False):
    """Keyword options of every model-backed judge (defaults: ``BaseJudge.__init__``).

    - ``on_error``: what a failed judgment becomes — ``"abstain"`` (``None``), ``"raise"`` or a number;
    - ``max_reasks``: re-asks after an invalid verdict;
    - ``temperature``, ``max_tokens``, ``seed``: sampling settings of every request (``None``: not sent);
    - ``name``: the reward's name in trainer logs;
    - ``guard``: the non-answer guard (``True``: the default guard, ``False``: off, or a Guard);
    - ``max_input_chars``: per-input clipping (head + tail with a visible marker), ``None``: none;
    - ``batch_deadline``: seconds a batch may take; unfinished items fail as ``deadline``;
    - ``view``: how a trajectory (message-list response) is shown — ``None`` (assistant text),
      ``"final"``, ``"full_trace"`` or ``"tools"``;
    - ``tool_budget``: characters of tool output kept per trajectory (head + tail), ``None``: all;
    - ``max_context_tokens``: the judge's context; over it, tool outputs are clipped, then the item
      abstains with kind ``"context"``. ``None``: not checked.
    """

    on_error: OnError
    max_reasks: int
    temperature: float | None
    max_tokens: int | None
    seed: int | None
    name: str | None
    guard: Guard | bool | None
    max_input_chars: int | None
    batch_deadline: float | None
    view: Literal["final", "full_trace", "tools"] | None
    tool_budget: int | None
    max_context_tokens: int | None


def scoring_from_logprobs(use_logprobs: bool | None, owner: str) -> Scoring:
    """``use_logprobs=`` (the old spelling of the preference judge) as ``scoring=``."""
    warnings.warn(
        f"{owner}: use_logprobs= is deprecated; pass scoring= "
        '("auto" for None, "expected" for True, "sampled" for False)',
        DeprecationWarning,
        stacklevel=3,
    )
    if use_logprobs is None:
        return "auto"
    return "expected" if use_logprobs else "sampled"
