"""Deterministic guards that catch content-free "master key" responses before a judge sees them.

LLM judges give high scores to responses that contain no answer at all — a lone ``:`` or ``.``, or
a reasoning opener such as ``Thought process:`` or ``Let's solve this problem step by step.`` (Zhao
et al. 2025, "One Token to Fool LLM-as-a-Judge": false-positive rates up to 80-90 % on some judges).
A policy under RL finds such keys quickly, and then the whole reward is hacked. The bundled prompts
tell the judge to fail non-answers, but an instruction is only as good as the judge; a cheap exact
check is not fooled.

:class:`NonAnswerGuard` is deliberately narrow, so that it never fails a real answer: it flags a
response only when, after Unicode normalisation, nothing is left once whitespace, punctuation,
symbols, empty markup tags and a fixed list of reasoning openers / answer labels are removed. ``"4"``,
``"No."``, ``"Thought process: 2 + 2 = 4"`` all pass through to the judge; ``""``, ``":"``,
``"..."``, ``"Thought process:"``, ``"Let's think step by step."``, ``"Solution"``, ``"解"``,
``"**Final answer:**"`` do not.

Judges use it through ``guard=`` (on by default): a flagged response gets score 0 on every criterion
without a judge call, and is counted in ``judge.stats.guarded`` by reason.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from ._errors import ConfigurationError

__all__ = ["DEFAULT_OPENERS", "Guard", "NonAnswerGuard"]

DEFAULT_OPENERS: tuple[str, ...] = (
    # reasoning openers (the paper's master keys and their common variants)
    r"thought process",
    r"thinking process",
    r"reasoning process",
    r"(?:let ?s|let us|i will|i ll|we will|we ll|now let ?s) (?:think|solve|work|go|reason|break)"
    r"(?: (?:it|this|that|the|problem|question|task|through|out|down|carefully|about|one))*"
    r"(?: step by step)?",
    r"step by step",
    r"let me think(?: about (?:it|this))?",
    r"let me (?:solve|work through|break down) (?:it|this)(?: problem| question)?",
    r"step \d+",
    # answer labels with no answer after them
    r"(?:the )?(?:final |short )?(?:answer|solution|response|result|conclusion)(?: is)?",
    r"here (?:is|s) (?:the|my) (?:answer|solution|response)",
    r"explanation",
    r"analysis",
    r"reasoning",
    # the paper's multilingual keys
    r"解",
    r"解答",
    r"答案",
    r"思路",
    r"かいせつ",
    r"解説",
    r"respuesta",
    r"solución",
    r"réponse",
    r"lösung",
    r"antwort",
)
"""Phrases (regular expressions over normalised text) that are not an answer on their own."""

# Linear time on any text: after the tag name comes ">" or whitespace, so "\w+" has one way to
# match ("<" + "a" * 40_000 took 7 s with a "[^<>]*" straight after the name: quadratic).
_EMPTY_TAG = re.compile(r"<\s*(\w+)(?:\s[^<>]*)?>\s*<\s*/\s*\1\s*>")
_LONE_TAG = re.compile(r"</?\s*(?:think|thinking|answer|response|solution|reasoning)\s*/?>")
_NOT_WORD = re.compile(r"[\W_]+")
_HAS_CONTENT = re.compile(r"[^\W_]")
_MAX_OPENER_TEXT = 400  # longer than any run of openers a non-answer needs; bounds the work


@runtime_checkable
class Guard(Protocol):
    """A deterministic pre-check: the reason a response is not worth judging, or None."""

    name: str

    def reason(self, response: str) -> str | None: ...


class NonAnswerGuard:
    """Flags empty, punctuation-only and opener-only responses (see the module docstring).

    ``openers`` replaces the default phrase list; ``extra_openers`` extends it. Phrases are regular
    expressions matched against the normalised response (lower case, punctuation turned into single
    spaces). Reasons: ``"empty"``, ``"no_content"`` (only punctuation, symbols or empty markup),
    ``"opener"`` (only reasoning openers / answer labels).

    A guard is also a :class:`~rftjudge.checks.Check`: ``guard(prompt, response, reference)`` is 1.0
    for an answer and 0.0 for a non-answer, so it can gate a :class:`~rftjudge.CompositeReward`.
    """

    def __init__(
        self,
        *,
        openers: Iterable[str] | None = None,
        extra_openers: Iterable[str] = (),
        name: str = "non_answer",
    ) -> None:
        phrases = [*(DEFAULT_OPENERS if openers is None else openers), *extra_openers]
        for phrase in phrases:
            if not isinstance(phrase, str) or not phrase.strip():
                raise ConfigurationError(
                    f"NonAnswerGuard openers must be non-empty strings; got {phrase!r}"
                )
        try:
            alternatives = "|".join(f"(?:{p})" for p in phrases)
            self._opener = re.compile(rf"(?:{alternatives})(?: |$)") if phrases else None
        except re.error as exc:
            raise ConfigurationError(f"NonAnswerGuard: invalid opener pattern: {exc}") from None
        self.name = name

    def reason(self, response: str) -> str | None:
        """Why ``response`` is not an answer (``"empty"``, ``"no_content"``, ``"opener"``), or None."""
        if not isinstance(response, str):
            raise ConfigurationError(
                f"NonAnswerGuard checks text; got {type(response).__name__} (convert it first)"
            )
        text = _normalise(response)
        if not text.strip():
            return "empty"
        text = _LONE_TAG.sub(" ", _EMPTY_TAG.sub(" ", text))
        if not _HAS_CONTENT.search(text):
            return "no_content"
        words = _NOT_WORD.sub(" ", text).strip()
        if (
            self._opener is not None
            and len(words) <= _MAX_OPENER_TEXT
            and self._only_openers(words)
        ):
            return "opener"
        return None

    def _only_openers(self, words: str) -> bool:
        # Phrase by phrase, first match wins: one regex with a repeated group would backtrack
        # exponentially on long near-misses, and a missed parse only lets a response through.
        assert self._opener is not None
        pos = 0
        while pos < len(words):
            match = self._opener.match(words, pos)
            if match is None or match.end() == pos:
                return False
            pos = match.end()
        return True

    def __call__(self, prompt: str, response: str, reference: str | None) -> float:
        return 0.0 if self.reason(response) is not None else 1.0

    def __repr__(self) -> str:
        return f"NonAnswerGuard(name={self.name!r})"


def _normalise(text: str) -> str:
    """NFKC, lower case, and no invisible format or control characters (they hide nothing here)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("\u2019", "'").replace("'", "")  # let's / let’s / lets
    if text.replace("\n", "").replace("\t", "").isprintable():
        return text  # the common case, at C speed: no Cc, Cf or Co character to drop
    return "".join(
        ch for ch in text if ch in "\n\t " or unicodedata.category(ch) not in ("Cc", "Cf", "Co")
    )


def resolve_guard(guard: object) -> Guard | None:
    """``guard=`` of a judge: True → :class:`NonAnswerGuard`, False/None → off, or a Guard."""
    if guard is True:
        return NonAnswerGuard()
    if guard is False or guard is None:
        return None
    if isinstance(guard, Guard):
        return guard
    raise ConfigurationError(
        "guard must be True, False, None or an object with .name and .reason(response) -> "
        f"str | None (e.g. NonAnswerGuard()); got {type(guard).__name__}"
    )
