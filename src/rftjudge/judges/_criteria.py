"""The rubric vocabulary every judge shares: criteria and the scale their scores are given on.

Rubric, preference and listwise judges all take ``criteria=`` and (most) a ``scale=``; keeping the
definitions here, below every judge, means no judge imports a sibling judge for them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from .._errors import ConfigurationError

__all__ = ["Criterion", "Scale", "ScaleSpec", "check_criteria", "verdict_field"]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
ScaleSpec = Union[tuple[int, int], Literal["binary", "pass_fail"], "Scale"]


class Criterion(BaseModel):
    """One thing the judge checks. ``weight`` sets its share of the reward."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    weight: float = 1.0

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "criterion name must start with a letter and use only letters, digits, '_' or '-' "
                f"(at most 64 characters); got {value!r}"
            )
        return value

    @field_validator("description")
    @classmethod
    def _check_description(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("criterion description must not be empty")
        return value

    @field_validator("weight")
    @classmethod
    def _check_weight(cls, value: float) -> float:
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"criterion weight must be a finite number > 0; got {value!r}")
        return value


class Scale(BaseModel):
    """The answer scale of every criterion: integers ``low..high``, or pass/fail (``binary``)."""

    model_config = ConfigDict(frozen=True)

    low: int = 1
    high: int = 5
    binary: bool = False

    @model_validator(mode="after")
    def _check_range(self) -> Scale:
        # Scale(low=3, high=3) would divide by zero in normalise(), mid-training.
        if self.high <= self.low or self.high - self.low > 100:
            raise ValueError(
                f"scale needs low < high and at most 101 values; got low={self.low}, "
                f"high={self.high}"
            )
        return self

    @classmethod
    def parse(cls, spec: ScaleSpec) -> Scale:
        if isinstance(spec, Scale):
            return spec
        if spec in ("binary", "pass_fail"):
            return cls(low=0, high=1, binary=True)
        if (
            isinstance(spec, tuple)
            and len(spec) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in spec)
        ):
            low, high = spec
            if high <= low:
                raise ConfigurationError(f"scale must have low < high; got {spec!r}")
            if high - low > 100:
                raise ConfigurationError(f"scale {spec!r} is too wide (at most 101 values)")
            return cls(low=low, high=high)
        raise ConfigurationError(
            f'scale must be (low, high) integers, "binary" or "pass_fail"; got {spec!r}'
        )

    @property
    def values(self) -> list[int]:
        return list(range(self.low, self.high + 1))

    def normalise(self, raw: float) -> float:
        return (raw - self.low) / (self.high - self.low)


def check_criteria(criteria: Sequence[Criterion]) -> tuple[Criterion, ...]:
    if isinstance(criteria, Criterion) or not isinstance(criteria, Sequence) or not criteria:
        raise ConfigurationError("criteria must be a non-empty list of Criterion")
    for item in criteria:
        if not isinstance(item, Criterion):
            raise ConfigurationError(
                f"criteria must contain Criterion objects; got {type(item).__name__}"
            )
    names = [c.name for c in criteria]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigurationError(f"duplicate criterion names: {', '.join(duplicates)}")
    # "a-b" and "a_b" share a verdict field: one criterion would silently get the other's score.
    fields: dict[str, str] = {}
    for c in criteria:
        other = fields.setdefault(verdict_field(c), c.name)
        if other != c.name:
            raise ConfigurationError(
                f"criterion names {other!r} and {c.name!r} collide ('-' and '_' are the same "
                "field in the verdict); rename one"
            )
    return tuple(criteria)


def verdict_field(criterion: Criterion) -> str:
    """The verdict model's field for a criterion (``-`` becomes ``_``; ``c_`` keeps it a name)."""
    return "c_" + criterion.name.replace("-", "_")
