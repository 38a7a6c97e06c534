"""Judge config files (YAML, TOML, JSON) that map one to one onto the Python API.

A config file names the same things the constructors take, with the same names::

    type: rubric                 # rubric | preference | listwise
    provider: openai             # leave provider and model out: the offline local judge
    model: gpt-4.1-mini
    api_key_env: OPENAI_API_KEY  # the variable to read the key from (never the key itself)
    criteria:
      - {name: helpfulness, description: Does it answer the question?, weight: 1}
    scale: [1, 5]
    on_error: abstain
    price: {input: 0.4, output: 1.6}   # USD per million tokens, for cost reports only
    # base_url: [http://vllm-0:8000/v1, http://vllm-1:8000/v1]   # replicas: least-loaded routing
    # limits: {backend: "redis://redis:6379/0", key: judge, max_in_flight: 128}  # a shared budget

``load_judge(path)`` builds the judge; ``load_config(path)`` only validates. Every problem is a
:class:`~rftjudge.ConfigurationError` naming the file, the field and what is wrong, raised before
any request is sent: a typo must fail at once, not after an hour of judging.

A config without ``provider`` and ``model`` asks for the offline default judge: a small model served
on loopback by llama-cpp-python (see :mod:`rftjudge.local`). :func:`judge_session` starts it for the
lifetime of a ``with`` block; :func:`load_judge` alone cannot own a server process, so it refuses
such a config with an error saying what to do.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .._datafile import check_document, read_capped
from .._errors import ConfigurationError
from .._key_variables import key_variable_problem
from ..clients._ratelimit import RateLimits
from ..clients._registry import client as make_client
from ..clients.base import Client
from ..judges._options import JudgeOptions
from ..judges.base import BaseJudge
from ..judges.listwise import ListwiseJudge
from ..judges.preference import PreferenceJudge
from ..judges.rubric import Criterion, RubricJudge
from ..pricing import Price

if TYPE_CHECKING:
    from .local import LocalJudgeServer

__all__ = [
    "DEFAULT_JUDGE",
    "DEFAULT_PREFERENCE_JUDGE",
    "JudgeConfig",
    "Price",
    "ajudge_session",
    "build_client",
    "build_judge",
    "fingerprint",
    "judge_session",
    "load_config",
    "load_judge",
    "parse_config",
]

Announce = Callable[[str], None]
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
_NULLABLE_FIELDS = ("temperature", "max_tokens", "seed", "max_input_chars")
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
    # rubric (and listwise) judges
    scoring: Literal["auto", "expected", "sampled"] | None = None
    samples: int | None = Field(default=None, ge=1)
    top_logprobs: int | None = Field(default=None, ge=1, le=20)
    ignore_length: bool | None = None
    rationale: Literal["before", "after", "none"] | None = None
    rationale_max_chars: int | None = Field(default=None, ge=1)
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
    aggregate: Literal["mean", "debiased"] | None = None
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


# -- reading files ---------------------------------------------------------------------------------


def load_config(path: str | Path) -> JudgeConfig:
    """Read and validate a judge config file (``.yaml``/``.yml``, ``.toml`` or ``.json``)."""
    file = Path(path)
    try:
        text = read_capped(file)
    except OSError as exc:
        raise ConfigurationError(f"{file}: cannot read the judge config ({exc.strerror})") from None
    try:
        data = _parse_text(file, text)
    except RecursionError:  # [[[[...]]]] thousands deep: the parsers recurse
        raise ConfigurationError(f"{file}: the judge config is nested too deeply") from None
    config = parse_config(data, source=str(file))
    if config.template is not None:
        config = config.model_copy(update={"template": _resolve_template(config.template, file)})
    return config


def parse_config(data: object, *, source: str = "<config>") -> JudgeConfig:
    """Validate an already-parsed config mapping; errors name ``source``, the field and the problem."""
    if not isinstance(data, Mapping):
        raise ConfigurationError(
            f"{source}: a judge config must be a mapping of fields, got {type(data).__name__}"
        )
    check_document(data, source)
    try:
        config = JudgeConfig.model_validate(dict(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"field `{'.'.join(str(p) for p in err['loc']) or '(top level)'}`: "
            f"{_pydantic_message(err)}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"{source}: {problems}") from None
    _check_combination(config, source)
    return config


def _pydantic_message(err: Mapping[str, Any]) -> str:
    if err.get("type") == "extra_forbidden":
        fields = ", ".join(sorted(JudgeConfig.model_fields))
        return f"unknown field (known fields: {fields})"
    return str(err.get("msg", "invalid value"))


def _check_combination(config: JudgeConfig, source: str) -> None:
    given = config.model_fields_set
    if config.type == "rubric" and not config.criteria:
        raise ConfigurationError(
            f"{source}: field `criteria`: a rubric judge needs at least one criterion "
            "(a list of {name, description, weight})"
        )
    own = set(_TYPE_FIELDS[config.type])
    others = {f for fields in _TYPE_FIELDS.values() for f in fields} - own
    wrong = sorted(f for f in others if f in given)
    if wrong:
        raise ConfigurationError(
            f"{source}: field `{wrong[0]}`: not a setting of a {config.type} judge"
        )
    if config.api_key_env is not None and config.uses_local_judge:
        raise ConfigurationError(
            f"{source}: field `api_key_env`: the local judge needs no key; set provider and "
            "model to use a hosted judge"
        )
    _check_key_variable(config, source)


def _check_key_variable(config: JudgeConfig, source: str) -> None:
    if config.api_key_env is not None:
        problem = key_variable_problem(config.api_key_env, config.provider)
        if problem is not None:
            raise ConfigurationError(f"{source}: field `api_key_env`: {problem}")


def _parse_text(file: Path, text: str) -> object:
    suffix = file.suffix.lower()
    if suffix in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped, unused-ignore]
        except ImportError:
            raise ImportError(
                'reading YAML judge configs needs PyYAML: pip install "rftjudge[cli]"'
            ) from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigurationError(f"{file}: {where}invalid YAML ({problem})") from None
    if suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            try:
                import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
            except ImportError:
                raise ImportError(
                    "reading TOML judge configs on Python 3.10 needs tomli: pip install tomli"
                ) from None
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{file}: invalid TOML ({exc})") from None
    if suffix == ".json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"{file}: invalid JSON ({exc})") from None
    raise ConfigurationError(
        f"{file}: unknown judge config format {suffix or '(no suffix)'!r}; "
        "use .yaml, .yml, .toml or .json"
    )


def _resolve_template(template: str, file: Path) -> str:
    """A template file named relative to the config file is found next to it."""
    if "\n" in template or not template.endswith(".j2"):
        return template
    candidate = Path(template)
    if not candidate.is_absolute() and (file.parent / candidate).is_file():
        return str((file.parent / candidate).resolve())
    return template


# -- building --------------------------------------------------------------------------------------


def build_client(config: JudgeConfig, *, source: str = "<config>") -> Client:
    """The client a (non-local) config names, built by the provider registry (``rftjudge.client``)."""
    if config.uses_local_judge:
        raise ConfigurationError(
            f"{source}: no provider or model configured, which means the offline local judge: "
            "use rftjudge.config.judge_session(config) (it starts the local server), or run "
            "`rftjudge local` and set base_url"
        )
    kwargs: dict[str, Any] = {
        f: getattr(config, f) for f in _CLIENT_FIELDS if getattr(config, f) is not None
    }
    kwargs.update(config.client_options)
    if config.base_url is not None:
        kwargs["base_url"] = (
            config.base_url if isinstance(config.base_url, str) else list(config.base_url)
        )
    if config.limits is not None:
        kwargs["limits"] = RateLimits(**config.limits)
    if config.api_key_env is not None:
        _check_key_variable(config, source)  # also for a JudgeConfig built in Python
        key = os.environ.get(config.api_key_env)
        if not key:
            raise ConfigurationError(
                f"{source}: field `api_key_env`: the environment variable "
                f"{config.api_key_env} is not set"
            )
        kwargs["api_key"] = key
    if config.model is None:
        raise ConfigurationError(f"{source}: field `model`: required when a provider is set")
    provider = config.resolved_provider
    try:
        return make_client(f"{provider}:{config.model}", **kwargs)
    except TypeError as exc:  # a setting this provider's client does not take
        raise ConfigurationError(f"{source}: provider {provider!r}: {exc}") from None
    except ConfigurationError as exc:
        raise ConfigurationError(f"{source}: {exc}") from None


def build_judge(config: JudgeConfig, client: Client) -> BaseJudge[Any]:
    """The judge a config describes, on ``client``."""
    common: dict[str, Any] = {"on_error": config.on_error}
    common.update(_given(config, _SHARED_FIELDS + _TYPE_FIELDS[config.type]))
    for field in _NULLABLE_FIELDS:
        if field in config.model_fields_set or getattr(config, field) is not None:
            common[field] = getattr(config, field)
    if isinstance(common.get("scale"), tuple):
        common["scale"] = tuple(common["scale"])
    if config.type == "rubric":
        assert config.criteria is not None  # checked in parse_config
        return RubricJudge(client, criteria=list(config.criteria), **common)
    criteria = list(config.criteria) if config.criteria else None
    if config.type == "listwise":
        return ListwiseJudge(client, criteria=criteria, **common)
    return PreferenceJudge(client, criteria=criteria, **common)


def _given(config: JudgeConfig, fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: getattr(config, f) for f in fields if getattr(config, f) is not None}


def load_judge(path: str | Path, *, client: Client | None = None) -> BaseJudge[Any]:
    """Build the judge a config file describes (on ``client`` if given, else on its provider)."""
    config = load_config(path)
    return build_judge(
        config, client if client is not None else build_client(config, source=str(path))
    )


# -- sessions: a judge plus the local server it may need -------------------------------------------


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def _maybe_local(
    config: JudgeConfig, announce: Announce, server: LocalJudgeServer | None
) -> Iterator[Client | None]:
    if not config.uses_local_judge:
        yield None
        return
    from .local import DEFAULT_ALIAS, LocalJudgeServer, local_client, running_local_judge

    settings = {**{f: getattr(config, f) for f in _CLIENT_FIELDS}, **config.client_options}
    if server is not None:
        yield local_client(server.base_url, model=server.alias, **settings)
        return
    model = config.model if config.provider == "local" else None
    running = running_local_judge() if model is None else None
    if running is not None:
        announce(f"rftjudge: no judge provider configured: using the local judge at {running}")
        yield local_client(running, model=DEFAULT_ALIAS, **settings)
        return
    with LocalJudgeServer(model) as started:
        announce(
            f"rftjudge: no judge provider configured: using the offline local judge "
            f"({started.model_path.name} via llama-cpp-python) at {started.base_url}. "
            "A 135M-parameter model scores close to noise; set provider and model in the "
            "judge config for real judgments."
        )
        yield local_client(started.base_url, model=started.alias, **settings)


@contextmanager
def judge_session(
    config: JudgeConfig | str | Path | None = None,
    *,
    announce: Announce = _stderr,
    server: LocalJudgeServer | None = None,
) -> Iterator[BaseJudge[Any]]:
    """A judge for a ``with`` block; starts (and stops) the local judge server when needed.

    ``config`` is a :class:`JudgeConfig`, a config file, or ``None`` for :data:`DEFAULT_JUDGE`.
    ``server`` reuses a running :class:`~rftjudge.local.LocalJudgeServer` instead of starting one.
    """
    cfg, source = _as_config(config)
    with _maybe_local(cfg, announce, server) as local:
        judge = build_judge(cfg, local if local is not None else build_client(cfg, source=source))
        try:
            yield judge
        finally:
            close = getattr(judge.client, "close", None)
            if callable(close):
                close()


@asynccontextmanager
async def ajudge_session(
    config: JudgeConfig | str | Path | None = None,
    *,
    announce: Announce = _stderr,
    server: LocalJudgeServer | None = None,
) -> AsyncIterator[BaseJudge[Any]]:
    """Async :func:`judge_session`: the client's pools are closed on the caller's event loop."""
    cfg, source = _as_config(config)
    with _maybe_local(cfg, announce, server) as local:
        judge = build_judge(cfg, local if local is not None else build_client(cfg, source=source))
        try:
            yield judge
        finally:
            aclose = getattr(judge.client, "aclose", None)
            if callable(aclose):
                await aclose()


def _as_config(config: JudgeConfig | str | Path | None) -> tuple[JudgeConfig, str]:
    if config is None:
        return DEFAULT_JUDGE, "<default judge>"
    if isinstance(config, JudgeConfig):
        return config, "<config>"
    return load_config(config), str(config)
