"""Run rftjudge's async core from synchronous code, whether or not an event loop is running.

``asyncio.run`` fails inside a running loop (Jupyter, TRL's reward thread) and, called per request,
would create a new loop each time, so every sync call would open a fresh connection pool. Instead,
synchronous calls are handed to one long-lived event loop running in a daemon thread (a "portal"),
which keeps connections alive between calls and works from any thread, including one that is
running its own event loop.

The portal is created lazily on the first synchronous call; nothing happens at import time.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Protocol, TypeVar

__all__ = ["close_with_loop", "run_sync"]


class _Closable(Protocol):
    async def aclose(self) -> None: ...


T = TypeVar("T")


class _Portal:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._resources: weakref.WeakSet[Any] = weakref.WeakSet()

    def adopt(self, loop: asyncio.AbstractEventLoop, resource: _Closable) -> None:
        """Close ``resource`` (a connection pool on the portal loop) when the portal closes."""
        if loop is self._loop:
            self._resources.add(resource)

    async def _close_resources(self) -> None:
        for resource in list(self._resources):
            with contextlib.suppress(Exception):
                await resource.aclose()

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=self._serve, args=(loop,), name="rftjudge-portal", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self.loop()
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(
                "a synchronous rftjudge method was called from inside rftjudge's own event loop; "
                "use the async method (await judge.areward(...)) instead"
            )
        outcome: concurrent.futures.Future[T] = concurrent.futures.Future()
        unwound = threading.Event()
        tasks: list[asyncio.Task[T]] = []

        def finish(task: asyncio.Task[T]) -> None:
            if task.cancelled():
                outcome.set_exception(concurrent.futures.CancelledError())
            elif (error := task.exception()) is not None:
                outcome.set_exception(error)
            else:
                outcome.set_result(task.result())
            unwound.set()

        def start() -> None:
            task = loop.create_task(coro)
            tasks.append(task)
            task.add_done_callback(finish)

        def stop() -> None:  # queued after start(), so the task exists
            tasks[0].cancel()

        loop.call_soon_threadsafe(start)
        try:
            return outcome.result()
        except BaseException:
            # KeyboardInterrupt in the caller: cancel the work on the portal so that no request
            # keeps running (and billing) in the background, and wait (briefly) until it has
            # unwound, so that its connections are closed by the time the caller sees the interrupt.
            if not unwound.is_set():
                loop.call_soon_threadsafe(stop)
                unwound.wait(_UNWIND_S)
            raise

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if self._resources and loop.is_running():
            # Close the pools opened by synchronous calls, so that interpreter exit does not
            # print aiohttp's "Unclosed client session" warnings for each of them.
            done = asyncio.run_coroutine_threadsafe(self._close_resources(), loop)
            with contextlib.suppress(Exception):
                done.result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not loop.is_running():
            loop.close()


_UNWIND_S = 5.0
"""How long an interrupted synchronous call waits for its cancelled work to unwind."""

_PORTAL = _Portal()
atexit.register(_PORTAL.close)


def close_with_loop(
    loop: asyncio.AbstractEventLoop,
    resource: _Closable,
    on_closed: Callable[[], None] | None = None,
) -> object:
    """Close ``resource`` (a connection pool on ``loop``) when ``loop`` shuts down.

    Called from a coroutine running on ``loop``. An async generator started here is registered
    with the loop, and ``asyncio.run()`` closes every such generator before it closes the loop —
    so a script that runs ``asyncio.run(judge.areward_batch(...))`` and never calls ``aclose()``
    has its pool closed cleanly instead of aiohttp's "Unclosed client session" errors at exit.
    The loop holds the generator weakly: keep the returned object as long as ``resource`` lives.
    The portal's loop never shuts down that way: it closes what it adopted when the portal closes,
    at exit. ``on_closed`` runs once the resource is closed: the owner drops what it kept for
    ``loop`` there, so that a finished loop and its closed pool can be freed.
    """
    _PORTAL.adopt(loop, resource)  # only if it is the portal's loop
    closer = _close_at_shutdown(resource, on_closed)
    # Asking for the first item is what registers the generator with the running loop (its
    # asyncgen hooks are per thread: this must run on the loop's thread, as it does here).
    started = asyncio.ensure_future(closer.__anext__(), loop=loop)
    return closer, started


async def _close_at_shutdown(
    resource: _Closable, on_closed: Callable[[], None] | None
) -> AsyncIterator[None]:
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            await resource.aclose()
        if on_closed is not None:
            on_closed()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on the portal loop and return its result (or raise its error)."""
    return _PORTAL.run(coro)
