"""Old call forms kept working for one release, with a ``DeprecationWarning`` naming the new one.

Judges now take ``(client, criteria=None, *, ...)`` and clients ``(model, *, base_url=...,
api_key=..., ...)``; earlier releases took more positional arguments, each class different ones.
:func:`legacy_positionals` maps those extra positionals onto the keywords they meant.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["legacy_names", "legacy_positionals"]

F = TypeVar("F", bound=Callable[..., None])


def legacy_positionals(*names: str, after: int) -> Callable[[F], F]:
    """Accept ``names`` positionally after the first ``after`` arguments, with a warning.

    ``RubricJudge(client, criteria, (1, 10))`` (``after=2``: ``scale=`` is meant) or
    ``AnthropicClient(model, key)`` (``after=1``: ``api_key=``) keep working until the next release.
    """

    def decorate(init: F) -> F:
        @functools.wraps(init)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
            if len(args) > after:
                extra = args[after:]
                if len(extra) > len(names):
                    raise TypeError(
                        f"{type(self).__name__}() takes at most {after + len(names)} positional "
                        f"arguments after self ({len(args)} given)"
                    )
                given = names[: len(extra)]
                for key in given:
                    if key in kwargs:
                        raise TypeError(f"{type(self).__name__}() got {key!r} twice")
                warnings.warn(
                    f"{type(self).__name__}: pass {', '.join(given)} by keyword "
                    f"({', '.join(f'{k}=...' for k in given)}); positional use is deprecated "
                    "and stops working in the next release",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs.update(zip(given, extra, strict=True))
                args = args[:after]
            init(self, *args, **kwargs)

        wrapper.__legacy_positionals__ = (after, names)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def legacy_names(init: Callable[..., Any]) -> tuple[int, tuple[str, ...]]:
    """``(after, names)`` of an ``__init__`` decorated with :func:`legacy_positionals`, else
    ``(0, ())`` — so that replay pickling can tell which positional argument was a secret."""
    found: tuple[int, tuple[str, ...]] = getattr(init, "__legacy_positionals__", (0, ()))
    return found
