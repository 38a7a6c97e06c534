"""Extraction of a JSON verdict from judge text: the judge's own final answer, and nothing else.

With structured output the text is the JSON object. Without it (prompt-only mode, servers that ignore
the schema) judges wrap JSON in code fences, put prose around it, think aloud in ``<think>`` blocks, or
write a draft verdict before the final one. And the judge may quote the response it judges, which is
written by a policy optimised to make the judge read a verdict of its choosing. The rules:

- reasoning is not an answer: everything up to the last ``</think>`` is dropped, and so is an
  unclosed ``<think>`` block (an answer cut inside its reasoning has no verdict at all);
- only the judge's *final* JSON object is a candidate: the object that ends at the answer's last
  ``}``. If it does not validate, the answer has no verdict (the judge re-asks); an earlier object,
  a draft or a quoted one, is never used instead;
- an object copied verbatim from the inputs (``quoted=``) with text around it is a quote, not the
  judge's own verdict: no verdict. (A whole answer that is one object — structured output — is
  the judge's own generation and is not checked: the common case costs nothing.)

Every step is linear in the text: no regex can backtrack, and the search for the final object has a
budget of decoded characters (a hostile 1.6 MB answer once took 86 s here).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .._errors import ParseError

__all__ = ["answer_span", "find_json_objects", "parse_verdict", "read_verdict"]

M = TypeVar("M", bound=BaseModel)

# A think tag, and whether it begins its line. Tags that begin a line are the model's own; one in
# the middle of a line may be a rationale talking about think tags (then it is only a closer when it
# closes a block that a line-start opener began).
_TAG = re.compile(r"<(/?)think>", re.IGNORECASE)
# Where a JSON object can start: "{" then a key or "}". Skipping every other "{" keeps a text full
# of braces (code, or "{{{{" from a broken judge) from costing one failed decode per brace.
_OBJECT_START = re.compile(r"\{\s*[\"}]")
# The final object must start within this many characters of the answer's last "}" (a verdict is a
# few KB), and the search for it may decode at most _BUDGET times that many characters in all
# (find_json_objects: _BUDGET times the text's length, failed decodes charged where they failed).
_MAX_VERDICT_CHARS = 256 * 1024
_BUDGET = 4
# Failed decodes tolerated per text by find_json_objects, and in the search for the final object.
# Each costs a scan up to where it failed, and json.JSONDecodeError counts the lines before that.
_MAX_FAILED_STARTS = 1000
_MAX_FINAL_FAILURES = 8
# strict=False: small judges (llama.cpp grammars) emit raw newlines inside JSON strings.
_DECODER = json.JSONDecoder(strict=False)


def answer_span(text: str) -> tuple[int, int]:
    """``(start, stop)``: the part of ``text`` that is the judge's answer, not its reasoning.

    It starts after the last ``</think>`` that closes a block (or that begins a line: chat templates
    that open the block themselves leave only the closer in the text), and stops at a line-start
    ``<think>`` that is never closed.
    """
    start, opened = 0, -1
    for match in _TAG.finditer(text):
        at_line_start = _begins_line(text, match.start())
        if match.group(1):
            if opened >= 0 or at_line_start:
                start, opened = match.end(), -1
        elif opened < 0 and at_line_start:
            opened = match.start()
    return start, len(text) if opened < 0 else opened


def _begins_line(text: str, index: int) -> bool:
    """Whether only spaces or tabs stand between ``text[index]`` and the start of its line. (The
    spaces walked over belong to this tag alone: all the walks together stay linear.)"""
    while index > 0 and text[index - 1] in " \t":
        index -= 1
    return index == 0 or text[index - 1] == "\n"


def read_verdict(text: str, model: type[M], *, quoted: Sequence[str] = ()) -> tuple[M, int]:
    """The judge's final JSON object in ``text`` validated as ``model``, and where it ends.

    ``quoted``: the texts the judge was shown (its prompt); a final object found verbatim in one of
    them is a quote, not a verdict. Raises :class:`~rftjudge.ParseError` whose message says what
    was wrong (it is shown to the judge when re-asking, so it is phrased for the judge).
    """
    start, stop = answer_span(text)
    answer = text[start:stop]
    found = _final_object(answer)
    if found is None:
        raise ParseError("the answer does not end with a JSON object", raw=text)
    obj, begin, end = found
    # A whole answer that is one object (structured output) is the judge's own generation; an
    # object with text around it may be a quote.
    source = answer[begin:end] if quoted and end - begin < len(answer) else ""
    if len(source) > 2 and any(source in q for q in quoted):
        raise ParseError(
            "the final JSON object is copied from the text you were judging, not your verdict",
            raw=text,
        )
    try:
        return model.model_validate(obj), start + end
    except ValidationError as exc:
        raise ParseError(f"the JSON verdict is invalid: {_describe(exc)}", raw=text) from None


def parse_verdict(text: str, model: type[M], *, quoted: Sequence[str] = ()) -> M:
    """The judge's final JSON object in ``text``, validated as ``model`` (see :func:`read_verdict`)."""
    return read_verdict(text, model, quoted=quoted)[0]


