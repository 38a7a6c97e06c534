"""Checklist items that are programs (RLCF): a built-in deterministic check named by the data.

An item ``{"check": "regex", "pattern": "..."}`` is evaluated locally by one of
:mod:`rftjudge.checks`, costs no judge call, and mixes with judged items by weight. Only the checks
listed here can be named — data never brings code. A regex from data is limited in length; Python's
``re`` has no timeout, so rubric authors should still avoid nested quantifiers.

=============  ===========================================  =======================================
check          arguments                                    1.0 when
=============  ===========================================  =======================================
regex          ``pattern``, ``must_match`` (true),          the pattern is found (or, with
               ``ignore_case`` (false)                      ``must_match: false``, is not)
contains       ``text``, ``case_sensitive`` (false)         the response contains ``text``
not_contains   ``text``, ``case_sensitive`` (false)         it does not
json_schema    ``schema`` (optional), ``lenient`` (false)   the response is JSON (valid against it)
max_words      ``max``                                      at most ``max`` words
min_words      ``min``                                      at least ``min`` words
language       ``script`` ("latin", "cyrillic", "cjk"...)   share of letters in that script
non_empty      ``min_chars`` (1)                            at least that many non-space characters
=============  ===========================================  =======================================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .._errors import ConfigurationError
from ..checks import Check, JSONSchemaCheck, LanguageCheck, NonEmptyCheck, RegexCheck

__all__ = ["CHECKS", "build_check"]

MAX_PATTERN = 500


class _WordBound:
    """1.0 when the response has at most (``most=True``) or at least ``limit`` words."""

    def __init__(self, limit: int, *, most: bool) -> None:
        self.limit = limit
        self.most = most
        self.name = f"{'max' if most else 'min'}_words"

    def __call__(self, prompt: str, response: str, reference: str | None) -> float:
        count = len(response.split())
        return 1.0 if (count <= self.limit if self.most else count >= self.limit) else 0.0


def _int(spec: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"check {spec['check']!r} needs {key!r}: an integer >= 0; got {value!r}")
    return value


def _text(spec: Mapping[str, Any], key: str) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"check {spec['check']!r} needs {key!r}: non-empty text; got {value!r}")
    if len(value) > MAX_PATTERN:
        raise ValueError(f"check {spec['check']!r}: {key!r} longer than {MAX_PATTERN} characters")
    return value


def _flag(spec: Mapping[str, Any], key: str, default: bool) -> bool:
    value = spec.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"check {spec['check']!r}: {key!r} must be true or false; got {value!r}")
    return value


def _regex(spec: Mapping[str, Any]) -> Check:
    flags = re.IGNORECASE if _flag(spec, "ignore_case", False) else 0
    return RegexCheck(
        _text(spec, "pattern"), must_match=_flag(spec, "must_match", True), flags=flags
    )


def _contains(spec: Mapping[str, Any], *, present: bool) -> Check:
    flags = 0 if _flag(spec, "case_sensitive", False) else re.IGNORECASE
    name = "contains" if present else "not_contains"
    return RegexCheck(re.escape(_text(spec, "text")), must_match=present, flags=flags, name=name)


def _json_schema(spec: Mapping[str, Any]) -> Check:
    schema = spec.get("schema")
    if schema is not None and not isinstance(schema, Mapping):
        raise ValueError("check 'json_schema': 'schema' must be a JSON Schema object")
    return JSONSchemaCheck(schema, lenient=_flag(spec, "lenient", False))


CHECKS: Mapping[str, Callable[[Mapping[str, Any]], Check]] = {
    "regex": _regex,
    "contains": lambda spec: _contains(spec, present=True),
    "not_contains": lambda spec: _contains(spec, present=False),
    "json_schema": _json_schema,
    "max_words": lambda spec: _WordBound(_int(spec, "max"), most=True),
    "min_words": lambda spec: _WordBound(_int(spec, "min"), most=False),
    "language": lambda spec: LanguageCheck(spec.get("script", "latin")),
    "non_empty": lambda spec: NonEmptyCheck(_int(spec, "min_chars", 1)),
}


def build_check(spec: Mapping[str, Any]) -> Check:
    """The check an item names; ValueError (phrased for the row's error message) otherwise."""
    name = spec.get("check")
    if not isinstance(name, str) or name not in CHECKS:
        raise ValueError(f"unknown check {name!r} (one of {', '.join(sorted(CHECKS))})")
    try:
        return CHECKS[name](spec)
    except ConfigurationError as exc:  # e.g. an invalid regex or schema, found while building
        raise ValueError(f"check {name!r}: {exc}") from None
