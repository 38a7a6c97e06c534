"""Which pairs of a group to compare.

Comparing every pair costs G·(G−1)/2 comparisons (twice that in requests with position swapping):
fine for 4 completions, 56 requests for 8. A circular schedule compares each completion with its
``k`` nearest neighbours on a ring — G·k/2 pairs, every completion in exactly ``k`` comparisons, and
the comparison graph stays connected, so win rates (or Bradley–Terry strengths) are comparable across
the whole group.
"""

from __future__ import annotations

__all__ = ["all_pairs", "circular_pairs", "default_pairs"]


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
