"""A concurrency limit that holds across threads and event loops.

``asyncio.Semaphore`` belongs to one event loop, but one client is used from several: the portal
loop of the synchronous API, TRL's reward-loop thread, a user's own ``asyncio.run``. The limit a
user sets (``max_concurrency``) is a promise about the judge server's load, so it must count every
request in flight from every loop. Waiters are woken first-in first-out on their own loop.

The limit can be changed at run time (:meth:`ConcurrencyLimiter.set_limit`), which is what adaptive
(AIMD) concurrency control builds on.

**Follow-ups go first.** A request that extends the conversation of one just answered (a judge's
exact read of its own verdict, a re-ask) is cheap for the server only while that conversation is
still in its prefix cache; behind a queue of first requests it is evicted by the time it goes out.
Inside :func:`ahead_of_queue` a waiter joins a second queue that is served before the first-in
first-out one.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar

__all__ = ["ConcurrencyLimiter", "ahead_of_queue"]

# Task-local: set by the send shell around one request's attempts, read by acquire in that task.
_AHEAD: ContextVar[bool] = ContextVar("rftjudge_ahead_of_queue", default=False)


@contextmanager
def ahead_of_queue(on: bool = True) -> Iterator[None]:
    """Slots acquired in this context (this task) are granted before queued ordinary waiters."""
    token = _AHEAD.set(on)
    try:
        yield
    finally:
        _AHEAD.reset(token)


class ConcurrencyLimiter:
    """At most ``limit`` holders at once, shared by every thread and event loop."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {limit}")
        self._limit = limit
        self._in_use = 0
        self._lock = threading.Lock()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()
        self._urgent: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_use

    def set_limit(self, limit: int) -> None:
        """Change the limit; holders above a lowered limit finish normally."""
        with self._lock:
            self._limit = max(1, limit)
            self._wake_locked()

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._in_use < self._limit and not self._waiters and not self._urgent:
                self._in_use += 1
                return
            fut: asyncio.Future[None] = loop.create_future()
            entry = (loop, fut)
            queue = self._urgent if _AHEAD.get() else self._waiters
            queue.append(entry)
        try:
            await fut
        except asyncio.CancelledError:
            with self._lock:
                if entry in queue:
                    queue.remove(entry)
                    raise
            if fut.done() and not fut.cancelled():
                self.release()  # the slot was granted just before the cancellation landed
            # otherwise a grant is on its way and _grant gives the slot back
            raise

    def release(self) -> None:
        with self._lock:
            self._in_use -= 1
            self._wake_locked()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    def _wake_locked(self) -> None:
        while (self._urgent or self._waiters) and self._in_use < self._limit:
            loop, fut = (self._urgent or self._waiters).popleft()
            self._in_use += 1  # reserved for this waiter until _grant runs on its loop
            try:
                loop.call_soon_threadsafe(self._grant, fut)
            except RuntimeError:  # the waiter's loop is closed: nobody will take the slot
                self._in_use -= 1

    def _grant(self, fut: asyncio.Future[None]) -> None:
        if fut.done():  # cancelled while the grant was in transit
            self.release()
        else:
            fut.set_result(None)
