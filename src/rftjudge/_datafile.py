"""Config files are data, not code: bounded reading of YAML/TOML/JSON documents.

YAML aliases let a few hundred bytes stand for billions of values (the "billion laughs" bomb:
each level of ``&a [*b, *b, ...]`` multiplies the size by ten). PyYAML builds such a document
cheaply — the aliases are shared references — but anything that walks it afterwards (validation,
the config's fingerprint, ``json.dumps``) pays for every expanded value. A judge config is a few
dozen values, so :func:`check_document` sizes the parsed document as it would be expanded (each
shared part once, from a memo) and refuses it past :data:`MAX_VALUES` (a self-referencing alias
is infinite and is refused the same way). :data:`MAX_BYTES` caps the file
before it is parsed at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from ._errors import ConfigurationError

__all__ = ["MAX_BYTES", "MAX_VALUES", "check_document", "read_capped"]

MAX_BYTES = 1 << 20
"""The largest config file read (1 MiB; an inline template of a few pages is well under it)."""

MAX_VALUES = 100_000
"""The most values (mapping keys, mapping values and list items, aliases expanded) a config holds."""


def read_capped(file: Path) -> str:
    """The text of ``file``; a file over :data:`MAX_BYTES` is refused after reading only that much.

    Raises OSError as ``open`` does (the caller words it).
    """
    with file.open(encoding="utf-8") as stream:
        text = stream.read(MAX_BYTES + 1)
    if len(text) > MAX_BYTES:
        raise ConfigurationError(
            f"{file}: the judge config is over {MAX_BYTES:,} characters; a config holds "
            "settings, not data (point `template` at a file instead of inlining a large one)"
        )
    return text


def check_document(data: object, source: str) -> None:
    """Refuse a parsed document that expands to more than :data:`MAX_VALUES` values.

    Each distinct list or mapping is sized once (shared ones — aliases — from a memo), so the check
    costs the size of the document as written, however large it would be expanded.
    """
    try:
        _expanded_size(data, {}, set(), source)
    except RecursionError:
        raise ConfigurationError(f"{source}: the judge config is nested too deeply") from None


def _expanded_size(value: object, sizes: dict[int, int], active: set[int], source: str) -> int:
    if not isinstance(value, Mapping | list | tuple):
        return 0
    key = id(value)
    if key in sizes:
        return sizes[key]
    if key in active:
        _too_large(source)  # it contains itself: infinite once expanded
    active.add(key)
    children: list[Any] = (
        [*value.keys(), *value.values()] if isinstance(value, Mapping) else list(value)
    )
    total = len(children)
    for child in children:
        total += _expanded_size(child, sizes, active, source)
        if total > MAX_VALUES:
            _too_large(source)
    active.discard(key)
    sizes[key] = total
    return total


def _too_large(source: str) -> NoReturn:
    raise ConfigurationError(
        f"{source}: the judge config expands to more than {MAX_VALUES:,} values "
        "(YAML aliases repeating data, or a self-referencing alias); write it out plainly"
    )
