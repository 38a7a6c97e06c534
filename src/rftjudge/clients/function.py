"""A client backed by a Python function: for tests, demos and judges that are not HTTP APIs."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from .._types import ChatRequest, ChatResponse, Usage
from .base import Capabilities

__all__ = ["FunctionClient"]

Handler = Callable[[ChatRequest], "str | ChatResponse | Awaitable[str | ChatResponse]"]


class FunctionClient:
    """Answer every request by calling ``handler(request)``.

    The handler returns the judge's text (or a full :class:`~rftjudge.ChatResponse`), sync or async.
    No network is involved, so judges built on it run anywhere — in unit tests of reward code, and in
    the offline demo of ``examples/trl_grpo.py``.
    """

    provider = "function"

    def __init__(
        self,
        handler: Handler,
        *,
        model: str = "function",
        capabilities: Capabilities | None = None,
    ) -> None:
        if not callable(handler):
            raise TypeError("FunctionClient needs a callable handler(request)")
        self.handler = handler
        self.model = model
        self.capabilities = capabilities or Capabilities(structured_output=True)
        self.calls: list[ChatRequest] = []

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.calls.append(request)
        result = self.handler(request)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, ChatResponse):
            return result
        return ChatResponse(text=str(result), finish_reason="stop", usage=Usage(requests=1))

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"FunctionClient(model={self.model!r})"
