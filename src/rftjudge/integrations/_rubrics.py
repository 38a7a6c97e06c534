"""Where each trainer's data keeps a row's rubric, and how it is attached to the reference.

A judge that reads per-row rubrics has a ``rubric_column`` (``RubricJudge``: ``"rubric"``); the
adapters look that key up where their trainer keeps per-sample data and attach the value to the
reference with :func:`~rftjudge.judges.rubric.with_rubric` — the judge does the parsing, so a bad
rubric fails that sample with kind ``"invalid_rubric"`` exactly as everywhere else:

- veRL: ``extra_info[column]``, or a ``reward_model.ground_truth`` dict holding ``column`` (its
  ``"reference"`` / ``"ground_truth"`` key is then the reference);
- Nova: the sample's top level or its ``metadata``;
- OpenRLHF: a label that is a JSON object holding ``column`` (and ``"reference"``/``"label"``);
- verifiers: ``info[column]`` (a dataset column of the task row).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .._text import reference_text
from ..judges.rubric import with_rubric
from ._common import plain

__all__ = ["attach_rubric", "split_label"]

_REFERENCE_KEYS = ("reference", "ground_truth", "answer", "label")


def _column(judge: Any) -> str | None:
    column = getattr(judge, "rubric_column", None)
    return column if isinstance(column, str) and column else None


def attach_rubric(judge: Any, reference: Any, *sources: Any, row: int | None = None) -> Any:
    """``reference`` with the rubric found in the first of ``sources`` (mappings) holding it."""
    column = _column(judge)
    if column is None:
        return reference
    for source in sources:
        if isinstance(source, Mapping) and source.get(column) is not None:
            return with_rubric(reference, plain(source[column]), row)
    return reference


def split_label(judge: Any, label: Any, row: int | None = None) -> Any:
    """A ground truth / label that carries a rubric (a dict, or a JSON object string) as the
    reference with the rubric attached; any other label as its reference text."""
    column = _column(judge)
    value = plain(label)
    if column is not None and isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, Mapping) and column in parsed:
            value = parsed
    if column is not None and isinstance(value, Mapping) and column in value:
        found = next((value[k] for k in _REFERENCE_KEYS if value.get(k) is not None), None)
        return attach_rubric(judge, reference_text(plain(found)), value, row=row)
    return reference_text(value)
