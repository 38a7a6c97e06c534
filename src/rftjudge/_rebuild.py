"""Pickling by constructor replay, so that judges can travel to other processes.

Ray (``rftjudge.integrations.ray``, veRL's and OpenRLHF's reward workers) pickles the reward
functions it is given (closures by value, with cloudpickle); ``multiprocessing`` and
``torch.multiprocessing`` pickle the objects sent to workers. A judge, though, holds live
resources that cannot travel: connection pools bound to one event loop, locks, an SQLite connection,
Redis leases, compiled templates and verdict models. An instance of a :class:`Rebuildable` class
therefore pickles as the constructor call that made it: the receiving process calls the constructor
again with the same arguments and gets a fresh, equivalent object (its own pools, counters at zero).
Objects shared by several judges (one client behind two judges) stay shared after unpickling,
because pickle sends each object once.

What travels is what was passed: an API key given as an argument — by keyword or by position —
is held as a ``SecretStr`` in the recipe (never a plain string in ``vars()``) and travels in plain
text inside the pickle; a key read from the environment is read again from the receiving process's
environment. Attributes changed after construction do not travel.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from ._deprecation import legacy_names

__all__ = ["Rebuildable", "recipe"]

# Constructor arguments that change how a judgment is fetched, not what it says (nor secrets).
_OPERATIONAL = frozenset(
    {
        "api_key",
        "headers",
        "max_concurrency",
        "slots",
        "timeout",
        "max_retries",
        "retry_policy",
        "limits",
        "cache",
        "cache_sampled",
        "coalesce",
        "prices",
        "http2",
        "batch_deadline",
        "on_error",
    }
)


class Rebuildable:
    """Mix-in: instances pickle (and ``copy.deepcopy``) as a replay of their constructor call."""

    _rebuild_args: tuple[tuple[Any, ...], dict[str, Any]]

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        self = super().__new__(cls)
        # Secrets are held as SecretStr here too, as the clients hold them: never a plain string
        # in an attribute, a repr or a traceback's locals.
        secret = _secret_positions(cls)
        hidden = tuple(_hide("api_key", a) if i in secret else a for i, a in enumerate(args))
        self._rebuild_args = (hidden, {k: _hide(k, v) for k, v in kwargs.items()})
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        args, kwargs = self._rebuild_args
        self._check_portable(kwargs)
        return (_rebuild, (type(self), args, kwargs))

    def _check_portable(self, kwargs: dict[str, Any]) -> None:
        """Raise a TypeError naming an argument that cannot be sent to another process."""


_SECRETS = frozenset(
    {
        "api_key",
        "azure_ad_token",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "token",
        "password",
    }
)


def _is_secret(name: str) -> bool:
    return name in _SECRETS


def _hide(name: str, value: Any) -> Any:
    from pydantic import SecretStr

    return SecretStr(value) if isinstance(value, str) and _is_secret(name) else value


def _secret_positions(cls: type[Any]) -> frozenset[int]:
    """Indexes of the positional constructor parameters that hold secrets (``api_key``...)."""
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # after self
    except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
        return frozenset()
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    found = {i for i, p in enumerate(params) if p.kind in positional and _is_secret(p.name)}
    # Arguments still accepted positionally for one release (now keyword-only) count too.
    after, names = legacy_names(cls.__init__)
    found.update(after + k for k, name in enumerate(names) if _is_secret(name))
    return frozenset(found)


def _rebuild(cls: type[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    from pydantic import SecretStr

    secret = _secret_positions(cls)
    args = tuple(
        a.get_secret_value() if isinstance(a, SecretStr) and i in secret else a
        for i, a in enumerate(args)
    )
    shown = {
        k: v.get_secret_value() if isinstance(v, SecretStr) and _is_secret(k) else v
        for k, v in kwargs.items()
    }
    return cls(*args, **shown)


def recipe(obj: Any) -> Any:
    """A JSON-able description of how ``obj`` was built, without operational settings or secrets.

    Two judges with the same recipe give the same verdicts: ``rftjudge.integrations.ray`` keys
    resumable output on a digest of it, as ``rftjudge score`` does on a config's fingerprint.
    """
    from pydantic import BaseModel

    if isinstance(obj, Rebuildable):
        args, kwargs = obj._rebuild_args
        secret = _secret_positions(type(obj))
        return {
            "class": f"{type(obj).__module__}.{type(obj).__qualname__}",
            "args": [None if i in secret else recipe(a) for i, a in enumerate(args)],
            "kwargs": {
                k: recipe(v)
                for k, v in sorted(kwargs.items())
                if k not in _OPERATIONAL and not _is_secret(k)
            },
        }
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if obj is None or isinstance(obj, bool | int | float):
        return obj
    if isinstance(obj, str | Path):
        path = Path(obj)
        if str(obj).endswith(".j2") and "\n" not in str(obj) and path.is_file():
            return {"template": path.read_text(encoding="utf-8")}  # an edited file re-judges
        return str(obj)
    if isinstance(obj, list | tuple):
        return [recipe(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): recipe(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    return f"<{type(obj).__module__}.{type(obj).__qualname__}>"
