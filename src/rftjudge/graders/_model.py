"""``score_model`` and ``label_model`` graders on any rftjudge client.

The named OpenAI grader models (``gpt-4.1``, ``o3-mini`` …) will not exist where these configs run
now, so each ``model`` is mapped to a client: ``models={"gpt-4.1": client}``, a ``"*"`` key for
every other name, or one client for all. The request asks for OpenAI's answer shape as structured
output — ``{"steps": [{"description", "conclusion"}], "result": number}`` (score) or the same with
``result`` one of the labels — and reads it OpenAI's way: a score outside ``range`` is clipped, an
answer without a usable result is 0 with ``model_grader_parse_error``, a refusal 0 with
``model_grader_refusal_error``, a provider failure 0 with ``model_grader_server_error``.
Authentication and quota errors are raised: they concern the run, not the sample.

``sampling_params``: ``temperature``, ``seed`` and ``max_completions_tokens`` map onto the request
(unset: temperature 0, 4096 tokens); ``top_p`` and ``reasoning_effort`` are sent as extra body fields,
which OpenAI-compatible servers understand.

``distribution=True`` (opt-in; OpenAI read one sampled answer) asks for token logprobs and reads
the whole distribution at the answer's ``result``: a ``score_model`` whose range has integer ends
(at most 21 values) scores the expected value over the range's integers, a ``label_model`` the
probability of its passing labels (labels that are one token each). Where the distribution cannot
be read the sampled answer counts, and ``distribution_fallbacks`` says how often. Images and audio in ``input`` cannot be sent through
rftjudge's text messages: such a grader is rejected when it loads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from .._errors import (
    AuthenticationError,
    ConfigurationError,
    JudgeError,
    ParseError,
    ProviderError,
    QuotaExceededError,
)
from .._types import ChatRequest, Message
from ..clients._protocol import Client
from ..judges._distribution import Labels, expectation, in_band
from ..parsing import json_value_offset, parse_verdict
from ._config import InputMessage, LabelModelGrader, ScoreModelGrader
from ._outcome import Outcome
from ._template import InvalidVariable, render

__all__ = ["ModelGrader", "resolve_client"]

DEFAULT_MAX_TOKENS = 4096

_STEPS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"description": {"type": "string"}, "conclusion": {"type": "string"}},
        "required": ["description", "conclusion"],
        "additionalProperties": False,
    },
}


class _Step(BaseModel):
    description: str = ""
    conclusion: str = ""


class _ScoreAnswer(BaseModel):
    steps: list[_Step] = Field(default_factory=list)
    result: float


class _LabelAnswer(BaseModel):
    steps: list[_Step] = Field(default_factory=list)
    result: str


def resolve_client(model: str, models: Client | Mapping[str, Client] | None) -> Client:
    """The client that stands in for OpenAI model ``model``."""
    if models is None:
        raise ConfigurationError(
            f"the grader uses model {model!r} and no client was given for it: "
            f"models={{{model!r}: client}} (or models=client for every model) in Python, "
            f"--model {model}=SPEC on the command line"
        )
    if not isinstance(models, Mapping):
        return models
    client = models.get(model, models.get("*"))
    if client is None:
        raise ConfigurationError(
            f"no client for grader model {model!r}: models has {sorted(models)}; add it or a "
            '"*" entry for every model'
        )
    return client


class ModelGrader:
    """One ``score_model`` or ``label_model`` grader bound to its client."""

    def __init__(
        self,
        config: ScoreModelGrader | LabelModelGrader,
        client: Client,
        *,
        distribution: bool = False,
    ) -> None:
        for message in config.input:
            _check_text_only(message, config.name or config.type)
        self.config = config
        self.client = client
        self.labels = _labels(config) if distribution else None
        if distribution and not getattr(client.capabilities, "logprobs", False):
            raise ConfigurationError(
                f"grader {config.name or config.type!r}: distribution=True reads token logprobs, "
                f"which client {client!r} does not return"
            )
        self.distribution_fallbacks = 0
        params = config.sampling_params if isinstance(config, ScoreModelGrader) else None
        extra: dict[str, Any] = {}
        if params is not None and params.top_p is not None:
            extra["top_p"] = params.top_p
        if params is not None and params.reasoning_effort is not None:
            extra["reasoning_effort"] = params.reasoning_effort
        self._temperature = params.temperature if params and params.temperature is not None else 0.0
        self._seed = params.seed if params else None
        self._max_tokens = (params.max_tokens if params else None) or DEFAULT_MAX_TOKENS
        self._extra = extra
        self._schema = _schema(config)

    def request(self, sample: Mapping[str, Any], item: Mapping[str, Any]) -> ChatRequest:
        """The request for one sample (:class:`InvalidVariable` when a template cannot render)."""
        messages = tuple(
            Message(_role(m.role), _content(m.content, sample, item)) for m in self.config.input
        )
        return ChatRequest(
            messages=messages,
            output_schema=self._schema,
            schema_name="grader_result",
            temperature=self._temperature,
            max_tokens=self._max_tokens,
            seed=self._seed,
            logprobs=self.labels is not None,
            top_logprobs=20 if self.labels is not None else 0,
            extra_body=self._extra,
        )

    async def grade(self, sample: Mapping[str, Any], item: Mapping[str, Any]) -> Outcome:
        try:
            request = self.request(sample, item)
        except InvalidVariable as exc:
            return Outcome.failed("invalid_variable_error", str(exc))
        try:
            response = await self.client.complete(request)
        except (ConfigurationError, AuthenticationError, QuotaExceededError):
            raise
        except ProviderError as exc:
            return Outcome.failed("model_grader_server_error", str(exc)[:2000])
        except JudgeError as exc:
            return Outcome.failed("other_error", str(exc)[:2000])
        outcome = Outcome(score=0.0)
        outcome.add_usage(
            self.config.model, response.usage.input_tokens, response.usage.output_tokens
        )
        if response.refusal or response.finish_reason in ("refusal", "content_filter"):
            outcome.errors["model_grader_refusal_error"] = response.refusal or ""
            return outcome
        try:
            answer = parse_verdict(response.text, self._answer_type())
        except ParseError as exc:
            outcome.errors["model_grader_parse_error"] = str(exc)[:2000]
            return outcome
        outcome.rationale = " ".join(s.conclusion for s in answer.steps if s.conclusion)
        read = self._read_distribution(response)
        if isinstance(answer, _ScoreAnswer) and not math.isfinite(answer.result):
            outcome.errors["model_grader_parse_error"] = f"result {answer.result} is not a number"
        elif read is not None:
            outcome.score = read
        elif isinstance(self.config, ScoreModelGrader):
            low, high = self.config.score_range
            outcome.score = min(high, max(low, float(answer.result)))
        elif answer.result not in self.config.labels:
            outcome.errors["model_grader_parse_error"] = f"label {answer.result!r} is not a label"
        else:
            outcome.score = 1.0 if answer.result in self.config.passing_labels else 0.0
            outcome.rationale = f"{answer.result}: {outcome.rationale}".strip()
        return outcome

    def _read_distribution(self, response: Any) -> float | None:
        """The expected score / passing probability from the answer's logprobs (None: unread)."""
        if self.labels is None:
            return None
        dist = in_band(response, json_value_offset(response.text, "result"), self.labels)
        if not dist:
            self.distribution_fallbacks += 1
            return None
        if isinstance(self.config, ScoreModelGrader):
            return expectation(dist)
        passing = set(self.config.passing_labels)
        return float(sum(p for label, p in dist.items() if label in passing))

    def _answer_type(self) -> type[_ScoreAnswer] | type[_LabelAnswer]:
        return _ScoreAnswer if isinstance(self.config, ScoreModelGrader) else _LabelAnswer


