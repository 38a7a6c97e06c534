"""Robust extraction of a JSON verdict from judge text.

With structured output the text is the JSON object. Without it (prompt-only mode, servers that ignore
the schema) judges wrap JSON in code fences, put prose around it, think aloud in ``<think>`` blocks, or
write a draft verdict before the final one. The rule: collect every JSON object in the text, in order,
and take the *last* one that validates — the final answer wins over drafts and quoted examples.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .._errors import ParseError

__all__ = ["find_json_objects", "parse_verdict"]

M = TypeVar("M", bound=BaseModel)

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
# Where a JSON object can start: "{" then a key or "}". Skipping every other "{" keeps a text full
# of braces (code, or "{{{{" from a broken judge) from costing one failed decode per brace.
_OBJECT_START = re.compile(r"\{\s*[\"}]")
# Failed decodes tolerated per text. Each can cost a scan to the end of the text (an unclosed
# string) or a decoder recursion error, so an adversarial text would otherwise cost quadratic time.
_MAX_FAILED_STARTS = 1000
# strict=False: small judges (llama.cpp grammars) emit raw newlines inside JSON strings.
_DECODER = json.JSONDecoder(strict=False)


def find_json_objects(text: str) -> list[dict[str, Any]]:
    """Every top-level JSON object in ``text``, in order of appearance.

    Never raises: text nested too deeply for the decoder (``[[[[...``) counts as no object, and
    after ``_MAX_FAILED_STARTS`` failed decodes the scan stops (an adversarial text cannot make
    parsing quadratic).
    """
    text = _THINK.sub("", text).strip()
    if not text:
        return []
    try:
        whole = json.loads(text, strict=False)
    except (ValueError, RecursionError):
        pass
    else:
        return [whole] if isinstance(whole, dict) else []
    found: list[dict[str, Any]] = []
    failures = 0
    match = _OBJECT_START.search(text)
    while match is not None:
        index = match.start()
        try:
            obj, end = _DECODER.raw_decode(text, index)
        except (ValueError, RecursionError):
            failures += 1
            if failures > _MAX_FAILED_STARTS:
                break
            match = _OBJECT_START.search(text, index + 1)
            continue
        if isinstance(obj, dict):
            found.append(obj)
        match = _OBJECT_START.search(text, end)
    return found


def parse_verdict(text: str, model: type[M]) -> M:
    """The last JSON object in ``text`` that validates as ``model``.

    Raises :class:`~rftjudge.ParseError` whose message says what was wrong (it is shown to the judge
    when re-asking, so it is phrased for the judge).
    """
    candidates = find_json_objects(text)
    if not candidates:
        raise ParseError("the answer contained no JSON object", raw=text)
    last_error: ValidationError | None = None
    for candidate in reversed(candidates):
        try:
            return model.model_validate(candidate)
        except ValidationError as exc:
            last_error = last_error or exc
    assert last_error is not None
    raise ParseError(f"the JSON verdict is invalid: {_describe(last_error)}", raw=text)


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "(root)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)
