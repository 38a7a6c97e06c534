"""The cohort server's buffer: completions collected by group key until each group is whole.

Split from :mod:`rftjudge.integrations.cohort` (which re-exports every name here): the buffer knows
nothing of HTTP, so it is tested and reused on its own. See that module's docstring for the design.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._errors import ConfigurationError, DeadlineExceededError
from ..rewards import GroupJudge

__all__ = [
    "DEFAULT_DEADLINE_S",
    "CohortBuffer",
    "CohortFullError",
    "CohortItem",
    "IncompleteGroupError",
]

logger = logging.getLogger("rftjudge")

DEFAULT_DEADLINE_S = 120.0


class CohortFullError(RuntimeError):
    """Taking these items would open more groups than the buffer holds at once."""


class IncompleteGroupError(DeadlineExceededError):
    """The group's other completions did not arrive before the deadline: nothing was judged."""

    @property
    def kind(self) -> str:
        return "incomplete_group"


@dataclass(frozen=True)
class CohortItem:
    """One completion sent to the cohort server, with the key and size of its group."""

    key: str
    group_size: int
    prompt: str
    completion: str
    reference: str | None = None


@dataclass
class _Cohort:
    key: str
    size: int
    prompt: str
    reference: str | None
    completions: list[str] = field(default_factory=list)
    waiters: list[asyncio.Future[Any]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class CohortBuffer:
    """Collects completions by group key until each group is whole, then judges it once.

    ``submit`` may be called concurrently, by any number of callers, each with any part of any
    group; it returns one outcome per item (a reward source for ``judge.reward_of``, or the
    exception). A group is closed as soon as ``group_size`` completions share its key; further
    completions with the same key start a new group (a prompt sampled twice in a step).
    """

    def __init__(
        self,
        judge: GroupJudge,
        *,
        group_size: int | None = None,
        deadline_s: float = DEFAULT_DEADLINE_S,
        max_open_groups: int | None = None,
    ) -> None:
        if group_size is not None and (not isinstance(group_size, int) or group_size < 1):
            raise ConfigurationError(f"group_size must be an int >= 1; got {group_size!r}")
        if not (isinstance(deadline_s, int | float) and deadline_s > 0):
            raise ConfigurationError(
                f"deadline_s must be a number of seconds > 0; got {deadline_s!r}"
            )
        if not callable(getattr(judge, "ajudge_group", None)):
            raise ConfigurationError(
                f"the cohort server needs a group judge (ajudge_group); got {type(judge).__name__}"
            )
        self.judge = judge
        self.group_size = group_size
        self.deadline_s = float(deadline_s)
        self.max_open_groups = max_open_groups
        self.groups_judged = 0
        self.groups_incomplete = 0
        self._open: dict[str, _Cohort] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        """Groups waiting for completions."""
        return len(self._open)

    async def submit(self, items: Sequence[CohortItem]) -> list[Any]:
        """Outcomes for ``items``, in order, once every group they belong to is settled.

        Every item is checked before any joins a group: a bad request changes no group. An item
        whose key is open for another prompt or reference is refused (ConfigurationError), and so
        is a request that would open more than ``max_open_groups`` groups (:class:`CohortFullError`).
        """
        sizes = [self._size(item) for item in items]
        self._check_keys(items)
        futures = [self._add(item, size) for item, size in zip(items, sizes, strict=True)]
        return list(await asyncio.gather(*futures))

    def _size(self, item: CohortItem) -> int:
        if self.group_size is not None and item.group_size not in (self.group_size, 0):
            raise ConfigurationError(
                f"group {item.key!r} sent with group_size={item.group_size}, but the server "
                f"judges groups of {self.group_size}"
            )
        size = self.group_size or item.group_size
        if not isinstance(size, int) or size < 1:
            raise ConfigurationError(f"group_size must be an int >= 1; got {size!r}")
        return size

    def _check_keys(self, items: Sequence[CohortItem]) -> None:
        owners = {key: (c.prompt, c.reference) for key, c in self._open.items()}
        for item in items:
            owner = owners.setdefault(item.key, (item.prompt, item.reference))
            if owner[0] != item.prompt or (
                item.reference is not None and owner[1] not in (None, item.reference)
            ):
                raise ConfigurationError(
                    f"group {item.key!r} is open for another prompt or reference: keys must be "
                    "unique per group"
                )
        new = len({item.key for item in items} - self._open.keys())
        if self.max_open_groups is not None and len(self._open) + new > self.max_open_groups:
            raise CohortFullError(
                f"{new} new groups would make more than the {self.max_open_groups} open at once"
            )

    def _add(self, item: CohortItem, size: int) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        cohort = self._open.get(item.key)
        if cohort is None:
            cohort = _Cohort(item.key, size, item.prompt, item.reference)
            cohort.timer = loop.call_later(self.deadline_s, self._expire, cohort)
            self._open[item.key] = cohort
        future: asyncio.Future[Any] = loop.create_future()
        cohort.completions.append(item.completion)
        cohort.waiters.append(future)
        if cohort.reference is None and item.reference is not None:
            cohort.reference = item.reference
        if len(cohort.completions) >= cohort.size:
            del self._open[item.key]
            if cohort.timer is not None:
                cohort.timer.cancel()
            task = loop.create_task(self._judge(cohort))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return future

    async def _judge(self, cohort: _Cohort) -> None:
        try:
            outcomes: list[Any] = list(
                await self.judge.ajudge_group(cohort.prompt, cohort.completions, cohort.reference)
            )
        except Exception as exc:  # a configuration error or a bug: every caller gets it
            logger.exception("rftjudge: cohort %r could not be judged", cohort.key)
            outcomes = [exc] * len(cohort.waiters)
        self.groups_judged += 1
        for future, outcome in zip(cohort.waiters, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)

    def _expire(self, cohort: _Cohort) -> None:
        if self._open.get(cohort.key) is not cohort:
            return
        del self._open[cohort.key]
        self.groups_incomplete += 1
        stats = getattr(self.judge, "stats", None)
        failures = getattr(stats, "failures", None)
        if failures is not None:
            failures["incomplete_group"] += len(cohort.waiters)
        logger.warning(
            "rftjudge: cohort %r had %d of %d completions after %.1f s; its completions abstain",
            cohort.key,
            len(cohort.completions),
            cohort.size,
            self.deadline_s,
        )
        error = IncompleteGroupError(
            f"only {len(cohort.completions)} of the group's {cohort.size} completions arrived "
            f"within {self.deadline_s:g} s"
        )
        for future in cohort.waiters:
            if not future.done():
                future.set_result(error)

    async def aclose(self) -> None:
        """Abstain every waiting group and wait for the judging in progress."""
        for cohort in list(self._open.values()):
            if cohort.timer is not None:
                cohort.timer.cancel()
            self._expire(cohort)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
