"""Credentials held as secrets: a client attribute that stores a ``pydantic.SecretStr``; URLs
with their passwords redacted (a shared budget's ``redis://user:secret@host``).

A plain ``self._api_key = "sk-..."`` shows the key to anything that looks at the object — ``vars``,
a debugger, an experiment tracker that logs the reward function's attributes, a pickled config.
:class:`SecretField` keeps the code that uses a key unchanged (``self._api_key = key`` stores,
``self._api_key`` reads the string, where a request header is built) while the instance holds only a
``SecretStr``, whose ``str``/``repr`` are masked. Clients build their auth headers per request from
it, so no header dict with the key in it is kept either; ``secrets()`` lists the values to scrub.
"""

from __future__ import annotations

import re
from typing import Any, overload
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import SecretStr

__all__ = ["SecretField", "redact_url", "url_secrets"]

# redis-py reads a password from the query too (redis://host/0?password=...).
_QUERY_PASSWORD = re.compile(r"((?:^|&)password=)([^&]*)", re.IGNORECASE)


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


def redact_url(url: str) -> str:
    """``url`` without its passwords: in the user part (``redis://user:secret@host`` →
    ``redis://user:***@host``) and in the query (``?password=secret`` → ``?password=***``)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        user = f"{parts.username}:***" if parts.username else ":***"
        netloc = f"{user}@{host}"
    query = _QUERY_PASSWORD.sub(r"\1***", parts.query)
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def url_secrets(url: str) -> list[str]:
    """The passwords in ``url`` (user part and query, raw and decoded), to scrub from any text."""
    parts = urlsplit(url)
    found = [parts.password or ""]
    found += [m.group(2) for m in _QUERY_PASSWORD.finditer(parts.query)]
    found += [unquote(s) for s in found]
    return sorted({s for s in found if s}, key=len, reverse=True)
