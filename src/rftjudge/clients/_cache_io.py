"""Cache reads and writes that cannot stall the event loop: off the loop, within a time limit.

A :class:`~rftjudge.SQLiteCache` call waits for another process's write lock (SQLite's busy
timeout, 30 s by default); made on the event loop, that wait froze every judgment and every
deadline of the process. So a cache that declares ``blocking = True`` (the SQLite cache, and any
cache that does not say otherwise) is called in a small thread pool, and a call that has not
finished within the cache's ``io_timeout`` (default :data:`DEFAULT_IO_TIMEOUT_S`) is given up:
a read becomes a miss, a write is skipped — the judgment goes on without the cache — and
``stats.cache_skipped`` counts it. While every worker is stuck, calls are skipped at once (nothing
queues up behind a held lock). A cache is an optimisation: no judgment waits long for it.

In-memory caches (``blocking = False``: :class:`~rftjudge.MemoryCache`) are called inline, as
before: a thread hop would cost more than the lookup.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import NoReturn, TypeVar

from ..cache import Cache
from ._stats import ClientStats

__all__ = ["DEFAULT_IO_TIMEOUT_S", "CacheIO"]

logger = logging.getLogger("rftjudge")

T = TypeVar("T")

DEFAULT_IO_TIMEOUT_S = 1.0
_WORKERS = 4


class _Skipped(Exception):
    """The cache call was given up (too slow, or every worker busy)."""


class CacheIO:
    """``get``/``set`` on a cache for one client, never blocking its event loop for long."""

    def __init__(self, cache: Cache, stats: ClientStats) -> None:
        self.cache = cache
        self.stats = stats
        self.blocking = bool(getattr(cache, "blocking", True))
        self.timeout = float(getattr(cache, "io_timeout", DEFAULT_IO_TIMEOUT_S))
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._busy = 0

    async def get(self, key: str) -> str | None:
        """The cached text, or None (a miss, a failed read or a read given up)."""
        try:
            return await self._call(lambda: self.cache.get(key), "read")
        except _Skipped:
            return None
        except Exception as exc:
            logger.warning("rftjudge: cache read failed (%s: %s)", type(exc).__name__, exc)
            return None

    async def set(self, key: str, value: str) -> None:
        """Store ``value``; a failed or slow write is logged (or counted) and dropped."""
        try:
            await self._call(lambda: self.cache.set(key, value), "write")
        except _Skipped:
            pass
        except Exception as exc:  # a cache is an optimisation: never fail a judgment for it
            logger.warning("rftjudge: cache write failed (%s: %s)", type(exc).__name__, exc)

    async def _call(self, work: Callable[[], T], what: str) -> T:
        if not self.blocking:
            return work()
        with self._lock:
            if self._busy >= _WORKERS:  # every worker is stuck on the cache: do not queue
                self._skip(what, "every cache worker is still waiting")
            self._busy += 1
            if self._executor is None:
                self._executor = ThreadPoolExecutor(_WORKERS, thread_name_prefix="rftjudge-cache")
            executor = self._executor
        future = executor.submit(work)
        future.add_done_callback(self._done)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except asyncio.TimeoutError:
            self._skip(what, f"no answer within {self.timeout:g} s")

    def _done(self, _future: object) -> None:
        with self._lock:
            self._busy -= 1

    def _skip(self, what: str, why: str) -> NoReturn:
        self.stats.cache_skipped += 1
        if self.stats.cache_skipped == 1 or self.stats.cache_skipped % 1000 == 0:
            logger.warning(
                "rftjudge: cache %s skipped (%s; %d skipped so far): judging without the cache",
                what,
                why,
                self.stats.cache_skipped,
            )
        raise _Skipped

    def close(self) -> None:
        """Let the worker threads end (a call still blocked in the cache finishes on its own)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
