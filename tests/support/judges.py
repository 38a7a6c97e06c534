"""Rubric judges backed by a scripted FunctionClient, for the trainer-adapter tests.

The scripted judge reads the fenced PROMPT / RESPONSE / REFERENCE out of the rendered request and
answers in the verdict schema, so a test can steer each item by its text:

- a response containing ``FAIL`` gets unparseable text (a ParseError after the re-ask);
- a response containing ``HANG`` never gets an answer (for deadlines);
- otherwise ``correctness`` is 5 when the response contains the reference (or "4" without one),
  else 1, and ``tone`` is 3.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from typing import Any

from rftjudge import ChatRequest, Criterion, FunctionClient, RubricJudge
from rftjudge._content import content_text

CRITERIA = [
    Criterion(name="correctness", description="Is it right?", weight=3.0),
    Criterion(name="tone", description="Is it polite?"),
]
# Two equal criteria whose names a scripted verdict can spell ({"correct": 4, "clear": 2}).
RIGHT_AND_CLEAR = [
    Criterion(name="correct", description="Is it right?"),
    Criterion(name="clear", description="Is it clear?"),
]


def rewards(outcomes: Sequence[float | BaseException]) -> list[float]:
    """A group judge's rewards as floats; an outcome that is an exception is raised (the test
    fails on it, as it would on ``float(outcome)``, naming the judge's own error)."""
    values = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        values.append(float(outcome))
    return values


def fenced(text: str, label: str) -> str | None:
    match = re.search(rf"<<<{label} \w+>>>\n(.*?)\n<<<END {label} \w+>>>", text, re.DOTALL)
    return match.group(1) if match else None


class Script:
    """The FunctionClient handler; records what each request showed the judge."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str | None]] = []
        self.hung = 0
        self.release = asyncio.Event()

    async def __call__(self, request: ChatRequest) -> str:
        user = "\n".join(
            content_text(m.content) for m in request.messages if m.role == "user"
        )  # re-asks too
        item = {
            "prompt": fenced(user, "PROMPT"),
            "response": fenced(user, "RESPONSE"),
            "reference": fenced(user, "REFERENCE"),
        }
        self.seen.append(item)
        response = item["response"] or ""
        if "HANG" in response:
            self.hung += 1
            await asyncio.Event().wait()  # cancelled by the deadline
        if "FAIL" in response:
            return "I cannot produce JSON today."
        target = item["reference"] or "4"
        correctness = 5 if target in response else 1
        return json.dumps(
            {"rationale": "scripted", "scores": {"correctness": correctness, "tone": 3}}
        )


def scripted_judge(**kwargs: Any) -> tuple[RubricJudge, Script]:
    script = Script()
    judge = RubricJudge(
        FunctionClient(script, model="scripted"), criteria=CRITERIA, name="judge", **kwargs
    )
    return judge, script


# correctness 5 of 1..5 -> 1.0, tone 3 -> 0.5; weights 3:1
GOOD = (3 * 1.0 + 0.5) / 4
BAD = (3 * 0.0 + 0.5) / 4
