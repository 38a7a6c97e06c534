"""Chat shaping shared by the providers whose APIs are not OpenAI-shaped (Anthropic, Bedrock, Gemini).

Those APIs take the system prompt apart from the turns, and some of them (Bedrock Converse, Gemini)
reject two consecutive turns of the same role — which a judge's re-ask can produce when a template
ends on an assistant prefill. Doing this once here keeps the three request builders identical in how
they read a :class:`~rftjudge.ChatRequest`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from .._types import Message

__all__ = ["Turn", "rejects_temperature", "split_system"]

Turn = tuple[Literal["user", "assistant"], str]

_OPUS_VERSION = re.compile(r"claude-opus-(\d+)(?:[-.](\d{1,2})(?!\d))?")


def split_system(messages: Sequence[Message]) -> tuple[str | None, list[Turn]]:
    """(system text or None, turns with consecutive same-role messages merged).

    Several system messages are joined with a blank line, in order. Turn order is kept as sent: a
    request that opens with an assistant turn is the caller's to fix, and the API says so.
    """
    system = [m.content for m in messages if m.role == "system"]
    turns: list[Turn] = []
    for message in messages:
        if message.role == "system":
            continue
        role: Literal["user", "assistant"] = "assistant" if message.role == "assistant" else "user"
        if turns and turns[-1][0] == role:
            turns[-1] = (role, f"{turns[-1][1]}\n\n{message.content}")
        else:
            turns.append((role, message.content))
    return ("\n\n".join(system) if system else None), turns


def rejects_temperature(model: str) -> bool:
    """Whether ``model`` is a Claude model known to reject ``temperature`` (Opus 4.7 and later).

    Unconfirmed, from third-party reports: those models answer 400 "`temperature` is deprecated for
    this model", on Anthropic's API and on Bedrock alike. Matching the id (``claude-opus-4-7``,
    ``us.anthropic.claude-opus-4-7-v1:0``) lets the clients omit the field by default; users override
    with ``send_temperature=True/False``. A date suffix (``claude-opus-4-20250514``) is not a minor
    version.
    """
    if not isinstance(model, str):
        return False  # the client's own validation names the bad model
    match = _OPUS_VERSION.search(model.lower())
    if match is None:
        return False
    version = (int(match.group(1)), int(match.group(2) or 0))
    return version >= (4, 7)
