"""Azure OpenAI: OpenAI's Chat Completions behind Azure's URLs and key header.

The body and the response are OpenAI's, so this is :class:`~rftjudge.OpenAIClient` with another URL
and another auth header — nothing is re-implemented. Two URL styles exist:

- the v1 API (default): ``{endpoint}/openai/v1/chat/completions``, ``model`` = the deployment name;
- the classic API, chosen by giving an ``api_version`` (or ``OPENAI_API_VERSION``):
  ``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...``.

Auth is the ``api-key`` header (``AZURE_OPENAI_API_KEY``), or a Microsoft Entra ID token sent as
``Authorization: Bearer`` (``azure_ad_token=`` or ``AZURE_OPENAI_AD_TOKEN``). Azure rejects a flagged
prompt with 400 ``code: content_filter`` (a BadRequestError, never retried) and a flagged answer with
``finish_reason: content_filter`` (the judge raises RefusalError).
"""

from __future__ import annotations

import os
from typing import Any, Literal
from urllib.parse import quote

from .._deprecation import legacy_positionals
from .._errors import ConfigurationError
from ._secrets import SecretField
from .openai import OpenAIClient

__all__ = ["AzureOpenAIClient"]


class AzureOpenAIClient(OpenAIClient):
    """Client for Azure OpenAI deployments (see the module docstring).

    ``model`` is the deployment name. ``endpoint`` (``https://{resource}.openai.azure.com``) falls back
    to ``AZURE_OPENAI_ENDPOINT``; ``base_url`` replaces the derived OpenAI-style base entirely (a
    gateway, tests). The token limit goes out as ``max_completion_tokens`` (Azure's reasoning models
    reject ``max_tokens``); pass ``max_tokens_field="max_tokens"`` for API versions older than
    2024-09-01. Other keyword arguments are :class:`~rftjudge.OpenAIClient`'s (``structured_output``,
    ``logprobs``, ``strict_schema``, ``max_concurrency``, ``timeout``, ``max_retries``,
    ``retry_policy``, ``headers``, ``http_client``, ``transport``, the throughput options).
    """

    provider = "azure"
    _ad_token = SecretField()  # like the key (OpenAIClient._api_key): a SecretStr, used per request

    @legacy_positionals("endpoint", "api_key", "api_version", after=1)
    def __init__(
        self,
        model: str,
        *,
        endpoint: str | None = None,
        api_key: str | None = None,
        api_version: str | None = None,
        azure_ad_token: str | None = None,
        base_url: str | None = None,
        max_tokens_field: Literal["auto", "max_tokens", "max_completion_tokens"] = "auto",
        **openai_options: Any,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ConfigurationError("AzureOpenAIClient: model (the deployment name) must be set")
        version = api_version if api_version is not None else os.environ.get("OPENAI_API_VERSION")
        self.api_version = None if version in (None, "", "v1") else version
        key = api_key if api_key is not None else os.environ.get("AZURE_OPENAI_API_KEY")
        token = azure_ad_token or os.environ.get("AZURE_OPENAI_AD_TOKEN")
        if not key and not token:
            raise ConfigurationError(
                "AzureOpenAIClient needs credentials: set the AZURE_OPENAI_API_KEY environment "
                "variable or pass AzureOpenAIClient(api_key=...) (or azure_ad_token= for Entra ID)."
            )
        self._ad_token = None if key else token
        resolved = base_url or self._base_from_endpoint(model, endpoint)
        super().__init__(
            model,
            base_url=resolved,
            api_key=key or "",  # "" keeps OpenAIClient from falling back to OPENAI_API_KEY
            max_tokens_field=(
                "max_completion_tokens" if max_tokens_field == "auto" else max_tokens_field
            ),
            **openai_options,
        )
        if self.api_version:
            self._url += f"?api-version={quote(self.api_version, safe='')}"

    def _base_from_endpoint(self, deployment: str, endpoint: str | None) -> str:
        resource = endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT")
        if not resource:
            raise ConfigurationError(
                "AzureOpenAIClient needs an endpoint: set the AZURE_OPENAI_ENDPOINT environment "
                "variable (https://<resource>.openai.azure.com) or pass endpoint=..."
            )
        resource = resource.rstrip("/")
        for suffix in ("/openai/v1", "/openai"):
            if resource.endswith(suffix):
                resource = resource[: -len(suffix)]
        if self.api_version is None:
            return f"{resource}/openai/v1"
        return f"{resource}/openai/deployments/{quote(deployment, safe='')}"

    def _make_auth_headers(self) -> dict[str, str]:
        if self._ad_token:
            return {"authorization": f"Bearer {self._ad_token}"}
        return {"api-key": self._api_key} if self._api_key else {}

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self._api_key, self._ad_token) if s)
