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
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

from .._errors import ConfigurationError
from ..guards import Guard

__all__ = [
    "UNSET",
    "JudgeOptions",
    "OnError",
    "Scoring",
    "Unset",
    "check_sampling",
    "scoring_from_logprobs",
]

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
    - ``temperature``, ``max_tokens``, ``seed``, ``top_p``, ``stop``: sampling settings of every
      request (``None``: not sent; ``stop``: a string or up to 4 strings);
    - ``extra_body``: provider-specific request fields merged into every verdict request (nested
      objects key by key), e.g. ``{"repeat_penalty": 1.1}`` for llama.cpp;
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
    top_p: float | None
    stop: str | Sequence[str] | None
    extra_body: Mapping[str, Any] | None
    name: str | None
    guard: Guard | bool | None
    max_input_chars: int | None
    batch_deadline: float | None
    view: Literal["final", "full_trace", "tools"] | None
    tool_budget: int | None
    max_context_tokens: int | None


def check_sampling(
    top_p: float | None, stop: str | Sequence[str] | None, extra_body: Mapping[str, Any] | None
) -> tuple[float | None, tuple[str, ...] | None, dict[str, Any]]:
    """``top_p``, ``stop`` and ``extra_body`` checked and normalised (``stop`` as a tuple).

    Bad values fail when the judge is built, not as a 400 in the middle of training.
    """
    if top_p is not None and (
        isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1
    ):
        raise ConfigurationError(f"top_p must be a number in (0, 1] or None; got {top_p!r}")
    stops: tuple[str, ...] | None = None
    if stop is not None:
        stops = (stop,) if isinstance(stop, str) else tuple(stop)
        if not stops or len(stops) > 4 or not all(isinstance(s, str) and s for s in stops):
            raise ConfigurationError(
                f"stop must be a non-empty string or a list of 1 to 4 of them; got {stop!r}"
            )
    if extra_body is not None and not isinstance(extra_body, Mapping):
        raise ConfigurationError(
            f"extra_body must be a mapping of request fields; got {type(extra_body).__name__}"
        )
    return (None if top_p is None else float(top_p)), stops, dict(extra_body or {})


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
