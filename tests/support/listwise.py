"""A scripted listwise judge: reads the candidates out of the rendered request, answers by id.

The script scores each candidate by its text's known quality (plus a bonus for the candidate shown
first, when ``first_bonus`` is set) and answers with the entries in a *shuffled* order, so a judge
that maps scores back by position instead of by id gets the wrong numbers. ``faults`` scripts bad
answers for the first requests (``"missing"``, ``"duplicate"``, ``"unknown"``, ``"garbage"``);
``always`` makes every answer bad.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rftjudge import ChatRequest, ChatResponse, TokenLogprob, Usage
from rftjudge._content import content_text

_CANDIDATE = re.compile(
    r"Candidate (?P<id>C\w+):\n<<<CANDIDATE (?P=id) \w+>>>\n(?P<text>.*?)\n<<<END CANDIDATE", re.S
)


def shown(request: ChatRequest) -> list[tuple[str, str]]:
    """(id, text) of the candidates a listwise request shows, in shown order."""
    return [
        (m.group("id"), m.group("text")) for m in _CANDIDATE.finditer(content_text(request.messages[-1].content))
    ]


@dataclass
class ListwiseScript:
    quality: Mapping[str, float]
    first_bonus: float = 0.0
    low: float = 0.0
    high: float = 10.0
    faults: list[str] = field(default_factory=list)
    always: str | None = None
    seed: int = 0
    seen: list[list[tuple[str, str]]] = field(default_factory=list)

    def scores(self, items: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        out = []
        for k, (cid, text) in enumerate(items):
            value = self.quality[text] + (self.first_bonus if k == 0 else 0.0)
            out.append({"id": cid, "score": round(min(self.high, max(self.low, value)))})
        return out

    def __call__(self, request: ChatRequest) -> str:
        items = shown(request)
        if not items:  # a re-ask: the candidates are in the first user message
            first_user = next(m for m in request.messages if m.role == "user")
            items = [
                (m.group("id"), m.group("text")) for m in _CANDIDATE.finditer(content_text(first_user.content))
            ]
        else:
            self.seen.append(items)
        entries = self.scores(items)
        random.Random(self.seed + len(self.seen)).shuffle(entries)  # answer order ≠ shown order
        fault = self.always or (self.faults.pop(0) if self.faults else None)
        if fault == "missing":
            entries = entries[:-1]
        elif fault == "duplicate":
            entries = [*entries[:-1], dict(entries[0])]
        elif fault == "unknown":
            entries = [*entries[:-1], {"id": "CZZZ", "score": 5}]
        elif fault == "garbage":
            return "I cannot grade these."
        return json.dumps({"rationale": "scripted", "scores": entries})


def with_logprobs(text: str, spread: Mapping[str, Mapping[str, float]]) -> ChatResponse:
    """A response for ``text`` whose score tokens carry the given probabilities, per id.

    ``spread[id]`` maps score labels to probabilities at that entry's score position.
    """
    tokens: list[TokenLogprob] = []
    position = 0
    pattern = re.compile(r'"id"\s*:\s*"(?P<id>C\w+)"\s*,\s*"score"\s*:\s*(?P<score>\d+)')
    import math

    for m in pattern.finditer(text):
        start, end = m.start("score"), m.end("score")
        if start > position:
            tokens.append(TokenLogprob(text[position:start], 0.0))
        probs = spread.get(m.group("id"), {m.group("score"): 1.0})
        top = tuple((label, math.log(p)) for label, p in probs.items())
        sampled = m.group("score")
        tokens.append(TokenLogprob(sampled, dict(top).get(sampled, -5.0), top))
        position = end
    if position < len(text):
        tokens.append(TokenLogprob(text[position:], 0.0))
    return ChatResponse(
        text=text, finish_reason="stop", usage=Usage(requests=1), logprobs=tuple(tokens)
    )
