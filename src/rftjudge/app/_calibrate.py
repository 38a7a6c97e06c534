"""``rftjudge calibrate``'s analysis: judge results joined with human labels, row by row.

What is compared with what (a rubric judge's integer verdict and continuous value, a preference
judge's winner and ``prob_a``) is explained in :mod:`.report`, which writes the report from the
:class:`Calibration` this module computes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .._errors import ConfigurationError
from ..calibration import Agreement, agreement, pearson, spearman
from ..judges.rubric import Scale
from .config import JudgeConfig

__all__ = ["Calibration", "calibrate_records", "parse_label"]


Record = Mapping[str, Any]
_TRUE = {"true", "yes", "pass", "passed", "1", "y", "t"}
_FALSE = {"false", "no", "fail", "failed", "0", "n", "f"}
_WINNERS = {"a": "A", "b": "B", "tie": "tie", "draw": "tie", "equal": "tie", "=": "tie"}
_PARSE_KINDS = ("parse", "truncated")


@dataclass(frozen=True)
class Calibration:
    """Everything the report shows; ``to_dict`` is ``metrics.json``."""

    kind: Literal["rubric", "preference"]
    target: str
    rows: int
    labelled: int
    invalid_labels: int
    judged: int
    failed: int
    failures: dict[str, int]
    failure_rate: float | None
    parse_failure_rate: float | None
    agreement: Agreement
    consistency: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    truth: tuple[Hashable, ...] = ()
    pred: tuple[Hashable, ...] = ()
    scores: tuple[float, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    disagreements: tuple[dict[str, Any], ...] = ()
    """The compared rows where the judge's verdict differs from the label: ``index`` (the row),
    ``id`` (when the data has one), ``judge``, ``human`` and the judge's ``rationale`` — the
    largest differences first on a rubric scale."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("truth", "pred", "scores"):
            data.pop(key)
        return data


def parse_label(value: Any, kind: str, scale: Scale) -> Hashable | None:
    """A human label as the judge's verdict type, or ``None`` when it is missing or unusable."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if kind == "preference":
        return _WINNERS.get(str(value).strip().lower())
    if scale.binary:
        if isinstance(value, bool):
            return int(value)
        text = str(value).strip().lower()
        return 1 if text in _TRUE else 0 if text in _FALSE else None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not number.is_integer() or not (scale.low <= number <= scale.high):
        return None
    return int(number)


def calibrate_records(
    config: JudgeConfig,
    records: Mapping[int, Record],
    labels: Mapping[int, Any],
    *,
    criterion: str | None = None,
) -> Calibration:
    """Join ``records`` (by row index) with raw human ``labels`` and compute the agreement."""
    if config.type == "listwise":
        raise ConfigurationError(
            "a listwise judge judges groups, not labelled rows: calibrate a "
            "rubric or preference judge"
        )
    kind = config.type
    scale = Scale.parse(_scale_spec(config))
    names = [c.name for c in config.criteria or ()]
    if kind == "rubric":
        if criterion is not None and criterion not in names:
            raise ConfigurationError(
                f"--criterion {criterion!r} is not a criterion of this judge ({', '.join(names)})"
            )
        if criterion is None and len(names) == 1:
            criterion = names[0]
    target = "winner" if kind == "preference" else (criterion or "overall score")
    parsed = {i: parse_label(v, kind, scale) for i, v in labels.items()}
    usable = {i: v for i, v in parsed.items() if v is not None}
    invalid = sum(1 for i, v in parsed.items() if v is None and not _blank(labels[i]))
    truth: list[Hashable] = []
    pred: list[Hashable] = []
    scores: list[float] = []
    failures: Counter[str] = Counter()
    judged = failed = 0
    tokens = Counter[str]()
    flags: list[bool] = []
    disagreements: list[dict[str, Any]] = []
    for index, label in sorted(usable.items()):
        record = records.get(index)
        if record is None:
            continue
        if not record.get("ok"):
            failed += 1
            failures[str((record.get("error") or {}).get("kind", "error"))] += 1
            continue
        judged += 1
        for key in ("input_tokens", "output_tokens"):
            tokens[key] += int((record.get("usage") or {}).get(key) or 0)
        verdict, score = _verdict(record, kind, scale, criterion)
        truth.append(label)
        pred.append(verdict)
        scores.append(score)
        if verdict != label:
            disagreements.append(_disagreement(index, record, verdict, label))
        if record.get("consistent") is not None:
            flags.append(bool(record["consistent"]))
    attempted = judged + failed
    if kind == "preference":
        values: Sequence[Hashable] = ("A", "B", "tie")
        result = agreement(truth, pred, values)
        numeric = [{"A": 1.0, "B": 0.0}.get(str(t), 0.5) for t in truth]
        from dataclasses import replace

        result = replace(
            result, spearman=spearman(numeric, scores), pearson=pearson(numeric, scores)
        )
    else:
        result = agreement(truth, pred, scale.values, scores=scores, ordinal=True)
    notes = []
    if not truth:
        notes.append("no row has both a usable label and a successful judgment")
    price = config.price
    return Calibration(
        kind=kind,
        target=target,
        rows=len(labels),
        labelled=len(usable),
        invalid_labels=invalid,
        judged=judged,
        failed=failed,
        failures=dict(failures),
        failure_rate=failed / attempted if attempted else None,
        parse_failure_rate=(
            sum(failures[k] for k in _PARSE_KINDS) / attempted if attempted else None
        ),
        agreement=result,
        consistency=sum(flags) / len(flags) if flags else None,
        input_tokens=tokens["input_tokens"],
        output_tokens=tokens["output_tokens"],
        cost=price.cost(tokens["input_tokens"], tokens["output_tokens"]) if price else None,
        truth=tuple(truth),
        pred=tuple(pred),
        scores=tuple(scores),
        notes=tuple(notes),
        disagreements=tuple(_worst_first(disagreements, ordinal=kind == "rubric")),
    )


def _disagreement(index: int, record: Record, verdict: Hashable, label: Hashable) -> dict[str, Any]:
    found: dict[str, Any] = {"index": index}
    if record.get("id") is not None:
        found["id"] = record["id"]
    found.update(judge=verdict, human=label, rationale=str(record.get("rationale") or "")[:500])
    return found


def _worst_first(found: list[dict[str, Any]], *, ordinal: bool) -> list[dict[str, Any]]:
    if not ordinal:
        return found
    return sorted(found, key=lambda d: (-abs(float(d["judge"]) - float(d["human"])), d["index"]))


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _scale_spec(config: JudgeConfig) -> Any:
    if config.scale is None:
        return (1, 5)
    return tuple(config.scale) if isinstance(config.scale, tuple) else config.scale


def _verdict(
    record: Record, kind: str, scale: Scale, criterion: str | None
) -> tuple[Hashable, float]:
    if kind == "preference":
        prob = record.get("prob_a")
        winner = str(record.get("winner"))
        fallback = {"A": 1.0, "B": 0.0}.get(winner, 0.5)
        return winner, float(prob) if isinstance(prob, int | float) else fallback
    if criterion is not None:
        value = float(record["criteria"][criterion])
        sampled = record.get("criteria_sampled")
        if sampled:  # the integer the judge wrote; ``criteria`` is what the score is made of
            return int(sampled[criterion]), value
        # a record of rftjudge 0.1: ``criteria`` held the sampled integer, ``expected`` the weighted
        expected = (record.get("expected") or {}).get(criterion)
        return round(value), float(expected) if expected is not None else value
    continuous = scale.low + float(record["score"]) * (scale.high - scale.low)
    return math.floor(continuous + 0.5), continuous
