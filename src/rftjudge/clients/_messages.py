"""Chat shaping shared by the providers whose APIs are not OpenAI-shaped (Anthropic, Bedrock, Gemini).

Those APIs take the system prompt apart from the turns, and some of them (Bedrock Converse, Gemini)
reject two consecutive turns of the same role — which a judge's re-ask can produce when a template
ends on an assistant prefill. Doing this once here keeps the three request builders identical in how
they read a :class:`~rftjudge.ChatRequest`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from .._content import Content, TextPart, content_text
from .._errors import ServerError
from .._types import Message
from ._params import rejected_fields

__all__ = ["Turn", "failed_generation", "rejects_temperature", "split_system"]

Turn = tuple[Literal["user", "assistant"], Content]


def split_system(messages: Sequence[Message]) -> tuple[str | None, list[Turn]]:
    """(system text or None, turns with consecutive same-role messages merged).

    Several system messages are joined with a blank line, in order. Turn order is kept as sent: a
    request that opens with an assistant turn is the caller's to fix, and the API says so.
    """
    system = [content_text(m.content) for m in messages if m.role == "system"]
    turns: list[Turn] = []
    for message in messages:
        if message.role == "system":
            continue
        role: Literal["user", "assistant"] = "assistant" if message.role == "assistant" else "user"
        if turns and turns[-1][0] == role:
            turns[-1] = (role, _joined(turns[-1][1], message.content))
        else:
            turns.append((role, message.content))
    return ("\n\n".join(system) if system else None), turns


def _joined(first: Content, second: Content) -> Content:
    """Two same-role contents as one: text joined by a blank line, parts kept in order."""
    if isinstance(first, str) and isinstance(second, str):
        return f"{first}\n\n{second}"
    head = (TextPart(first),) if isinstance(first, str) else first
    tail = (TextPart(second),) if isinstance(second, str) else second
    return (*head, TextPart("\n\n"), *tail)


def rejects_temperature(model: str) -> bool:
    """Whether ``model`` is a Claude model known to reject ``temperature`` (Opus 4.7 and later, the
    Claude 5 family; see :mod:`rftjudge.clients._params`, which holds the table).

    Users override with ``send_temperature=True/False``.
    """
    return "temperature" in rejected_fields("anthropic", model)


def failed_generation(
    reason: str, *, provider: str, model: str, headers: Mapping[str, str], request_id_header: str
) -> ServerError:
    """The error for a 200 whose stop reason says generation failed (Bedrock
    ``malformed_model_output``, SGLang ``abort``, Gemini ``MALFORMED_FUNCTION_CALL`` …).

    A :class:`~rftjudge.ServerError`, so the send shell retries it like a 5xx: the same request
    usually succeeds, and a verdict parser would only see half an answer.
    """
    return ServerError(
        f"generation failed (stop reason {reason!r})",
        status_code=200,
        provider=provider,
        model=model,
        request_id=headers.get(request_id_header),
        error_code=reason,
    )
