"""Judge clients: rftjudge's own small httpx clients, one module per provider."""

from ._retry import RetryPolicy
from .base import Capabilities, Client, HTTPClient
from .function import FunctionClient
from .openai import OpenAIClient

__all__ = ["Capabilities", "Client", "FunctionClient", "HTTPClient", "OpenAIClient", "RetryPolicy"]
