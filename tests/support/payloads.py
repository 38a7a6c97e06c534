"""Canned provider payloads for tests."""

from __future__ import annotations

import json
from typing import Any

BASE = "http://judge.test/v1"
CHAT = f"{BASE}/chat/completions"


def completion(
    content: str | dict[str, Any], *, finish_reason: str = "stop", **extra: Any
) -> dict[str, Any]:
    if isinstance(content, dict):
        content = json.dumps(content)
    message: dict[str, Any] = {"role": "assistant", "content": content}
    message.update(extra.pop("message", {}))
    choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish_reason}
    choice.update(extra)
    return {
        "id": "chatcmpl-1",
        "model": "test-judge",
        "choices": [choice],
        "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60},
    }


def verdict(scores: dict[str, Any], rationale: str = "ok") -> dict[str, Any]:
    return {"rationale": rationale, "scores": scores}
