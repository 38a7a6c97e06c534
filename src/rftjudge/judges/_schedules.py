"""Which pairs of a group to compare.

Comparing every pair costs G·(G−1)/2 comparisons (twice that in requests with position swapping):
fine for 4 completions, 56 requests for 8. A circular schedule compares each completion with its
``k`` nearest neighbours on a ring — G·k/2 pairs, every completion in exactly ``k`` comparisons, and
the comparison graph stays connected, so win rates (or Bradley–Terry strengths) are comparable across
the whole group.

Schedules by name (``PreferenceJudge(schedule=...)``), with their cost for a group of G distinct
completions and ``k = comparisons_per_completion`` (requests are twice the pairs with ``swap``):

| schedule | pairs | rounds (latency) |
|---|---|---|
| ``"all_pairs"`` | G·(G−1)/2 (28 for G = 8) | 1 |
| ``"circular"`` | G·k/2, each completion in exactly k (16 for G = 8, k = 4) | 1 |
| ``"adaptive"`` | ⌊G/2⌋·k at most (12 for G = 8, k = 3) | k |
| ``"auto"`` (default) | all pairs for G ≤ 5, else circular with k (default 4) | 1 |

``"adaptive"`` is a Swiss tournament: the first round pairs neighbours of a shuffled order, each
later round fits Bradley–Terry strengths to the outcomes so far and pairs completions adjacent in
that ranking that have not met yet — comparisons go where the order is still uncertain, as in
LLM-as-a-Verifier's pivot tournament, at the cost of k sequential rounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from .._errors import ConfigurationError

__all__ = [
    "SCHEDULES",
    "Schedule",
    "all_pairs",
    "circular_pairs",
    "default_pairs",
    "first_round",
    "schedule_pairs",
    "swiss_round",
]

Schedule = Literal["auto", "all_pairs", "circular", "adaptive"]
SCHEDULES: tuple[Schedule, ...] = ("auto", "all_pairs", "circular", "adaptive")


def all_pairs(n: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def circular_pairs(n: int, k: int) -> list[tuple[int, int]]:
    """Each item paired with the next ``ceil(k/2)`` items on a ring (k-regular for even k)."""
    if n < 2:
        return []
    if k >= n - 1:
        return all_pairs(n)
    pairs: set[tuple[int, int]] = set()
    for step in range(1, k // 2 + 1):
        for i in range(n):
            j = (i + step) % n
            pairs.add((min(i, j), max(i, j)))
    if k % 2:  # odd k: add the "diameter" pairs so every item gets one more comparison
        for i in range(n // 2):
            j = i + n // 2
            pairs.add((i, j))
    return sorted(pairs)


def default_pairs(n: int, comparisons_per_item: int | None) -> list[tuple[int, int]]:
    """All pairs for small groups (n ≤ 5), else a circular schedule with 4 comparisons each."""
    if comparisons_per_item is None:
        return all_pairs(n) if n <= 5 else circular_pairs(n, 4)
    return circular_pairs(n, comparisons_per_item)


def schedule_pairs(schedule: Schedule, n: int, k: int | None) -> list[tuple[int, int]]:
    """The pairs of a static schedule (``"adaptive"`` is built round by round instead)."""
    if schedule == "auto":
        return default_pairs(n, k)
    if schedule == "all_pairs":
        return all_pairs(n)
    if schedule == "circular":
        return circular_pairs(n, 4 if k is None else k)
    raise ConfigurationError(f"schedule {schedule!r} has no static pair list")


def first_round(order: Sequence[int]) -> list[tuple[int, int]]:
    """Neighbours of ``order`` paired up: (o0, o1), (o2, o3), ... (an odd item out waits)."""
    return [_ordered(order[m], order[m + 1]) for m in range(0, len(order) - 1, 2)]


def swiss_round(ranking: Sequence[int], done: set[tuple[int, int]]) -> list[tuple[int, int]]:
    """One Swiss round: walk ``ranking`` (best first) and pair each unpaired item with the nearest
    unpaired item below it that it has not met yet. Items with no such partner sit out."""
    paired: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for position, item in enumerate(ranking):
        if item in paired:
            continue
        for other in ranking[position + 1 :]:
            pair = _ordered(item, other)
            if other not in paired and pair not in done:
                pairs.append(pair)
                paired.update(pair)
                break
    return pairs


def _ordered(i: int, j: int) -> tuple[int, int]:
    return (i, j) if i < j else (j, i)