def _labels(config: ScoreModelGrader | LabelModelGrader) -> Labels[Any]:
    if isinstance(config, LabelModelGrader):
        return Labels.of({label: label for label in config.labels})
    low, high = config.score_range
    if not (low.is_integer() and high.is_integer() and high - low <= 20):
        raise ConfigurationError(
            f"grader {config.name!r}: distribution=True needs a range with integer ends and at "
            f"most 21 values; got {list(config.score_range)}"
        )
    return Labels.scores(range(int(low), int(high) + 1))


def _schema(config: ScoreModelGrader | LabelModelGrader) -> dict[str, Any]:
    result: dict[str, Any] = (
        {"type": "number"}
        if isinstance(config, ScoreModelGrader)
        else {"type": "string", "enum": list(config.labels)}
    )
    return {
        "type": "object",
        "properties": {"steps": _STEPS, "result": result},
        "required": ["steps", "result"],
        "additionalProperties": False,
    }


def _role(role: str) -> Any:
    return "system" if role == "developer" else role


def _parts(content: InputMessage | Any) -> Sequence[Any]:
    return content if isinstance(content, list) else [content]


def _check_text_only(message: InputMessage, name: str) -> None:
    for part in _parts(message.content):
        if isinstance(part, dict) and part.get("type") in ("input_image", "input_audio"):
            raise ConfigurationError(
                f"grader {name!r}: {part['type']} content cannot be sent through rftjudge's "
                "text-only messages; describe the image in text or grade it with a python grader"
            )


def _content(content: Any, sample: Mapping[str, Any], item: Mapping[str, Any]) -> str:
    texts = [p if isinstance(p, str) else str(p.get("text", "")) for p in _parts(content)]
    return "\n".join(render(text, sample, item) for text in texts)
