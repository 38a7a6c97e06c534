"""A row's own rubric: items with ids, weights and categories, read from whatever the data holds.

Per-prompt rubrics (Rubrics as Rewards, arXiv 2507.17746) and checklists (RLCF, arXiv 2507.18624)
arrive as a Python list, a JSON string, a dict, or plain text with one item per line. Every shape
becomes one :class:`Rubric` — a tuple of :class:`RubricItem` — or an :class:`InvalidRubricError`
naming the row and the problem. A bad rubric is never replaced by a default: a silent default
rubric would train the policy towards the wrong target without anyone noticing.

Categories follow RaR. Their default weights (used when an item gives none) are rftjudge's, chosen
so that one essential item outweighs an important one, which outweighs an optional one:

============  ======  =================================================================
category      weight  meaning
============  ======  =================================================================
essential     1.0     must hold for a good answer
important     0.7     should hold
optional      0.3     nice to have
pitfall       0.9     a mistake: when the judge finds it *present*, its weight subtracts
============  ======  =================================================================

HealthBench-style ``"points"`` are accepted too: positive points are a weight, negative points a
pitfall of that weight. An item with ``"check"`` instead of a description is a program (see
:mod:`._rubric_checks`), evaluated locally.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .._errors import JudgeError, VerdictError
from ..checks import Check
from ._criteria import Criterion
from ._rubric_checks import build_check

__all__ = [
    "CATEGORY_WEIGHTS",
    "InvalidRubricError",
    "Rubric",
    "RubricError",
    "RubricItem",
    "parse_rubric",
]

CATEGORY_WEIGHTS: Mapping[str, float] = {
    "essential": 1.0,
    "important": 0.7,
    "optional": 0.3,
    "pitfall": 0.9,
}
ItemType = Literal["likert", "pass_fail"]
MAX_DESCRIPTION = 2000

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_RESERVED = frozenset({"rationale", "scores", "score"})
_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,3}[.)])\s+")
_LINE_CATEGORY = re.compile(
    r"^\s*(?:\[(?P<b>essential|important|optional|pitfall)\]|"
    r"(?P<c>essential|important|optional|pitfall)(?:\s+criteri(?:on|a))?\s*:)\s*",
    re.IGNORECASE,
)
_TYPES: Mapping[str, ItemType] = {
    "likert": "likert",
    "pass_fail": "pass_fail",
    "binary": "pass_fail",
    "boolean": "pass_fail",
}
_LIST_KEYS = ("items", "rubric", "rubrics", "criteria", "checklist")


class InvalidRubricError(JudgeError):
    """A row's rubric cannot be used (empty, unparseable, duplicate ids, bad weight, too long).

    Fails that row only — kind ``"invalid_rubric"`` — never the batch, never a default rubric.
    """

    @property
    def kind(self) -> str:
        return "invalid_rubric"


class RubricError(VerdictError):
    """A rubric item never got a valid verdict within the bounded re-asks (kind ``"rubric"``).

    The row fails rather than dropping the item: dropping it would change the weighting.
    """

    @property
    def kind(self) -> str:
        return "rubric"


@dataclass(frozen=True, slots=True)
class RubricItem:
    """One item of a row's rubric: judged by the model, or a program (``check``) run locally."""

    id: str
    description: str
    weight: float = 1.0
    category: str | None = None
    type: ItemType | None = None
    """None: the judge's scale."""
    check: Check | None = field(default=None, compare=False)

    @property
    def pitfall(self) -> bool:
        return self.category == "pitfall"


@dataclass(frozen=True)
class Rubric:
    """A validated rubric: judged items first, in the given order, then the programs.

    ``memo`` keeps what a judge derives from it (its chunks and their verdict shapes): a judge
    caches parsed rubrics, so the rows of a GRPO group, and later epochs, reuse it for free.
    """

    items: tuple[RubricItem, ...]
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def judged(self) -> tuple[RubricItem, ...]:
        return tuple(i for i in self.items if i.check is None)

    @property
    def programs(self) -> tuple[RubricItem, ...]:
        return tuple(i for i in self.items if i.check is not None)


def criteria_items(criteria: Sequence[Criterion]) -> tuple[RubricItem, ...]:
    """The judge-wide criteria as rubric items (ids are the criterion names)."""
    return tuple(
        RubricItem(id=c.name, description=c.description, weight=c.weight) for c in criteria
    )


def parse_rubric(
    raw: Any,
    *,
    base: Sequence[RubricItem] = (),
    max_items: int = 64,
    row: int | None = None,
) -> Rubric:
    """``raw`` (list, dict, JSON string or one-item-per-line text) plus ``base`` as a :class:`Rubric`.

    Raises :class:`InvalidRubricError` naming ``row`` and the problem.
    """
    where = "rubric" if row is None else f"row {row}: rubric"
    try:
        entries = _entries(raw)
        items = _items(entries, base)
    except _Bad as exc:
        raise InvalidRubricError(f"{where} {exc}") from None
    if not items:
        raise InvalidRubricError(f"{where} is empty")
    if len(items) > max_items:
        raise InvalidRubricError(
            f"{where} has {len(items)} items, more than the cap of {max_items} (max_rubric_items)"
        )
    return Rubric(tuple(i for i in items if i.check is None) + tuple(i for i in items if i.check))


