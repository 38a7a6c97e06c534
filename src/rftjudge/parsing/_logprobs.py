"""Reading judges' token probabilities: which alternatives were possible where the verdict was written.

A sampled label or score throws away what the judge was unsure about; the token logprobs keep it. To
use them, find the token position where the label/score value was emitted (it is rarely the first
token: JSON keys and a rationale come first), then read the top alternatives at that position and keep
only the *valid* ones — llama.cpp and vLLM report logprobs before the grammar mask, so forbidden tokens
appear too — renormalising over what remains. Anything that does not line up (tokens that do not
concatenate to the text, no valid alternative at the position) returns ``None`` so that callers fall
back to the sampled value and count the fallback.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TypeVar

from .._types import LazyLogprobs, TokenLogprob

__all__ = ["distribution_at", "json_value_offset", "score_distribution", "token_index_at"]

V = TypeVar("V")

_STRIP = " \t\n\"'"


def token_index_at(logprobs: Sequence[TokenLogprob], text: str, offset: int) -> int | None:
    """Index of the token covering character ``offset`` of ``text``, or None if they do not align."""
    # Token texts only: materialising every token's alternatives is what a lazy list saves.
    texts = logprobs.texts() if isinstance(logprobs, LazyLogprobs) else [t.token for t in logprobs]
    joined = "".join(texts)
    base = 0
    if joined != text:
        base = joined.rfind(text) if text else -1  # the answer comes last (after any thinking)
        if base < 0:
            return None
    target = base + offset
    position = 0
    for index, token in enumerate(texts):
        end = position + len(token)
        if position <= target < end:
            return index
        position = end
    return None


def json_value_offset(text: str, key: str) -> int | None:
    """Character offset where the value of the *last* ``"key": value`` in ``text`` starts.

    String values point past the opening quote, so the offset lands on the label itself.
    """
    matches = list(re.finditer(r'"' + re.escape(key) + r'"\s*:\s*("?)', text))
    if not matches:
        return None
    return matches[-1].end()


def distribution_at(
    logprobs: Sequence[TokenLogprob], index: int, valid: Mapping[str, V]
) -> dict[V, float] | None:
    """Probabilities of the valid values at token ``index``, renormalised over the valid ones.

    ``valid`` maps a token's text (stripped of spaces and quotes) to the value it stands for. The
    sampled token counts as an alternative even when the provider left it out of ``top``.
    """
    token = logprobs[index]
    candidates = list(token.top)
    if all(t != token.token for t, _ in candidates):
        candidates.append((token.token, token.logprob))
    mass: dict[V, float] = {}
    seen: set[str] = set()
    for text, logprob in candidates:
        if text in seen or not math.isfinite(logprob):
            continue
        seen.add(text)
        value = valid.get(text.strip(_STRIP))
        if value is None:
            continue
        mass[value] = mass.get(value, 0.0) + math.exp(logprob)
    total = sum(mass.values())
    if total <= 0:
        return None
    return {value: p / total for value, p in mass.items()}


def score_distribution(
    logprobs: Sequence[TokenLogprob], index: int, valid: Mapping[str, float]
) -> dict[float, float] | None:
    """Distribution over valid score values emitted starting at token ``index``.

    Handles numbers split over tokens ("1" then "0" for 10): an alternative that is a strict prefix
    of a longer valid value is resolved with the next position's alternatives when the sampled token
    is that prefix (so the next position continues it); otherwise it counts as the value it spells.
    """
    token = logprobs[index]
    candidates = dict(token.top)
    candidates.setdefault(token.token, token.logprob)
    sampled = token.token.strip(_STRIP)
    # strict prefixes of longer valid values ("1" on a 1-10 scale): decided by the next token
    prefixes = {v[:i] for v in valid for i in range(1, len(v))}
    mass: dict[float, float] = {}
    for text, logprob in candidates.items():
        key = text.strip(_STRIP)
        if key not in valid and key not in prefixes:
            continue  # most of the top-k at a score position: punctuation, words, other numbers
        if not math.isfinite(logprob):
            continue
        p = math.exp(logprob)
        # " 1" and "1" both continue with the next token when "1" was written: a read that
        # continues the judge's tokens before " 1" is constrained to write "1"
        if key in prefixes and key == sampled and index + 1 < len(logprobs):
            _continue(mass, key, p, logprobs[index + 1], valid)
        elif key in valid:
            mass[valid[key]] = mass.get(valid[key], 0.0) + p
    total = sum(mass.values())
    if total <= 0:
        return None
    return {value: p / total for value, p in mass.items()}


def _continue(
    mass: dict[float, float], prefix: str, p: float, nxt: TokenLogprob, valid: Mapping[str, float]
) -> None:
    """Split the probability ``p`` of ``prefix`` over the values the next token can complete."""
    options = dict(nxt.top)
    options.setdefault(nxt.token, nxt.logprob)
    ends = 0.0
    parts: dict[float, float] = {}
    for text, logprob in options.items():
        if not math.isfinite(logprob):
            continue
        q = math.exp(logprob)
        joined = prefix + text.strip(_STRIP)
        if text[:1].isdigit() and joined in valid:
            parts[valid[joined]] = parts.get(valid[joined], 0.0) + q
        elif not text[:1].isdigit():
            ends += q  # the number ends here: the prefix is the value
    if prefix in valid and ends > 0:
        parts[valid[prefix]] = parts.get(valid[prefix], 0.0) + ends
    total = sum(parts.values())
    for value, q in parts.items():
        mass[value] = mass.get(value, 0.0) + p * q / total
