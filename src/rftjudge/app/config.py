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
on loopback by llama.cpp's server through xllamacpp (see :mod:`rftjudge.local`). :func:`judge_session` starts it for the
lifetime of a ``with`` block; :func:`load_judge` alone cannot own a server process, so it refuses
such a config with an error saying what to do.

The schema (:class:`JudgeConfig`, :func:`fingerprint`, the defaults) is ``_config_schema``, reading
files ``_config_files``; this module builds clients, judges and sessions from a config.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import ConfigurationError
from ..clients._ratelimit import RateLimits
from ..clients._registry import client as make_client
from ..clients.base import Client
from ..judges.base import BaseJudge
from ..judges.listwise import ListwiseJudge
from ..judges.preference import PreferenceJudge
from ..judges.rubric import RubricJudge
from ..pricing import Price
from ._config_files import _check_key_variable, load_config, parse_config
from ._config_schema import (
    _CLIENT_FIELDS,
    _NULLABLE_FIELDS,
    _SHARED_FIELDS,
    _TYPE_FIELDS,
    DEFAULT_JUDGE,
    DEFAULT_PREFERENCE_JUDGE,
    JudgeConfig,
    fingerprint,
)

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
    criteria = list(config.criteria) if config.criteria else None
    if config.type == "rubric":
        return RubricJudge(client, criteria=criteria, **common)
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
        yield local_client(server.base_url, model=server.alias, api_key=server.api_key, **settings)
        return
    model = config.model if config.provider == "local" else None
    running = running_local_judge() if model is None else None
    if running is not None:
        announce(f"rftjudge: no judge provider configured: using the local judge at {running}")
        yield local_client(running, model=DEFAULT_ALIAS, **settings)
        return
    # Nothing but this session talks to the server it starts: a random key keeps it that way.
    with LocalJudgeServer(model, api_key=secrets.token_urlsafe(24)) as started:
        announce(
            f"rftjudge: no judge provider configured: using the offline local judge "
            f"({started.model_path.name} on llama.cpp's server) at {started.base_url}. "
            "A 135M-parameter model scores close to noise; set provider and model in the "
            "judge config for real judgments."
        )
        yield local_client(
            started.base_url,
            model=started.alias,
            api_key=started.api_key,
            **{"slots": started.n_parallel, **settings},  # its only user: pinned per verdict
        )


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
