"""What judging costs: a price per million tokens, turned into dollars from token usage.

rftjudge ships no price list — prices change and differ per contract — so a client is given its
own: ``OpenAIClient(..., prices={"input": 0.40, "output": 1.60})`` or ``prices=Price(0.40, 1.60)``
(US dollars per million input / output tokens). The client's ``stats.cost_usd`` then follows every
request it sends, and TRL logs it per reward call as ``<name>/cost_usd``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ._errors import ConfigurationError
from ._types import Usage

__all__ = ["Price"]


@dataclass(frozen=True)
class Price:
    """US dollars per million input and output tokens."""

    input: float
    output: float

    def __post_init__(self) -> None:
        for name in ("input", "output"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ConfigurationError(f"Price: {name} must be a number >= 0 ($ per Mtok)")

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """Dollars for the given token counts."""
        return (input_tokens * self.input + output_tokens * self.output) / 1_000_000

    def cost_of(self, usage: Usage) -> float:
        """Dollars for a :class:`~rftjudge.Usage` (e.g. ``judge.stats.usage`` or a Judgment's)."""
        return self.cost(usage.input_tokens, usage.output_tokens)

    @classmethod
    def parse(cls, value: Price | Mapping[str, float] | None) -> Price | None:
        """A Price from ``prices=`` as clients accept it: a Price, ``{"input", "output"}`` or None."""
        if value is None or isinstance(value, Price):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"input", "output"}
            if unknown or not {"input", "output"} <= set(value):
                raise ConfigurationError(
                    'prices must be {"input": $/Mtok, "output": $/Mtok}; got keys '
                    f"{sorted(map(str, value))}"
                )
            return cls(input=value["input"], output=value["output"])
        raise ConfigurationError(
            f'prices must be a Price or {{"input": ..., "output": ...}}; got {type(value).__name__}'
        )
