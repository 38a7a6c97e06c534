"""Credentials held as secrets: a client attribute that stores a ``pydantic.SecretStr``.

A plain ``self._api_key = "sk-..."`` shows the key to anything that looks at the object — ``vars``,
a debugger, an experiment tracker that logs the reward function's attributes, a pickled config.
:class:`SecretField` keeps the code that uses a key unchanged (``self._api_key = key`` stores,
``self._api_key`` reads the string, where a request header is built) while the instance holds only a
``SecretStr``, whose ``str``/``repr`` are masked. Clients build their auth headers per request from
it, so no header dict with the key in it is kept either; ``secrets()`` lists the values to scrub.
"""

from __future__ import annotations

from typing import Any, overload

from pydantic import SecretStr

__all__ = ["SecretField"]


class SecretField:
    """A descriptor: assign a ``str`` (or None), read it back; the instance stores a SecretStr."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_{name.lstrip('_')}_secret"

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> SecretField: ...

    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> str | None: ...

    def __get__(self, obj: object | None, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        secret: SecretStr | None = vars(obj).get(self._slot)
        return secret.get_secret_value() if secret is not None else None

    def __set__(self, obj: object, value: str | None) -> None:
        vars(obj)[self._slot] = SecretStr(value) if value else None
