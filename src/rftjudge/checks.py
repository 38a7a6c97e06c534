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
from ._jsonschema import schema_errors

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


_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n\s*```\s*$", re.DOTALL)


class JSONSchemaCheck:
    """1.0 when the response is JSON valid against ``schema``, else 0.0.

    ``allow_fences=True`` accepts a single fenced ```json block around the JSON. Validation covers
    the common JSON Schema subset (type, properties, required, additionalProperties, items, enum,
    const, minimum/maximum, minLength/maxLength, minItems/maxItems, anyOf/oneOf/allOf); the
    ``jsonschema`` package is used instead when installed and ``use_jsonschema=True``.
    """

    def __init__(
        self,
        schema: Mapping[str, Any],
        *,
        allow_fences: bool = True,
        use_jsonschema: bool = False,
        name: str = "json_schema",
    ) -> None:
        if not isinstance(schema, Mapping):
            raise ConfigurationError("JSONSchemaCheck needs a JSON schema (a dict)")
        self.schema = dict(schema)
        self.allow_fences = allow_fences
        self.name = name
        self._validator: Callable[[Any], bool] | None = None
        if use_jsonschema:
            try:
                import jsonschema
            except ImportError as exc:
                raise ConfigurationError(
                    "use_jsonschema=True needs the jsonschema package: pip install jsonschema"
                ) from exc
            validator = jsonschema.Draft202012Validator(self.schema)
            self._validator = validator.is_valid

    def errors(self, response: str) -> list[str]:
        """Why ``response`` fails (empty when it passes)."""
        text = response.strip()
        if self.allow_fences:
            match = _FENCE.match(text)
            if match:
                text = match.group(1)
        try:
            value = json.loads(text)
        except ValueError as exc:
            return [f"not JSON: {exc}"]
        if self._validator is not None:
            return [] if self._validator(value) else ["does not match the schema"]
        return schema_errors(value, self.schema)

    def __call__(self, prompt: str, response: str, reference: str | None) -> float:
        return 0.0 if self.errors(response) else 1.0


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
