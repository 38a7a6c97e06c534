"""Deterministic pre-checks that run before (and can stand in for) a judge call.

AWS's advice for RFT reward Lambdas is to combine cheap deterministic checks — format, length,
language, safety — with the judge. A check is any callable ``check(answer_text, sample) -> float |
None``:

- ``None``: no opinion (not recorded);
- ``0.0``: the sample fails outright — the reward is 0.0 and the judge is not called (no tokens
  spent on an answer that cannot be right);
- a value in (0, 1]: recorded as a metric and multiplied into the judge's reward.

Its ``__name__`` names the metric. :func:`non_empty` and :func:`json_valid` are the two checks most
RFT setups need.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._errors import ConfigurationError
from ..checks import JSONSchemaCheck, NonEmptyCheck

__all__ = ["Check", "json_valid", "non_empty"]

Check = Callable[[str, Any], "float | None"]


def non_empty(min_chars: int = 1) -> Check:
    """0.0 (gate) when the answer has fewer than ``min_chars`` non-blank characters, else 1.0."""
    if not isinstance(min_chars, int) or min_chars < 1:
        raise ConfigurationError(f"min_chars must be an int >= 1; got {min_chars!r}")

    inner = NonEmptyCheck(min_chars)

    def check(answer: str, sample: Any = None) -> float:
        return inner("", answer, None)

    check.__name__ = check.__qualname__ = "non_empty"
    return check


def json_valid(
    schema: Mapping[str, Any] | None = None, *, lenient: bool = False, name: str = "json_valid"
) -> Check:
    """1.0 when the answer is JSON (conforming to ``schema`` if given), else 0.0 (gate).

    A Lambda-shaped wrapper of :class:`rftjudge.JSONSchemaCheck` (same parsing and validation).
    """
    inner = JSONSchemaCheck(schema, lenient=lenient, name=name)

    def check(answer: str, sample: Any = None) -> float:
        return inner("", answer, None)

    check.__name__ = check.__qualname__ = name
    return check