def _final_object(answer: str) -> tuple[dict[str, Any], int, int] | None:
    """The JSON object that ends at the last ``}`` of ``answer``, with its span, or None."""
    stripped = answer.strip()
    if stripped.startswith("{"):
        try:
            whole = _DECODER.decode(stripped)
        except (ValueError, RecursionError):
            pass
        else:
            if isinstance(whole, dict):
                begin = answer.index("{")
                return whole, begin, begin + len(stripped)
    end = answer.rfind("}") + 1
    if end == 0:
        return None
    floor = max(0, end - _MAX_VERDICT_CHARS)
    budget = _BUDGET * (end - floor)
    failures = 0
    starts = [m.start() for m in _OBJECT_START.finditer(answer, floor, end)]
    # Innermost first: a nested verdict is found after its inner objects, each cheap to decode.
    # Inside a valid verdict no decode fails ('{"' cannot occur in a JSON string), so failures
    # mean a broken or hostile answer: few are allowed (each one costs json a count of the lines
    # before it, to report where it failed).
    for index in reversed(starts):
        try:
            obj, stop = _DECODER.raw_decode(answer, index)
        except (ValueError, RecursionError):
            failures += 1
            if failures > _MAX_FINAL_FAILURES:
                return None
            continue
        if stop == end and isinstance(obj, dict):
            return obj, index, end
        budget -= stop - index
        if budget <= 0:
            return None
    return None


def find_json_objects(text: str) -> list[dict[str, Any]]:
    """Every top-level JSON object in the answer part of ``text`` (see :func:`answer_span`), in
    order of appearance.

    Never raises: text nested too deeply for the decoder (``[[[[...``) counts as no object, and
    after ``_MAX_FAILED_STARTS`` failed decodes, or decoding four times the text's length, the scan
    stops (an adversarial text cannot make parsing quadratic).
    """
    start, stop = answer_span(text)
    text = text[start:stop].strip()
    if not text:
        return []
    try:
        whole = _DECODER.decode(text)
    except (ValueError, RecursionError):
        pass
    else:
        return [whole] if isinstance(whole, dict) else []
    found: list[dict[str, Any]] = []
    failures = 0
    budget = _BUDGET * len(text)
    match = _OBJECT_START.search(text)
    while match is not None and budget > 0:
        index = match.start()
        try:
            obj, end = _DECODER.raw_decode(text, index)
        except (ValueError, RecursionError) as exc:
            failures += 1
            budget -= exc.pos + 1 if isinstance(exc, json.JSONDecodeError) else len(text)
            if failures > _MAX_FAILED_STARTS:
                break
            match = _OBJECT_START.search(text, index + 1)
            continue
        if isinstance(obj, dict):
            found.append(obj)
        match = _OBJECT_START.search(text, end)
    return found


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "(root)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)
