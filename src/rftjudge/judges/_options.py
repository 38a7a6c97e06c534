"""The options every model-backed judge shares, declared once.

Rubric, preference and listwise judges each take their own method's arguments (``scale``,
``swap``, ``permutations`` ...) and, as keywords, the same :class:`JudgeOptions`, which they pass on
to :class:`~rftjudge.judges.base.BaseJudge` untouched. The defaults live in ``BaseJudge.__init__``
alone; the judge config schema (:mod:`rftjudge.app.config`) reads the judges' signatures instead of
keeping its own lists, and ``tests/judges/test_options.py`` checks that judges, config and docs agree.

Judges take ``(client, criteria=None, *, ...)``. Earlier releases took a few more positional
arguments, each judge different ones; :func:`legacy_positionals` keeps those calls working for one
release, with a ``DeprecationWarning`` naming the keywords to use.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypedDict, TypeVar

from .._errors import ConfigurationError
from ..guards import Guard

__all__ = [
    "UNSET",
    "JudgeOptions",
    "OnError",
    "Scoring",
    "Unset",
    "check_sampling",
    "legacy_positionals",
    "scoring_from_logprobs",
]

OnError = Literal["abstain", "raise"] | float
Scoring = Literal["auto", "expected", "sampled"]
"""``expected``: probability-weighted scores from logprobs (or exact reads); ``sampled``: the value
the judge wrote; ``auto``: expected where the client reports logprobs."""

F = TypeVar("F", bound=Callable[..., None])


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
    - ``batch_deadline``: seconds a batch may take; unfinished items fail as ``deadline``.
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


def legacy_positionals(*names: str) -> Callable[[F], F]:
    """Accept ``names`` positionally after ``(self, client, criteria)``, with a DeprecationWarning.

    ``RubricJudge(client, criteria, (1, 10))`` keeps working (``scale=`` is meant) until the next
    release; new code passes everything after ``criteria`` by keyword.
    """

    def decorate(init: F) -> F:
        @functools.wraps(init)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
            if len(args) > 2:
                extra = args[2:]
                if len(extra) > len(names):
                    raise TypeError(
                        f"{type(self).__name__}() takes at most {2 + len(names)} positional "
                        f"arguments after self ({len(args)} given)"
                    )
                given = names[: len(extra)]
                for key in given:
                    if key in kwargs:
                        raise TypeError(f"{type(self).__name__}() got {key!r} twice")
                warnings.warn(
                    f"{type(self).__name__}: pass {', '.join(given)} by keyword "
                    f"({', '.join(f'{k}=...' for k in given)}); positional use is deprecated "
                    "and stops working in the next release",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs.update(zip(given, extra, strict=True))
                args = args[:2]
            init(self, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


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
