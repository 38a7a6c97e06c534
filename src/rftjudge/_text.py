"""Plain text of what trainers pass: prompts, completions and references in any of their shapes.

The shared vocabulary of every layer that turns a trainer's values into what a judge reads: the
judges (a response given as a message list), the reward-function boundary and every trainer
adapter. It imports nothing of rftjudge's but the error tree, so any module may use it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ._errors import ConfigurationError

__all__ = ["as_text", "completion_text", "reference_text", "safe_name"]

_NAME_OK = re.compile(r"[^A-Za-z0-9_]+")


def as_text(value: Any, *, what: str = "value") -> str:
    """Plain text of a prompt or completion in any of TRL's shapes.

    - a string is itself;
    - a conversation (list of ``{"role", "content"}`` messages) becomes ``role: content`` lines —
      for a completion, only the assistant's messages count;
    - message content given as a list of parts keeps its text parts.
    """
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        # bytes are a Sequence of ints: without this they would fail as "an item of type int"
        raise ConfigurationError(
            f"{what}: got {type(value).__name__}; decode it to str first "
            "(e.g. value.decode('utf-8', errors='replace'))"
        )
    if isinstance(value, Mapping):
        return _content_text(value.get("content"))
    if isinstance(value, Sequence):
        lines = []
        for message in value:
            if isinstance(message, Mapping):
                role = str(message.get("role", "user"))
                text = _content_text(message.get("content"))
                lines.append(f"{role}: {text}" if what == "prompt" else text)
            elif isinstance(message, str):
                lines.append(message)
            else:
                raise ConfigurationError(
                    f"{what}: expected a string or a list of chat messages, found an item of "
                    f"type {type(message).__name__}"
                )
        return "\n".join(lines)
    raise ConfigurationError(
        f"{what}: expected a string or a list of chat messages, got {type(value).__name__}"
    )


def completion_text(value: Any) -> str:
    """A completion's text: in a message list, the assistant messages only (not tool results)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        parts = [
            _content_text(m.get("content"))
            for m in value
            if isinstance(m, Mapping) and m.get("role", "assistant") == "assistant"
        ]
        if parts or all(isinstance(m, Mapping) for m in value):
            return "\n".join(p for p in parts if p)
    return as_text(value, what="completion")


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(
            str(part.get("text", "")) if isinstance(part, Mapping) else str(part)
            for part in content
        )
    return str(content)


def reference_text(value: Any) -> str | None:
    """References may be any JSON value (veRL's ground_truth is); judges see them as text."""
    if value is None or isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def safe_name(name: str | None, default: str) -> str:
    """A metric/function name trainers accept everywhere (letters, digits, ``_``)."""
    return _NAME_OK.sub("_", name or default).strip("_") or "judge"
