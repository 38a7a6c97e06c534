"""Response caches for judge clients: ``OpenAIClient(..., cache=MemoryCache())``.

A training run judges the same (prompt, response) pairs again and again — across epochs, across
reward functions sharing a judge, across a restart. With a deterministic judge (temperature 0) the
answer is the same, so paying for it again is waste.

The key is a SHA-256 of the *final provider request*: URL and JSON body bytes, i.e. model, rendered
messages, sampling parameters and schema — never the headers, so API keys (and per-attempt
signatures) are not part of it; secrets are also scrubbed from the URL and body before hashing, so
rotating a key keeps the cache valid. The value is the provider's response body (scrubbed too),
parsed again by the client on a hit. Clients store only successful, complete answers; failures are
never cached. Sampled requests (temperature > 0) are cached only with ``cache_sampled=True``.

- :class:`MemoryCache`: a bounded LRU dictionary for one process.
- :class:`SQLiteCache`: a file on disk (standard-library ``sqlite3`` in WAL mode), safe for several
  processes at once — the ranks of a multi-GPU run can share one file — and kept across runs.

Any object with ``get(key) -> str | None`` and ``set(key, value)`` works (:class:`Cache`). Clients
call a cache off the event loop, each call within ``io_timeout`` seconds (then the judgment goes on
without the cache, counted in ``stats.cache_skipped``), unless it says ``blocking = False``
(:mod:`rftjudge.clients._cache_io`).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ._errors import ConfigurationError
from ._rebuild import Rebuildable

if TYPE_CHECKING:
    import sqlite3

__all__ = ["Cache", "MemoryCache", "SQLiteCache", "cache_key"]

_KEY_VERSION = b"rftjudge-cache/1\n"


@runtime_checkable
class Cache(Protocol):
    """What a client needs from a cache. Both calls may be made from several threads."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str) -> None: ...


def cache_key(url: str, content: bytes) -> str:
    """The cache key of a provider request: hex SHA-256 of its URL and body bytes."""
    digest = hashlib.sha256(_KEY_VERSION)
    digest.update(url.encode())
    digest.update(b"\n")
    digest.update(content)
    return digest.hexdigest()


class MemoryCache(Rebuildable):
    """A least-recently-used cache of at most ``maxsize`` responses, in this process's memory."""

    blocking = False  # called inline on the event loop: a lookup is a dict access

    def __init__(self, maxsize: int = 10_000) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ConfigurationError(f"MemoryCache: maxsize must be an int >= 1, got {maxsize!r}")
        self.maxsize = maxsize
        self._data: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def set(self, key: str, value: str) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"MemoryCache(maxsize={self.maxsize}, size={len(self)})"


class SQLiteCache(Rebuildable):
    """A persistent cache in one SQLite file, shareable by several processes.

    WAL mode lets readers proceed while one process writes; ``timeout`` is how long a writer waits
    for another's lock. The connection is opened lazily and re-opened after a ``fork`` (a SQLite
    connection must not cross one). Entries never expire; delete the file to start afresh.

    Clients call it in worker threads, never on the event loop; a call not finished within
    ``io_timeout`` seconds (another process holding the write lock) is given up — a miss, or a
    skipped write — and counted in the client's ``stats.cache_skipped``.
    """

    blocking = True

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = 30.0, io_timeout: float = 1.0
    ) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise ConfigurationError(f"SQLiteCache: {self.path} is a directory; give a file path")
        if not (isinstance(io_timeout, int | float) and io_timeout > 0):
            raise ConfigurationError(
                f"SQLiteCache: io_timeout must be > 0 seconds, got {io_timeout!r}"
            )
        self.timeout = float(timeout)
        self.io_timeout = float(io_timeout)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        import sqlite3  # lazily: `import rftjudge` stays light

        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        # Switching a new file to WAL needs an exclusive lock, and SQLite does not run the busy
        # handler for it: two processes opening the cache at once get "database is locked" at
        # once. Retry until the timeout instead.
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        conn.execute("PRAGMA synchronous=NORMAL")  # a cache may lose its last writes on power loss
        conn.execute(
            "CREATE TABLE IF NOT EXISTS responses "
            "(key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
        )
        self._conn, self._pid = conn, os.getpid()
        return conn

    def get(self, key: str) -> str | None:
        with self._lock:
            row = (
                self._connection()
                .execute("SELECT value FROM responses WHERE key = ?", (key,))
                .fetchone()
            )
        return None if row is None else str(row[0])

    def set(self, key: str, value: str) -> None:
        with self._lock:
            self._connection().execute(
                "INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)",
                (key, value, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            row = self._connection().execute("SELECT COUNT(*) FROM responses").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __repr__(self) -> str:
        return f"SQLiteCache({str(self.path)!r})"
