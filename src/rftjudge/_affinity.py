"""One verdict's requests as one conversation: its follow-ups go where its first request went.

A judge's exact reads and re-asks extend the conversation of the verdict just written. They are
cheap for the server only where that conversation is still cached: the replica of an endpoint pool
that answered it, and on llama.cpp's server the slot that computed it (each slot keeps its own
prefix cache). :func:`conversation` marks the requests of one verdict; the layers that choose a
replica or a slot remember their choice in the :class:`Conversation` and follow it for
``follow_up`` requests.

Where the choice is an exclusive lease (a llama.cpp slot pinned by the client), the conversation
holds it until it ends, so that no other verdict takes the slot between a verdict and its reads.
The conversation is task-local (a ``ContextVar``): tasks started inside it, the reads gathered
after a verdict, share it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

__all__ = ["Conversation", "conversation", "current_conversation", "in_conversation"]

T = TypeVar("T")
P = ParamSpec("P")

_CURRENT: ContextVar[Conversation | None] = ContextVar("rftjudge_conversation", default=None)


class Conversation:
    """What one conversation's requests were given, by whoever gave it (a router, a slot pool)."""

    __slots__ = ("_chosen", "_closed", "_releases")

    def __init__(self) -> None:
        self._chosen: dict[object, object] = {}
        self._releases: list[Callable[[], None]] = []
        self._closed = False

    def chosen(self, owner: object) -> object | None:
        """What ``owner`` gave this conversation last (None: nothing yet, or still being taken)."""
        value = self._chosen.get(owner)
        return None if isinstance(value, asyncio.Future) else value

    def note(self, owner: object, value: object) -> None:
        """Remember what ``owner`` gave the latest request (a replica may change on failover)."""
        self._chosen[owner] = value

    async def hold(
        self, owner: object, take: Callable[[], Awaitable[T]], give: Callable[[T], None]
    ) -> T:
        """``owner``'s lease for this conversation: taken once, by the first request that needs
        it (others wait for that one), given back when the conversation ends."""
        while True:
            value = self._chosen.get(owner)
            if value is None:
                break
            if not isinstance(value, asyncio.Future):
                return value  # type: ignore[return-value]
            await asyncio.wait([value])  # another request is taking it; its outcome is not ours
        pending: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._chosen[owner] = pending
        try:
            lease = await take()
        except BaseException:
            self._chosen.pop(owner, None)  # close() may have cleared it meanwhile
            raise
        finally:
            pending.set_result(None)
        if self._closed:  # ended while this was taken (a task outliving it): nobody would give it back
            give(lease)
            return lease
        self._chosen[owner] = lease
        self._releases.append(lambda: give(lease))
        return lease

    def close(self) -> None:
        """Give back every lease, last taken first."""
        self._closed = True
        while self._releases:
            self._releases.pop()()
        self._chosen.clear()


def current_conversation() -> Conversation | None:
    return _CURRENT.get()


@contextmanager
def conversation() -> Iterator[Conversation]:
    """Requests sent in this context are one conversation; inside another one, that one."""
    current = _CURRENT.get()
    if current is not None:
        yield current
        return
    created = Conversation()
    token = _CURRENT.set(created)
    try:
        yield created
    finally:
        _CURRENT.reset(token)
        created.close()


def in_conversation(
    func: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Run each call of the coroutine function ``func`` as one conversation (or in the caller's)."""

    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        # conversation() spelled out: this runs twice per judgment, a generator context costs more
        if _CURRENT.get() is not None:
            return await func(*args, **kwargs)
        created = Conversation()
        token = _CURRENT.set(created)
        try:
            return await func(*args, **kwargs)
        finally:
            _CURRENT.reset(token)
            created.close()

    return wrapper
