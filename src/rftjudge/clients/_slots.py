"""Client-assigned llama.cpp slots: a verdict and its follow-ups computed in one slot.

llama.cpp's server keeps a prefix cache per slot and, left to choose, gives a request any idle
slot. An exact read sent after its verdict then finds that slot taken by a queued verdict and
evaluates its whole prompt again (``benchmarks/slot_cache.py`` measured 92.6 % of a read's prompt
reused, +44 % wall time). The server takes ``id_slot`` in the request body, and waits for that
slot when it is busy, so the client can pin instead: :class:`SlotPool` leases one slot per
conversation (:mod:`rftjudge._affinity`: a verdict, its reads and re-asks), and nobody else's
request goes to it until the conversation ends. A request outside any conversation leases a slot
for itself alone.

Which free slot: the one whose last request shares the longest beginning with this one (what
llama.cpp does by itself when it chooses: a GRPO group's verdicts share the rubric, the question
and the reference, so the next verdict evaluates only its response), the least recently used
among equals.

A slot is leased before the request waits for the client's concurrency limit, never after: a
request holding that limit never waits for a slot, so a conversation's follow-ups cannot be
stuck behind requests that wait for its slot.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .._affinity import current_conversation
from .._errors import ConfigurationError
from .._limits import ConcurrencyLimiter

__all__ = ["SlotPool", "with_slot"]


class SlotPool:
    """``count`` slots, each leased to one conversation (or lone request) at a time, shared by
    every thread and event loop of the client."""

    def __init__(self, count: int) -> None:
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ConfigurationError(
                f"slots must be an int >= 1 (the server's slots); got {count!r}"
            )
        self.count = count
        self._limiter = ConcurrencyLimiter(count)
        self._free: deque[int] = deque(range(count))
        self._last: dict[int, bytes] = {}  # each slot's last first request: what it has cached
        self._lock = threading.Lock()

    @asynccontextmanager
    async def lease(self, content: bytes = b"") -> AsyncIterator[int]:
        """The slot for one request (``content``: its body): its conversation's, else one of its
        own while it runs."""
        current = current_conversation()
        if current is not None:
            yield await current.hold(self, lambda: self._take(content), self._give)
            return
        slot = await self._take(content)
        try:
            yield slot
        finally:
            self._give(slot)

    @property
    def leased(self) -> int:
        with self._lock:
            return self.count - len(self._free)

    async def _take(self, content: bytes) -> int:
        await self._limiter.acquire()
        with self._lock:  # one free slot per permit: never empty here
            slot = max(self._free, key=lambda s: _shared(self._last.get(s, b""), content))
            self._free.remove(slot)  # max keeps the first of equals: the least recently used
            if content:
                self._last[slot] = content
            return slot

    def _give(self, slot: int) -> None:
        with self._lock:
            self._free.append(slot)  # to the back: the least recently used is leased next
        self._limiter.release()

    def __repr__(self) -> str:
        return f"SlotPool(count={self.count}, leased={self.leased})"


def _shared(a: bytes, b: bytes) -> int:
    """How many leading bytes ``a`` and ``b`` share (binary search on slices: C-speed compares)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def with_slot(content: bytes, slot: int) -> bytes:
    """``content`` (a JSON object) with ``"id_slot": slot`` added, without decoding it again."""
    return b'%s,"id_slot":%d}' % (content.rstrip()[:-1], slot)
