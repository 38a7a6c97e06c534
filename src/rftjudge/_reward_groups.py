"""Which rows of one reward-function call form a group (the group reward functions' input).

TRL's ``GRPOTrainer``/``RLOOTrainer`` pass a batch of many groups, keyed by prompt;
``AsyncGRPOTrainer`` passes one whole group per call (see
:class:`rftjudge.rewards.GroupRewardFunction`). At the reward-function layer: no judge imported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

__all__ = ["GroupBy", "group_rows"]

GroupBy = Literal["auto", "prompt", "call"]


# What TRL adds to a call that is not a dataset column.
_TRAINER_KWARGS = frozenset({"trainer_state", "log_metric", "log_extra", "environments"})


def group_rows(
    prompts: Sequence[str], kwargs: Mapping[str, Any], group_by: GroupBy = "auto"
) -> list[list[int]]:
    """The row indices of each group in one call (see :class:`rftjudge.rewards.GroupRewardFunction`)."""
    if not prompts:
        return []
    if group_by == "call" or (group_by == "auto" and _one_group(prompts, kwargs)):
        return [list(range(len(prompts)))]
    groups: dict[str, list[int]] = {}
    for index, text in enumerate(prompts):
        groups.setdefault(text, []).append(index)
    return list(groups.values())


def _one_group(prompts: Sequence[str], kwargs: Mapping[str, Any]) -> bool:
    if all(p == prompts[0] for p in prompts):
        return True
    # AsyncGRPOTrainer's _score_group passes completion_ids but never trainer_state; GRPOTrainer
    # and RLOOTrainer pass both (a batch of many groups); a hand-written call usually neither.
    if "completion_ids" not in kwargs or "trainer_state" in kwargs:
        return False
    columns = [
        v
        for k, v in kwargs.items()
        if k not in _TRAINER_KWARGS and k != "completion_ids" and isinstance(v, list | tuple)
    ]
    return all(len(c) == len(prompts) and all(_same(x, c[0]) for x in c) for c in columns)


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:  # e.g. numpy arrays (elementwise ==): not provably the same value
        return False
