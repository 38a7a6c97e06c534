"""The judge config schema: :class:`JudgeConfig`, its fingerprint, and the bundled defaults.

A config names the same things the judge constructors take; each judge type's own settings are
read off its signature, so that a judge argument added later is a config field as soon as
:class:`JudgeConfig` has it. Reading files is :mod:`._config_files`; building clients, judges and
sessions is :mod:`.config`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..clients._ratelimit import RateLimits
from ..judges._options import JudgeOptions
from ..judges.base import BaseJudge
from ..judges.listwise import ListwiseJudge
from ..judges.preference import PreferenceJudge
from ..judges.rubric import Criterion, RubricJudge
from ..pricing import Price

__all__ = ["DEFAULT_JUDGE", "DEFAULT_PREFERENCE_JUDGE", "JudgeConfig", "fingerprint"]


_JUDGES: dict[str, type[BaseJudge[Any]]] = {
    "rubric": RubricJudge,
    "preference": PreferenceJudge,
    "listwise": ListwiseJudge,
}


def _own_settings(judge: type[BaseJudge[Any]]) -> tuple[str, ...]:
    """A judge type's own settings: its keyword-only constructor arguments, read off the class."""
    parameters = inspect.signature(judge.__init__).parameters  # follows functools.wraps
    return tuple(n for n, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY)


# Derived, not listed: a judge argument added later is a config field as soon as JudgeConfig has it
# (tests/judges/test_options.py checks that every judge argument has one, and no field is stray).
# Each type's own settings (a setting only another type takes is an error) ...
_TYPE_FIELDS: dict[str, tuple[str, ...]] = {t: _own_settings(j) for t, j in _JUDGES.items()}
# ... and those every judge shares (JudgeOptions); on_error is always passed on.
_JUDGE_FIELDS = tuple(f for f in JudgeOptions.__annotations__ if f not in ("on_error",))
# None is meaningful for these ("send none", "no truncation"): passed on whenever the file sets them
_NULLABLE_FIELDS = ("temperature", "max_tokens", "seed", "max_input_chars", "tool_budget")
_SHARED_FIELDS = tuple(f for f in _JUDGE_FIELDS if f not in _NULLABLE_FIELDS)
_CLIENT_FIELDS = ("max_concurrency", "timeout", "max_retries", "structured_output", "logprobs")


