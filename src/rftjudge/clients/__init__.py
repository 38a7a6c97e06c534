"""Judge clients: rftjudge's own small httpx clients, one module per provider."""

from ._ratelimit import RateLimiter, RateLimits, RateLimitSnapshot
from ._registry import ProviderRegistry, client, default_registry, register_provider
from ._retry import RetryPolicy
from ._sigv4 import AWSCredentials
from .anthropic import AnthropicClient
from .azure import AzureOpenAIClient
from .base import Capabilities, Client, HTTPClient
from .bedrock import BedrockClient
from .function import FunctionClient
from .gemini import GeminiClient
from .ollama import OllamaClient
from .openai import OpenAIClient
from .pool import EndpointPool, EndpointStats

__all__ = [  # noqa: RUF022 - sorted by str.casefold, as in rftjudge/__init__.py
    "AnthropicClient",
    "AWSCredentials",
    "AzureOpenAIClient",
    "BedrockClient",
    "Capabilities",
    "Client",
    "client",
    "default_registry",
    "EndpointPool",
    "EndpointStats",
    "FunctionClient",
    "GeminiClient",
    "HTTPClient",
    "OllamaClient",
    "OpenAIClient",
    "ProviderRegistry",
    "RateLimiter",
    "RateLimits",
    "RateLimitSnapshot",
    "register_provider",
    "RetryPolicy",
]
