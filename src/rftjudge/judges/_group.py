"""What group judges hand back: a reward that is a float and still knows how it was made.

The :class:`~rftjudge.rewards.GroupJudge` contract is ``ajudge_group(...) -> list[float |
BaseException]`` — a number per completion. The per-step figures a GRPO run needs to trust a group
judge (swap consistency, order sensitivity, requests and tokens per group) belong to the group, not
to the completion, and ``metrics_of`` sees only the outcomes of the step. :class:`GroupReward` is a
``float`` (TRL, JSON and ``reward_of`` take it as one) that also carries the :class:`GroupInfo` of
its group and a rationale; ``metrics_of`` collects the infos of a step's outcomes, once per group.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._types import Usage

__all__ = ["GroupInfo", "GroupReward", "group_infos", "group_metrics", "seeded_order"]


@dataclass(frozen=True)
class GroupInfo:
    """How one group was judged.

    ``size``: completions; ``distinct``: distinct ones judged (identical completions share one
    judgment; guarded non-answers are not shown to the judge); ``requests`` and ``usage``: what it
    cost, re-asks included; ``comparisons`` / ``inconsistent``: swapped pairwise comparisons and how
    many of them the two orders disagreed on; ``orders`` / ``failed_orders``: listwise presentation
    orders asked and how many of them failed for good; ``order_sensitivity``: the mean spread (max −
    min, on the [0, 1] reward scale) of a completion's score across orders; ``reasks``: re-asks
    after an invalid answer.
    """

    size: int
    distinct: int
    requests: int = 0
    usage: Usage = field(default_factory=Usage)
    comparisons: int = 0
    inconsistent: int = 0
    orders: int = 0
    failed_orders: int = 0
    order_sensitivity: float | None = None
    reasks: int = 0
    exact_reads: int = 0
    exact_fallbacks: int = 0


class GroupReward(float):
    """A completion's reward in [0, 1] (a ``float``) with its group's :class:`GroupInfo`.

    ``rationale``: the judge's explanation for the group; ``guarded``: the guard's reason when the
    completion was a non-answer scored without the judge (None otherwise).
    """

    __slots__ = ("guarded", "info", "rationale")

    info: GroupInfo | None
    rationale: str
    guarded: str | None

    def __new__(
        cls,
        value: float,
        info: GroupInfo | None = None,
        rationale: str = "",
        guarded: str | None = None,
    ) -> GroupReward:
        self = super().__new__(cls, value)
        self.info = info
        self.rationale = rationale
        self.guarded = guarded
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # pickles as a plain float
        return (float, (float(self),))


def group_infos(outcomes: Iterable[Any]) -> list[GroupInfo]:
    """The distinct :class:`GroupInfo` objects behind a step's outcomes, in order of appearance."""
    seen: set[int] = set()
    infos: list[GroupInfo] = []
    for outcome in outcomes:
        info = getattr(outcome, "info", None) if isinstance(outcome, GroupReward) else None
        if info is not None and id(info) not in seen:
            seen.add(id(info))
            infos.append(info)
    return infos


def seeded_order(n: int, *parts: str | int | None) -> list[int]:
    """A shuffled ``range(n)``, reproducible from ``parts`` (the group's texts, the judge's seed).

    The input order of a group says nothing about quality but can say something else (which worker
    produced it, the sampler's order); judging a content-seeded shuffle removes any such link while
    keeping identical groups judged identically (cache hits, reproducible runs).
    """
    digest = hashlib.sha256("\x00".join(str(p) for p in parts).encode()).digest()
    order = list(range(n))
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def group_metrics(outcomes: Iterable[Any]) -> dict[str, float]:
    """Per-step figures of the groups behind ``outcomes`` (each group counted once).

    ``requests_per_group`` / ``tokens_per_group``: mean cost; ``swap_consistency``: share of swapped
    pairwise comparisons whose two orders agreed; ``order_sensitivity``: mean spread of a
    completion's listwise score across presentation orders; ``failed_order_rate``: listwise
    orders that failed for good; ``exact_fallback_rate``: exact reads that fell back.
    """
    infos = group_infos(outcomes)
    if not infos:
        return {}
    metrics = {
        "groups": float(len(infos)),
        "requests_per_group": mean([float(i.requests) for i in infos]),
        "tokens_per_group": mean([float(i.usage.total_tokens) for i in infos]),
    }
    comparisons = sum(i.comparisons for i in infos)
    if comparisons:
        metrics["swap_consistency"] = 1.0 - sum(i.inconsistent for i in infos) / comparisons
    orders = sum(i.orders for i in infos)
    if orders:
        metrics["failed_order_rate"] = sum(i.failed_orders for i in infos) / orders
    spreads = [i.order_sensitivity for i in infos if i.order_sensitivity is not None]
    if spreads:
        metrics["order_sensitivity"] = mean(spreads)
    reads = sum(i.exact_reads for i in infos)
    if reads:
        metrics["exact_fallback_rate"] = sum(i.exact_fallbacks for i in infos) / reads
    return metrics
