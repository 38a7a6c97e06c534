"""Amazon Bedrock's Converse API (``POST /model/{modelId}/converse``), without boto3.

Authentication, in order of precedence:

1. ``api_key=`` — a Bedrock API key, sent as ``Authorization: Bearer``;
2. ``aws_access_key_id=`` + ``aws_secret_access_key=`` (+ ``aws_session_token=``) — SigV4;
3. ``AWS_BEARER_TOKEN_BEDROCK`` — a Bedrock API key from the environment;
4. ``AWS_ACCESS_KEY_ID`` + ``AWS_SECRET_ACCESS_KEY`` (+ ``AWS_SESSION_TOKEN``) — SigV4;
5. with ``pip install "rftjudge[aws]"`` (botocore): botocore's credential chain — profiles
   (``profile=`` or ``AWS_PROFILE``), SSO, role assumption, instance roles — refreshed as they expire.

SigV4 is rftjudge's own signer (:mod:`rftjudge.clients._sigv4`, service name ``bedrock``), applied
per attempt by the send shell's ``sign`` hook so that retries carry fresh signatures.

Structured output (``structured_output=``): ``"json_schema"`` (default) sends
``outputConfig.textFormat`` with the schema as a JSON *string*, which only some models accept (Claude
4.5+, some open-weight models); ``"tool"`` forces a single tool whose input schema is the verdict
(``toolConfig`` + ``toolChoice``; Claude 3+ and Nova) and returns its input as the text; ``"none"`` puts
the schema in the prompt only. Bedrock returns no logprobs.

Claude models get the verdict schema in Anthropic's dialect
(:func:`~rftjudge.clients._schema.anthropic_schema`); sampling fields are left out for models that
reject them (:mod:`rftjudge.clients._params`) and after a 400 naming one; a model without
``outputConfig`` steps down to ``"tool"`` (:mod:`rftjudge.clients._adapt`). The stop reasons
``malformed_model_output``/``malformed_tool_use`` are retried like a 5xx.

Error types come from the ``x-amzn-ErrorType`` header; throttling, model-not-ready, model timeouts
and 5xx are retried, validation, access, quota and model errors are not.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import quote

from pydantic import SecretStr
from typing_extensions import Unpack

from .._deprecation import legacy_positionals
from .._errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    HTTPStatusError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
)
from .._types import ChatRequest, ChatResponse, Usage
from ._adapt import Adaptive
from ._messages import failed_generation, split_system
from ._options import HTTPOptions
from ._params import rejected_fields
from ._parts import bedrock_content
from ._schema import anthropic_schema
from ._secrets import SecretField
from ._sigv4 import AWSCredentials, sign_v4
from .base import Capabilities, HTTPClient, check_structured_output, status_error_class

__all__ = ["BedrockClient", "BedrockStructuredOutput", "bedrock_error_class"]

BedrockStructuredOutput = Literal["json_schema", "tool", "none"]
_MODES = ("json_schema", "tool", "none")
SERVICE = "bedrock"  # the signing name; the endpoint prefix is bedrock-runtime

_STOP = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_use",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
# The model's output could not be read by Bedrock itself: a failed generation, retried.
_FAILED = frozenset({"malformed_model_output", "malformed_tool_use"})

# x-amzn-ErrorType → exception class. Retried: RateLimitError and ServerError (see _retry).
_ERRORS: dict[str, type[HTTPStatusError]] = {
    "ThrottlingException": RateLimitError,
    "ModelNotReadyException": RateLimitError,
    "ModelTimeoutException": ServerError,
    "ServiceUnavailableException": ServerError,
    "InternalServerException": ServerError,
    "ValidationException": BadRequestError,
    "ResourceNotFoundException": BadRequestError,
    "ConflictException": BadRequestError,
    "AccessDeniedException": AuthenticationError,
    "UnrecognizedClientException": AuthenticationError,
    "InvalidSignatureException": AuthenticationError,
    "ExpiredTokenException": AuthenticationError,
    "ServiceQuotaExceededException": QuotaExceededError,
    # 424: the model itself failed on this input; the same input fails again. HTTPStatusError with
    # a non-retry status is never retried.
    "ModelErrorException": HTTPStatusError,
}

CredentialsProvider = Callable[[], AWSCredentials]


def bedrock_error_class(error_type: str, status: int, message: str) -> type[HTTPStatusError]:
    """The exception class for a Bedrock error type (``x-amzn-ErrorType``, suffix stripped)."""
    if error_type == "ThrottlingException" and "per day" in message.lower():
        return QuotaExceededError  # "Too many tokens per day": no back-off within a step helps
    return _ERRORS.get(error_type) or status_error_class(status)


class BedrockClient(Adaptive, HTTPClient):
    """Client for Amazon Bedrock's Converse API (see the module docstring for auth).

    ``region`` falls back to ``AWS_REGION``, then ``AWS_DEFAULT_REGION`` (then the profile's region
    when the credentials came from botocore); without one the client refuses to start. Many models need
    an inference-profile id (``us.``, ``eu.``, ``global.``…) rather than the bare model id. ``base_url``
    replaces ``https://bedrock-runtime.{region}.amazonaws.com`` (VPC endpoints, tests). ``clock`` is
    the SigV4 time source (tests freeze it). Other keyword arguments are
    :class:`~rftjudge.HTTPClient`'s (``max_concurrency``, ``timeout``, ``max_retries``,
    ``retry_policy``, ``headers``, ``http_client``, ``transport``, ``capabilities``, the throughput
    options).
    """

    provider = "bedrock"
    _bearer = SecretField()  # a Bedrock API key, stored as a SecretStr; sent per request
    request_id_header = "x-amzn-requestid"
    _mode_ladder = _MODES
    _mode_words = re.compile(r"outputconfig|textformat|structured output|json_schema|jsonschema")

    @legacy_positionals("region", after=1)
    def __init__(
        self,
        model: str,
        *,
        region: str | None = None,
        api_key: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        profile: str | None = None,
        base_url: str | None = None,
        structured_output: BedrockStructuredOutput = "json_schema",
        send_temperature: bool | None = None,
        clock: Callable[[], datetime] | None = None,
        **http_options: Unpack[HTTPOptions],
    ) -> None:
        check_structured_output(structured_output, _MODES)
        self.structured_output: BedrockStructuredOutput = structured_output
        self._init_adaptive(rejected_fields(self.provider, model), send_temperature)
        self._claude = isinstance(model, str) and "claude" in model.lower()
        self._bearer = None
        self._credentials: CredentialsProvider | None = None
        self._last_secrets: tuple[SecretStr, ...] = ()  # of the last signature, for scrubbing
        profile_region = self._resolve_auth(
            api_key, aws_access_key_id, aws_secret_access_key, aws_session_token, profile
        )
        resolved_region = (
            region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or profile_region
        )
        if not resolved_region:
            raise ConfigurationError(
                "BedrockClient needs a region: pass BedrockClient(region=...) or set the "
                "AWS_REGION (or AWS_DEFAULT_REGION) environment variable."
            )
        self.region = resolved_region
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        super().__init__(
            model,
            base_url=base_url or f"https://bedrock-runtime.{resolved_region}.amazonaws.com",
            **http_options,
        )
        # The model id is one path segment: ':' and '/' (ARNs) are percent-encoded, as botocore does.
        self._url = f"{self.base_url}/model/{quote(model, safe='')}/converse"
        self._headers = {"accept": "application/json"}

    # -- auth ------------------------------------------------------------------------------------

    @property
    def auth_mode(self) -> Literal["api_key", "sigv4"]:
        return "api_key" if self._bearer else "sigv4"

    def _resolve_auth(
        self,
        api_key: str | None,
        access_key: str | None,
        secret_key: str | None,
        session_token: str | None,
        profile: str | None,
    ) -> str | None:
        """Set the bearer token or the credentials provider; return a profile's region, if any."""
        if api_key and (access_key or secret_key):
            raise ConfigurationError(
                "BedrockClient: pass either api_key= (a Bedrock API key) or AWS access keys, not both"
            )
        if bool(access_key) != bool(secret_key):
            raise ConfigurationError(
                "BedrockClient: aws_access_key_id and aws_secret_access_key go together"
            )
        if api_key:
            self._bearer = api_key
            return None
        if access_key and secret_key:
            self._static(AWSCredentials(access_key, secret_key, session_token or None))
            return None
        if profile is None:
            env_bearer = os.environ.get("AWS_BEARER_TOKEN_BEDROCK")
            if env_bearer:
                self._bearer = env_bearer
                return None
            env_key = os.environ.get("AWS_ACCESS_KEY_ID")
            env_secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
            if env_key and env_secret:
                token = os.environ.get("AWS_SESSION_TOKEN") or None
                self._static(AWSCredentials(env_key, env_secret, token))
                return None
        return self._from_botocore(profile)

    def _static(self, credentials: AWSCredentials) -> None:
        # Held as SecretStr (not the AWSCredentials object, whose fields are plain str) so that
        # neither the client nor the provider closure shows the secret key.
        access = credentials.access_key_id
        secret = SecretStr(credentials.secret_access_key)
        token = SecretStr(credentials.session_token) if credentials.session_token else None
        self._remember(credentials)
        self._credentials = lambda: AWSCredentials(
            access, secret.get_secret_value(), token.get_secret_value() if token else None
        )

    def _remember(self, credentials: AWSCredentials) -> None:
        self._last_secrets = tuple(SecretStr(s) for s in credentials.secrets())

    def _from_botocore(self, profile: str | None) -> str | None:
        """botocore's credential chain (profiles, SSO, roles), when the ``aws`` extra is installed."""
        try:
            import botocore.session
        except ImportError:
            if profile is not None:
                raise ImportError(
                    'BedrockClient(profile=...) needs botocore: pip install "rftjudge[aws]"'
                ) from None
            raise ConfigurationError(
                "BedrockClient found no credentials: pass api_key= (a Bedrock API key) or "
                "aws_access_key_id=/aws_secret_access_key=, or set AWS_BEARER_TOKEN_BEDROCK, or "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN). For "
                'profiles and SSO: pip install "rftjudge[aws]".'
            ) from None
        session = botocore.session.Session(profile=profile)
        try:
            found = session.get_credentials()
        except Exception as exc:  # botocore raises its own tree (ProfileNotFound, SSO errors, ...)
            raise ConfigurationError(
                f"BedrockClient: botocore could not resolve credentials ({type(exc).__name__}: {exc})"
            ) from None
        if found is None:
            raise ConfigurationError(
                "BedrockClient found no credentials: pass api_key= or aws_access_key_id=/"
                "aws_secret_access_key=, or set AWS_BEARER_TOKEN_BEDROCK, or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or configure an AWS profile (botocore found none)."
            )

        def provider() -> AWSCredentials:
            frozen = found.get_frozen_credentials()  # refreshes temporary credentials when due
            return AWSCredentials(frozen.access_key, frozen.secret_key, frozen.token or None)

        self._credentials = provider
        region = session.get_config_variable("region")
        return str(region) if region else None

    def sign(self, url: str, headers: dict[str, str], content: bytes) -> dict[str, str]:
        if self._credentials is None:
            return headers  # Bedrock API key: the bearer header is already there
        credentials = self._credentials()
        self._remember(credentials)
        return sign_v4(
            "POST",
            url,
            headers,
            content,
            credentials=credentials,
            region=self.region,
            service=SERVICE,
            timestamp=self._clock(),
        )

    def secrets(self) -> tuple[str, ...]:
        found: tuple[str, ...] = (self._bearer,) if self._bearer else ()
        return found + tuple(s.get_secret_value() for s in self._last_secrets)

    # -- wire format -----------------------------------------------------------------------------

    def default_capabilities(self) -> Capabilities:
        return Capabilities(
            structured_output=self.structured_output != "none",
            logprobs=False,
            max_top_logprobs=0,
            images=True,
        )

    def build_request(self, request: ChatRequest) -> tuple[str, dict[str, str], dict[str, Any]]:
        system, turns = split_system(request.messages)
        body: dict[str, Any] = {
            "messages": [{"role": role, "content": bedrock_content(c)} for role, c in turns],
        }
        if system:
            body["system"] = [{"text": system}]
        inference: dict[str, Any] = {}
        if request.max_tokens is not None:
            inference["maxTokens"] = request.max_tokens
        if request.temperature is not None and "temperature" not in self.dropped:
            inference["temperature"] = request.temperature
        if request.top_p is not None and "top_p" not in self.dropped:
            inference["topP"] = request.top_p
        if request.stop:
            inference["stopSequences"] = list(request.stop)
        if inference:
            body["inferenceConfig"] = inference
        schema = request.output_schema
        if schema is not None and self.structured_output == "json_schema":
            body["outputConfig"] = {
                "textFormat": {
                    "type": "json_schema",
                    "structure": {
                        "jsonSchema": {
                            "name": request.schema_name,
                            # Converse takes the schema as a JSON string, not an object.
                            "schema": json.dumps(
                                anthropic_schema(schema) if self._claude else dict(schema),
                                separators=(",", ":"),
                            ),
                        }
                    },
                }
            }
        elif schema is not None and self.structured_output == "tool":
            body["toolConfig"] = {
                "tools": [
                    {
                        "toolSpec": {
                            "name": request.schema_name,
                            "description": "Record your verdict. Call this tool exactly once.",
                            "inputSchema": {"json": dict(schema)},
                        }
                    }
                ],
                "toolChoice": {"tool": {"name": request.schema_name}},
            }
        bearer = self._bearer
        headers = (
            {**self._headers, "authorization": f"Bearer {bearer}"} if bearer else self._headers
        )
        return self._url, headers, body

    def parse_response(self, body: Any, headers: Mapping[str, str]) -> ChatResponse:
        texts: list[str] = []
        tool_input: Any = None
        for block in body["output"]["message"]["content"]:
            if "text" in block:
                texts.append(str(block["text"]))
            elif "toolUse" in block and tool_input is None:
                tool_input = block["toolUse"].get("input")
            # reasoningContent and other blocks carry no verdict
        stop = body.get("stopReason")
        if stop in _FAILED:
            raise failed_generation(
                stop,
                provider=self.provider,
                model=self.model,
                headers=headers,
                request_id_header=self.request_id_header,
            )
        usage = body.get("usage") or {}
        return ChatResponse(
            text=(
                json.dumps(tool_input, ensure_ascii=False)
                if tool_input is not None
                else "".join(texts)
            ),
            finish_reason=_STOP.get(stop or "", stop),
            usage=Usage(
                input_tokens=int(usage.get("inputTokens") or 0),
                output_tokens=int(usage.get("outputTokens") or 0),
                requests=1,
            ),
            request_id=headers.get(self.request_id_header),
            model=self.model,
        )

    def error_from_response(
        self, status: int, body: Any, text: str, headers: Mapping[str, str]
    ) -> HTTPStatusError:
        raw_type = headers.get("x-amzn-errortype") or ""
        message = ""
        if isinstance(body, dict):
            raw_type = raw_type or str(body.get("__type") or "")
            message = str(body.get("message") or body.get("Message") or "")
        # "ThrottlingException:http://internal.amazon.com/coral/..." or "com.amazon...#Type"
        error_type = raw_type.split(":", 1)[0].rsplit("#", 1)[-1].strip()
        message = message or text[:200] or "no response body"
        cls = bedrock_error_class(error_type, status, message)
        detail = f"{error_type}: {message}" if error_type else message
        return self.make_status_error(status, detail, error_type or None, text, headers, cls=cls)