class JudgeConfig(BaseModel):
    """A validated judge config; field names are the constructor arguments' names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["rubric", "preference", "listwise"] = "rubric"
    # client
    provider: str | None = None
    model: str | None = None
    base_url: str | tuple[str, ...] | None = None  # several: replicas of one model (clients.pool)
    api_key_env: str | None = None
    structured_output: str | None = None  # each provider's client validates its own modes
    logprobs: bool | None = None
    max_concurrency: int | None = Field(default=None, ge=1)
    timeout: float | None = Field(default=None, gt=0)
    max_retries: int | None = Field(default=None, ge=0)
    client_options: dict[str, Any] = Field(default_factory=dict)  # provider-specific kwargs
    # RateLimits(**limits): budgets, a shared backend (out of the repr: its URL may hold a password)
    limits: dict[str, Any] | None = Field(default=None, repr=False)
    # judge
    criteria: tuple[Criterion, ...] | None = None
    scale: tuple[int, int] | Literal["binary", "pass_fail"] | None = None
    template: str | None = None
    on_error: Literal["abstain", "raise"] | float = "abstain"
    max_reasks: int | None = Field(default=None, ge=0)
    temperature: float | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = None
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: str | tuple[str, ...] | None = None
    extra_body: dict[str, Any] | None = None  # provider request fields, e.g. {repeat_penalty: 1.1}
    name: str | None = None
    exact: bool | None = None  # exact score distributions (None: where the server allows them)
    guard: bool | None = None  # the non-answer guard (on unless false)
    max_input_chars: int | None = Field(default=None, ge=1)  # null in the file: no truncation
    batch_deadline: float | None = Field(default=None, gt=0)
    view: Literal["final", "full_trace", "tools"] | None = None  # trajectories (message lists)
    tool_budget: int | None = Field(default=None, ge=0)  # null in the file: tool outputs unclipped
    max_context_tokens: int | None = Field(default=None, ge=1)
    # rubric (and listwise) judges
    scoring: Literal["auto", "expected", "sampled"] | None = None
    samples: int | None = Field(default=None, ge=1)
    top_logprobs: int | None = Field(default=None, ge=1, le=20)
    ignore_length: bool | None = None
    rationale: Literal["before", "after", "none"] | None = None
    rationale_max_chars: int | None = Field(default=None, ge=1)
    rubric_column: str | None = None  # per-row rubrics (docs/rubrics.md)
    max_criteria: int | None = Field(default=None, ge=1)
    max_rubric_items: int | None = Field(default=None, ge=1)
    # preference judges
    swap: bool | None = None
    allow_ties: bool | None = None
    use_logprobs: bool | None = None
    comparisons_per_completion: int | None = Field(default=None, ge=1)
    group_reward: Literal["win_rate", "bradley_terry"] | None = None
    schedule: Literal["auto", "all_pairs", "circular", "adaptive"] | None = None
    bt_prior_sd: float | None = Field(default=None, gt=0)
    # listwise judges
    permutations: int | None = Field(default=None, ge=1)
    # listwise: mean | debiased; rubric: explicit | implicit (each judge checks its own)
    aggregate: Literal["mean", "debiased", "explicit", "implicit"] | None = None
    alphabet: Literal["digits", "letters"] | None = None
    chunk_size: int | None = Field(default=None, ge=2)
    max_prompt_chars: int | None = Field(default=None, ge=1)
    ridge: float | None = Field(default=None, ge=0)
    # reporting
    price: Price | None = None

    @field_validator("on_error")
    @classmethod
    def _check_on_error(cls, value: str | float) -> str | float:
        if isinstance(value, float) and not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ValueError(f'must be "abstain", "raise" or a number in [0, 1]; got {value!r}')
        return value

    @field_validator("limits")
    @classmethod
    def _check_limits(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            if "clock" in value:
                raise ValueError("clock cannot be set from a config file")
            try:
                RateLimits(**value)
            except TypeError as exc:
                raise ValueError(f"not a RateLimits setting ({exc})") from None
            except ValueError as exc:  # ConfigurationError is a ValueError
                raise ValueError(str(exc)) from None
        return value

    @field_validator("provider")
    @classmethod
    def _check_provider(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or ":" in value):
            raise ValueError(f"must be a provider name such as openai; got {value!r}")
        return value

    @property
    def uses_local_judge(self) -> bool:
        """No provider, model or base_url configured (or ``provider: local``): the offline judge."""
        if self.provider == "local":
            return True
        return self.provider is None and self.model is None and self.base_url is None

    @property
    def resolved_provider(self) -> str:
        """The provider to build: ``openai`` (any OpenAI-compatible server) unless named."""
        return self.provider or "openai"


_OPERATIONAL = {
    "api_key_env",
    "max_concurrency",
    "timeout",
    "max_retries",
    "price",
    "on_error",
    "limits",
    "batch_deadline",
}


def fingerprint(config: JudgeConfig) -> str:
    """A digest of every setting that can change a judgment (not timeouts, keys or prices).

    Stored with each result of ``rftjudge score``, so that a rerun with an edited judge re-judges
    instead of mixing two judges' verdicts in one file.
    """
    # Defaults left out: a setting added to rftjudge later leaves existing fingerprints alone.
    settings = config.model_dump(mode="json", exclude=_OPERATIONAL, exclude_defaults=True)
    for field in _NULLABLE_FIELDS:  # an explicit null is not the default ("send none")
        if field in config.model_fields_set:
            settings[field] = getattr(config, field)
    if config.template is not None and Path(config.template).is_file():
        settings["template"] = Path(config.template).read_text(encoding="utf-8")
    text = json.dumps(settings, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


DEFAULT_JUDGE = JudgeConfig(
    criteria=(
        Criterion(
            name="helpfulness",
            description=(
                "Does the response answer the prompt correctly, completely and clearly? "
                "1 = does not answer or is wrong, 5 = a correct, complete, clear answer."
            ),
        ),
    ),
    scale=(1, 5),
    max_tokens=384,
)
"""The bundled helpfulness rubric ``rftjudge score`` uses when no ``--judge`` is given."""

DEFAULT_PREFERENCE_JUDGE = JudgeConfig(type="preference", max_tokens=384)
"""The preference judge ``rftjudge compare`` uses when no ``--judge`` is given."""