class _Bad(Exception):
    """A problem with the rubric, phrased to follow "row N: rubric"."""


def _entries(raw: Any) -> list[Any]:
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return []
        if text[0] in "[{":
            try:
                return _entries(json.loads(text))
            except ValueError as exc:
                raise _Bad(f"is not valid JSON ({exc})") from None
        return [_line_item(line) for line in text.splitlines() if line.strip()]
    if isinstance(raw, Mapping):
        for key in _LIST_KEYS:
            if key in raw:
                return _entries(raw[key])
        if "description" in raw or "check" in raw:
            return [raw]
        # {"id": "description" or {...}}: the keys are the ids.
        return [
            {**v, "id": v.get("id", k)} if isinstance(v, Mapping) else {"id": k, "description": v}
            for k, v in raw.items()
        ]
    if isinstance(raw, Sequence) and not isinstance(raw, bytes | bytearray):
        return list(raw)
    if hasattr(raw, "tolist"):  # numpy / pyarrow arrays from Parquet and datasets
        return _entries(raw.tolist())
    raise _Bad(f"must be a list, a dict or text; got {type(raw).__name__}")


def _line_item(line: str) -> dict[str, Any]:
    text = _BULLET.sub("", line, count=1)
    match = _LINE_CATEGORY.match(text)
    if match is None:
        return {"description": text.strip()}
    category = (match.group("b") or match.group("c")).lower()
    return {"description": text[match.end() :].strip(), "category": category}


def _items(entries: list[Any], base: Sequence[RubricItem]) -> list[RubricItem]:
    items = list(base)
    taken = {i.id for i in base}
    given = [e.get("id") if isinstance(e, Mapping) else None for e in entries]
    explicit = [str(i) for i in given if i is not None and not isinstance(i, bool)]
    seen = set(taken)
    for value in explicit:
        if value in seen:
            raise _Bad(f"has a duplicate item id {value!r}")
        seen.add(value)
    counter = 0
    for position, entry in enumerate(entries, start=1):
        if isinstance(entry, str):
            entry = {"description": entry}
        if not isinstance(entry, Mapping):
            raise _Bad(f"item {position} must be a dict or text; got {type(entry).__name__}")
        if entry.get("id") is None:
            counter += 1
            while f"c{counter}" in seen:
                counter += 1
            entry = {**entry, "id": f"c{counter}"}
            seen.add(entry["id"])
        items.append(_item(entry, position))
    return items


def _item(entry: Mapping[str, Any], position: int) -> RubricItem:
    ident = entry["id"]
    if isinstance(ident, bool) or not isinstance(ident, str | int):
        raise _Bad(f"item {position}: id must be text or an integer; got {ident!r}")
    ident = str(ident)
    if not _ID.match(ident) or ident in _RESERVED:
        raise _Bad(
            f"item {position}: id {ident!r} must be 1-64 letters, digits, '_', '-' or '.' "
            f"(and not {', '.join(sorted(_RESERVED))})"
        )
    label = f"item {ident!r}"
    category = _category(entry.get("category"), label)
    weight = _weight(entry, category, label)
    points = entry.get("points")
    if entry.get("weight") is None and isinstance(points, int | float) and points < 0:
        category = "pitfall"
    kind = entry.get("type")
    if kind is not None and kind not in _TYPES:
        raise _Bad(f"{label}: type must be 'likert' or 'pass_fail'; got {kind!r}")
    check: Check | None = None
    if entry.get("check") is not None:
        try:
            check = build_check(entry)
        except ValueError as exc:
            raise _Bad(f"{label}: {exc}") from None
    description = entry.get("description", entry.get("criterion", entry.get("text")))
    if description is None and check is not None:
        description = check.name
    if not isinstance(description, str) or not description.strip():
        raise _Bad(f"{label} has no description")
    if len(description) > MAX_DESCRIPTION:
        raise _Bad(f"{label}: description longer than {MAX_DESCRIPTION} characters")
    return RubricItem(
        id=ident,
        description=" ".join(description.split()),
        weight=weight,
        category=category,
        type=None if kind is None else _TYPES[kind],
        check=check,
    )


def _category(value: Any, label: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Bad(f"{label}: category must be text; got {value!r}")
    name = value.strip().lower().removesuffix(" criteria").removesuffix(" criterion")
    if name not in CATEGORY_WEIGHTS:
        raise _Bad(f"{label}: unknown category {value!r} (one of {', '.join(CATEGORY_WEIGHTS)})")
    return name


def _weight(entry: Mapping[str, Any], category: str | None, label: str) -> float:
    if "weight" in entry and entry["weight"] is not None:
        value, what = entry["weight"], "weight"
    elif "points" in entry and entry["points"] is not None:
        value, what = entry["points"], "points"
        if _number(value) and value < 0:
            value = -value  # negative points: a pitfall of that size
    else:
        return CATEGORY_WEIGHTS[category] if category else 1.0
    if not _number(value) or not math.isfinite(value) or value <= 0:
        raise _Bad(f"{label}: {what} must be a finite number > 0; got {value!r}")
    return float(value)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
