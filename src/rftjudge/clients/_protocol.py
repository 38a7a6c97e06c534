"""The client contract judges depend on: ``await client.complete(ChatRequest) -> ChatResponse``.

Anything with that method (and ``model`` / ``provider`` / ``capabilities`` attributes) works as a
judge client, user-written ones included. It lives in its own leaf module so that judges, pools and
the send shell all depend on the contract, not on each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .._types import ChatRequest, ChatResponse

__all__ = ["Capabilities", "Client"]


@dataclass(frozen=True)
class Capabilities:
    """What a client's provider can do; judges pick their strategy from it.

    ``prefill_choice``: the server continues a prefilled assistant turn and can constrain the next
    tokens to a list of choices (vLLM, SGLang, llama.cpp's server) — judges then read exact score
    and label distributions (see :mod:`rftjudge.clients._prefill`).
    """

    structured_output: bool = True
    logprobs: bool = False
    max_top_logprobs: int = 0
    prefill_choice: bool = False
    images: bool = False
    """Whether requests may carry image parts (the model must still be a vision model)."""


@runtime_checkable
class Client(Protocol):
    """What a judge needs from a client (attributes may be plain, class-level or properties)."""

    @property
    def model(self) -> str: ...

    @property
    def provider(self) -> str: ...

    @property
    def capabilities(self) -> Capabilities: ...

    async def complete(self, request: ChatRequest) -> ChatResponse: ...
