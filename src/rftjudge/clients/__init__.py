"""Judge clients: rftjudge's own small httpx clients, one module per provider."""

from ._retry import RetryPolicy
from .base import Capabilities, Client, HTTPClient
from .openai import OpenAIClient

__all__ = ["Capabilities", "Client", "HTTPClient", "OpenAIClient", "RetryPolicy"]
