"""Deterministic checks: cheap, exact reward components that need no judge.

A policy optimised against an LLM judge looks for its blind spots — length, repetition, broken
formats. Checks catch those exactly and for free, and as gates in a
:class:`~rftjudge.CompositeReward` they run *before* the judge, so a response that already failed a
hard requirement costs no judge call.

Every check is a callable ``check(prompt, response, reference) -> float`` in [0, 1] with a ``name``.
For scores 1 is good; for penalties (:class:`LengthPenalty`, :class:`RepetitionPenalty`) 1 is the
full penalty.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from ._errors import ConfigurationError
from ._jsonschema import unsupported_keywords, validation_errors
from .parsing import find_json_objects

__all__ = [
    "Check",
    "JSONSchemaCheck",
    "LanguageCheck",
    "LengthPenalty",
    "NonEmptyCheck",
    "RegexCheck",
    "RepetitionPenalty",
]


@runtime_checkable
class Check(Protocol):
    """A deterministic reward component."""

    name: str

    def __call__(self, prompt: str, response: str, reference: str | None) -> float: ...


_FENCE = re.compile(r"^```[A-Za-z0-9_-]*[ \t]*\n(?P<body>.*?)\n?```$", re.DOTALL)
_INVALID = object()


class JSONSchemaCheck:
    """1.0 when the response is JSON (valid against ``schema`` when one is given), else 0.0.

    The response must be one JSON value, optionally inside a single Markdown code fence;
    ``lenient=True`` accepts the last JSON object found anywhere in the text instead. Schemas in the
    common subset (see :mod:`rftjudge._jsonschema`) are checked without dependencies; a schema using
    other keywords is handed to the ``jsonschema`` package, or refused at construction when it is
    not installed — a constraint is never silently ignored.
    """

    def __init__(
        self,
        schema: Mapping[str, Any] | None = None,
        *,
        lenient: bool = False,
        name: str = "json_schema",
    ) -> None:
        self.schema = schema
        self.lenient = lenient
        self.name = name
        self._validate = _validator(schema) if schema is not None else None

    def errors(self, response: str) -> list[str]:
        """Why ``response`` fails (empty when it passes)."""
        value = _parse(response, self.lenient)
        if value is _INVALID:
            return ["not a JSON value"]
        if self._validate is None:
            return []
        return self._validate(value)

    def __call__(self, prompt: str, response: str, reference: str | None) -> float:
        return 0.0 if self.errors(response) else 1.0


def _parse(answer: str, lenient: bool) -> Any:
    text = answer.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group("body").strip()
    try:
        return json.loads(text)
    except ValueError:
        if lenient:
            found = find_json_objects(answer)
            if found:
                return found[-1]
        return _INVALID


def _validator(schema: Mapping[str, Any]) -> Callable[[Any], list[str]]:
    if not isinstance(schema, Mapping):
        raise ConfigurationError(
            f"schema must be a JSON Schema object; got {type(schema).__name__}"
        )
    unknown = unsupported_keywords(schema)
    if not unknown:
        return lambda value: validation_errors(value, schema)
    try:
        import jsonschema
    except ImportError:
        raise ConfigurationError(
            "the schema uses keywords rftjudge's built-in validator does not implement "
            f"({', '.join(sorted(unknown))}); pip install jsonschema to check it in full"
        ) from None
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    full = validator_cls(schema)
    return lambda value: [] if full.is_valid(value) else ["does not match the schema (jsonschema)"]


class RegexCheck:
    """1.0 when ``pattern`` is found in the response (or, with ``must_match=False``, when it is not)."""

    def __init__(
        self, pattern: str, *, must_match: bool = True, flags: int = 0, name: str = "regex"
    ):
        try:
            self.pattern = re.compile(pattern, flags)
        except re.error as exc:
            raise ConfigurationError(f"invalid regex {pattern!r}: {exc}") from None
        self.must_match = must_match
        self.name = name

    def __call__(self, prompt: str, response: str, reference: str | None) -> float:
        found = self.pattern.search(response) is not None
        return 1.0 if found == self.must_match else 0.0


class NonEmptyCheck:
    """1.0 when the response has at least ``min_chars`` non-space characters."""

    def __init__(self, min_chars: int = 1, *, name: str = "non_empty") -> None:
        self.min_chars = min_chars
        self.name = name

    def __call__(self, prompt: str, response: str, reference: str | None) -> float:
        return 1.0 if len("".join(response.split())) >= self.min_chars else 0.0


class LengthPenalty:
    """Soft overlong penalty (as in DAPO): 0 up to ``max_length - soft``, rising linearly to 1 at
    ``max_length``, 1 beyond. Length is counted by ``length_fn`` (characters by default; pass a
    tokenizer's ``lambda s: len(tok.encode(s))`` to count tokens)."""

    def __init__(
        self,
        max_length: int,
        soft: int = 0,
        *,
        length_fn: Callable[[str], int] = len,
        name: str = "overlong",
    ) -> None:
        if max_length <= 0 or soft < 0 or soft > max_length:
            raise ConfigurationError(
                "LengthPenalty needs max_length > 0 and 0 <= soft <= max_length"
            )
        self.max_length = max_length
        self.soft = soft
        self.length_fn = length_fn
        self.name = name

    def __call__(self, prompt: str, response: str, reference: str | None) -> float:
        length = self.length_fn(response)
        if length >= self.max_length:
            return 1.0
        start = self.max_length - self.soft
        if length <= start or self.soft == 0:
            return 0.0
        return (length - start) / self.soft


class RepetitionPenalty:
    """Share of repeated word n-grams: 0 for no repetition, towards 1 for a response that loops."""

    def __init__(self, ngram: int = 3, *, name: str = "repetition") -> None:
        if ngram < 1:
            raise ConfigurationError("RepetitionPenalty needs ngram >= 1")
        self.ngram = ngram
        self.name = name

    def __call__(self, prompt: str, response: str, reference: str | None) -> float:
        words = response.split()
        grams = [tuple(words[i : i + self.ngram]) for i in range(len(words) - self.ngram + 1)]
        if len(grams) < 2:
            return 0.0
        return 1.0 - len(set(grams)) / len(grams)


_SCRIPTS = {
    "latin": ("LATIN",),
    "cyrillic": ("CYRILLIC",),
    "greek": ("GREEK",),
    "arabic": ("ARABIC",),
    "hebrew": ("HEBREW",),
    "devanagari": ("DEVANAGARI",),
    "cjk": ("CJK", "HIRAGANA", "KATAKANA", "HANGUL"),
}


class LanguageCheck:
    """Share of the response's letters written in the expected script (e.g. "latin", "cjk").

    A dependency-free guard against language drift. For real language identification pass
    ``detector=lambda text: "en"``-style callable and ``language="en"``: the check is then 1.0 when
    the detector returns ``language``.
    """

    def __init__(
        self,
        script: str | None = "latin",
        *,
        language: str | None = None,
        detector: Callable[[str], str] | None = None,
        name: str = "language",
    ) -> None:
        if detector is None and script not in _SCRIPTS:
            raise ConfigurationError(f"script must be one of {sorted(_SCRIPTS)}; got {script!r}")
        if detector is not None and language is None:
            raise ConfigurationError("LanguageCheck(detector=...) needs language=...")
        self.script = script
        self.language = language
        self.detector = detector
        self.name = name

    def __call__(self, prompt: str, response: str, reference: str | None) -> float:
        if self.detector is not None:
            return 1.0 if self.detector(response) == self.language else 0.0
        letters = [ch for ch in response if ch.isalpha()]
        if not letters:
            return 0.0
        prefixes = _SCRIPTS[self.script or "latin"]
        hits = sum(unicodedata.name(ch, "").startswith(prefixes) for ch in letters)
        return hits / len(letters)
