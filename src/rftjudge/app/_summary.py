"""What a results file holds for the current data, summed up: scores (or winners), failures,
tokens and cost — the figures ``rftjudge score``/``compare`` print at the end of a run."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..pricing import Price
from ._plan import Record

__all__ = ["Summary", "summarize"]

_PARSE_KINDS = ("parse", "truncated")


@dataclass(frozen=True)
class Summary:
    """What the output holds for the current data: scores (or winners), failures, tokens, cost."""

    rows: int
    judged: int
    failed: int
    missing: int
    mean: float | None
    distribution: dict[str, int]
    criteria_means: dict[str, float]
    failures: dict[str, int]
    parse_failure_rate: float | None
    input_tokens: int
    output_tokens: int
    requests: int
    cost: float | None
    consistency: float | None = None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    def lines(self) -> list[str]:
        """A plain-text report (the CLI prints it)."""
        out = [f"rows: {self.rows}  judged: {self.judged}  failed: {self.failed}"]
        if self.missing:
            out.append(f"not judged yet: {self.missing} (rerun the same command to resume)")
        if self.mean is not None:
            out.append(f"mean score: {self.mean:.4f}")
        for name, value in self.criteria_means.items():
            out.append(f"  {name}: {value:.3f}")
        if self.distribution:
            dist = "  ".join(f"{k}: {v}" for k, v in self.distribution.items())
            out.append(f"distribution: {dist}")
        if self.consistency is not None:
            out.append(f"position consistency: {self.consistency:.1%}")
        if self.failures:
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.failures.items()))
            out.append(f"failures by kind: {kinds}")
        out.append(
            f"tokens: {self.input_tokens} in, {self.output_tokens} out ({self.requests} requests)"
        )
        if self.cost is not None:
            out.append(f"cost: ${self.cost:.4f}")
        return out


def summarize(records: Iterable[Record], rows: int, price: Price | None = None) -> Summary:
    """Summarise the records of one data set (``rows`` rows; the rest count as missing)."""
    records = list(records)
    ok = [r for r in records if r.get("ok")]
    failures = Counter(
        str((r.get("error") or {}).get("kind", "error")) for r in records if not r.get("ok")
    )
    usage = Counter[str]()
    for record in ok:
        for key in ("input_tokens", "output_tokens", "requests"):
            usage[key] += int((record.get("usage") or {}).get(key) or 0)
    scores = [float(r["score"]) for r in ok if isinstance(r.get("score"), int | float)]
    winners = Counter(str(r["winner"]) for r in ok if r.get("winner") is not None)
    flags = [bool(r["consistent"]) for r in ok if r.get("consistent") is not None]
    criteria: dict[str, list[float]] = {}
    for record in ok:
        for name, value in (record.get("normalized") or {}).items():
            criteria.setdefault(name, []).append(float(value))
    return Summary(
        rows=rows,
        judged=len(ok),
        failed=len(records) - len(ok),
        missing=max(0, rows - len(records)),
        mean=math.fsum(scores) / len(scores) if scores else None,
        distribution=(
            _distribution(scores, discrete=all(map(_sampled_once, ok)))
            if scores
            else dict(sorted(winners.items()))
        ),
        criteria_means={k: math.fsum(v) / len(v) for k, v in criteria.items()},
        failures=dict(failures),
        parse_failure_rate=(
            sum(failures[k] for k in _PARSE_KINDS) / len(records) if records else None
        ),
        input_tokens=usage["input_tokens"],
        output_tokens=usage["output_tokens"],
        requests=usage["requests"],
        cost=price.cost(usage["input_tokens"], usage["output_tokens"]) if price else None,
        consistency=sum(flags) / len(flags) if flags else None,
    )


def _sampled_once(record: Record) -> bool:
    """Whether a record's score comes from one sampled verdict: a point of the judge's scale.
    Expected (probability-weighted), averaged and group scores are continuous."""
    return (
        record.get("scoring", "sampled") == "sampled"
        and record.get("samples", 1) == 1
        and "group" not in record
    )


def _distribution(scores: Sequence[float], *, discrete: bool = True) -> dict[str, int]:
    """Counts per score when the scores are points of a scale (a few distinct sampled values),
    else ten equal bins of [0, 1] — never one entry per distinct decimal."""
    distinct = sorted(set(round(s, 4) for s in scores))
    if discrete and len(distinct) <= 11:
        counts = Counter(round(s, 4) for s in scores)
        return {f"{v:g}": counts[v] for v in distinct}
    bins = Counter(min(max(int(s * 10 + 1e-6), 0), 9) for s in scores)  # 0.8999999997 is 0.9
    return {f"{b / 10:.1f}-{(b + 1) / 10:.1f}": bins[b] for b in range(10) if bins[b]}
