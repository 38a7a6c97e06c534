"""What one preference comparison returns: the public :class:`Preference`, the verdict models the
judge's answer is validated against, and one presentation order's reading.

Apart from :mod:`.preference` (the judge) so that both the judge and the group mode
(:mod:`._preference_group`) can use them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .._errors import VerdictError
from .._types import Usage

__all__ = ["Label", "Preference"]

Label = Literal["A", "B", "tie"]
_FLIP: dict[str, Label] = {"A": "B", "B": "A", "tie": "tie"}
_LABEL_PROB: dict[str, float] = {"A": 1.0, "B": 0.0, "tie": 0.5}


class Preference(BaseModel):
    """The outcome of comparing ``response_a`` with ``response_b``.

    ``winner`` is "A", "B" or "tie"; ``prob_a`` is P(A beats B) in [0, 1] (a tie counts half);
    ``consistent`` says whether both orders agreed (None without swapping); ``orders`` holds the
    winner each order gave, mapped back to the original A/B; ``from_logprobs`` whether ``prob_a``
    came from token probabilities.
    """

    winner: Label
    prob_a: float
    consistent: bool | None
    rationale: str = ""
    usage: Usage = Field(default_factory=Usage)
    orders: tuple[Label, ...] = ()
    from_logprobs: bool = False
    raw: tuple[str, ...] = ()
    guarded: str | None = None
    """Set when the guard decided without a judge call (a non-answer on one side): its reason."""


class _Verdict(BaseModel):
    model_config = ConfigDict(extra="ignore")
    rationale: str = ""
    winner: Label


class _StrictVerdict(_Verdict):
    winner: Literal["A", "B"]


@dataclass(frozen=True, slots=True)
class _Order:
    """What one presentation order returned, in that order's A/B terms."""

    label: Label
    prob_a: float
    from_logprobs: bool
    rationale: str
    text: str
    usage: Usage

    def flipped(self) -> _Order:
        """The same verdict seen from the other order (B shown first)."""
        return replace(self, label=_FLIP[self.label], prob_a=1.0 - self.prob_a)


class _NoReference(VerdictError):
    """A reference-mode comparison without a reference: the item abstains."""

    @property
    def kind(self) -> str:
        return "no_reference"
