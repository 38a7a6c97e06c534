"""``"provider:model"`` strings → configured clients, and how third parties add providers.

``client("anthropic:claude-sonnet-4-5")`` splits at the *first* colon (model ids contain colons:
``ollama:qwen3:8b``, ``bedrock:us.amazon.nova-lite-v1:0``) and calls the provider's factory with the
model and the keyword arguments. For the built-in providers a trailing ``@http(s)://...`` is the
``base_url``: ``"vllm:Qwen/Qwen3-8B@http://host:8000/v1"``.

Providers come from three places, looked up in this order:

1. names registered on the registry (:meth:`ProviderRegistry.register`);
2. the built-in providers (:data:`BUILTIN_PROVIDERS`);
3. the ``rftjudge.providers`` entry-point group of installed packages: the entry point's name is the
   provider prefix, its value a client class or a factory ``callable(model, **kwargs) -> Client``.
   An installed package cannot shadow a built-in name (a dependency must not silently take over
   ``openai:``); registering one explicitly with ``replace=True`` can.

The registry is an explicit object. :data:`default_registry` is the one that
:func:`client` and :func:`register_provider` use; it is module state only in the sense of a
logger: code that wants isolation (tests, libraries) makes its own ``ProviderRegistry()`` and passes
``registry=``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from .._errors import ConfigurationError
from .base import Client

__all__ = [
    "BUILTIN_PROVIDERS",
    "ENTRY_POINT_GROUP",
    "ProviderFactory",
    "ProviderRegistry",
    "client",
    "default_registry",
    "register_provider",
]

logger = logging.getLogger("rftjudge")

ENTRY_POINT_GROUP = "rftjudge.providers"
ProviderFactory = Callable[..., Client]


def _openai(model: str, **kwargs: Any) -> Client:
    from .openai import OpenAIClient

    return OpenAIClient(model, **kwargs)


def _server(family: str, default_url: str) -> ProviderFactory:
    """A factory for an OpenAI-compatible server family with its own default URL.

    The spec means exactly ``OpenAIClient(model, server=family)``: the family decides the
    structured-output mode and whether exact reads (``prefill_choice``) are on.
    """

    def factory(model: str, **kwargs: Any) -> Client:
        from .openai import OpenAIClient

        kwargs.setdefault("base_url", default_url)
        kwargs.setdefault("server", family)
        return OpenAIClient(model, **kwargs)

    return factory


def _anthropic(model: str, **kwargs: Any) -> Client:
    from .anthropic import AnthropicClient

    return AnthropicClient(model, **kwargs)


def _ollama(model: str, **kwargs: Any) -> Client:
    from .ollama import OllamaClient

    return OllamaClient(model, **kwargs)


def _bedrock(model: str, **kwargs: Any) -> Client:
    from .bedrock import BedrockClient

    return BedrockClient(model, **kwargs)


def _gemini(model: str, **kwargs: Any) -> Client:
    from .gemini import GeminiClient

    return GeminiClient(model, **kwargs)


def _azure(model: str, **kwargs: Any) -> Client:
    from .azure import AzureOpenAIClient

    return AzureOpenAIClient(model, **kwargs)


BUILTIN_PROVIDERS: Mapping[str, ProviderFactory] = {
    "anthropic": _anthropic,
    "azure": _azure,
    "bedrock": _bedrock,
    "gemini": _gemini,
    "llama-cpp-python": _server("llama-cpp-python", "http://localhost:8000/v1"),
    "llamacpp": _server("llamacpp", "http://localhost:8080/v1"),
    "ollama": _ollama,
    "openai": _openai,
    "sglang": _server("sglang", "http://localhost:30000/v1"),
    "vllm": _server("vllm", "http://localhost:8000/v1"),
}


class ProviderRegistry:
    """Provider name → client factory (see the module docstring for the lookup order).

    ``entry_point_group=None`` ignores installed packages (hermetic tests).
    """

    def __init__(
        self,
        providers: Mapping[str, ProviderFactory] | None = None,
        *,
        builtins: bool = True,
        entry_point_group: str | None = ENTRY_POINT_GROUP,
    ) -> None:
        self._registered: dict[str, ProviderFactory] = {}
        self._builtins: Mapping[str, ProviderFactory] = BUILTIN_PROVIDERS if builtins else {}
        self._group = entry_point_group
        for name, factory in (providers or {}).items():
            self.register(name, factory)

    def register(self, name: str, factory: ProviderFactory, *, replace: bool = False) -> None:
        """Make ``name:`` create clients with ``factory(model, **kwargs)`` (a class works too)."""
        if not isinstance(name, str) or not name or ":" in name or "@" in name:
            raise ConfigurationError(
                f"provider name must be a non-empty string without ':' or '@'; got {name!r}"
            )
        if not callable(factory):
            raise ConfigurationError(
                f"provider {name!r}: factory must be callable(model, **kwargs)"
            )
        if not replace and (name in self._registered or name in self._builtins):
            raise ConfigurationError(
                f"provider {name!r} is already defined; pass replace=True to override it"
            )
        self._registered[name] = factory

    def unregister(self, name: str) -> None:
        """Forget a registered provider (built-ins and entry points stay)."""
        self._registered.pop(name, None)

    def names(self) -> list[str]:
        """Every provider name this registry can resolve, sorted."""
        found = set(self._registered) | set(self._builtins)
        found.update(ep.name for ep in self._entry_points())
        return sorted(found)

    def factory(self, name: str) -> ProviderFactory:
        """The factory for ``name``; ConfigurationError listing the known names if there is none."""
        if name in self._registered:
            return self._registered[name]
        if name in self._builtins:
            return self._builtins[name]
        for ep in self._entry_points():
            if ep.name == name:
                return self._load(ep)
        raise ConfigurationError(
            f"unknown provider {name!r}; known providers: {', '.join(self.names())}"
        )

    def create(self, spec: str, **kwargs: Any) -> Client:
        """A client from ``"provider:model"`` (``"provider:model@base_url"`` for built-ins)."""
        if not isinstance(spec, str):
            raise ConfigurationError(f'client spec must be a "provider:model" string; got {spec!r}')
        name, sep, model = spec.partition(":")
        name = name.strip()
        if not sep or not name or not model:
            raise ConfigurationError(
                f'client spec must look like "provider:model" (e.g. "openai:gpt-4.1-mini"); '
                f"got {spec!r}; known providers: {', '.join(self.names())}"
            )
        factory = self.factory(name)
        if name not in self._registered and name in self._builtins:
            model, base_url = split_base_url(model)
            if base_url is not None:
                if kwargs.get("base_url") is not None:
                    raise ConfigurationError(
                        f"{spec!r} names a base URL after '@' and base_url= is given too; "
                        "pass one of them"
                    )
                kwargs["base_url"] = base_url
        return factory(model, **kwargs)

    def _entry_points(self) -> Iterable[EntryPoint]:
        if self._group is None:
            return ()
        return [ep for ep in entry_points(group=self._group) if ep.name not in self._builtins]

    def _load(self, ep: EntryPoint) -> ProviderFactory:
        try:
            loaded = ep.load()
        except Exception as exc:
            raise ConfigurationError(
                f"provider {ep.name!r} (entry point {ep.value!r}) failed to load: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not callable(loaded):
            raise ConfigurationError(
                f"provider {ep.name!r}: entry point {ep.value!r} is not a class or factory"
            )
        factory: ProviderFactory = loaded
        return factory

    def __repr__(self) -> str:
        return f"ProviderRegistry(providers={self.names()!r})"


def split_base_url(model: str) -> tuple[str, str | None]:
    """``"Qwen/Qwen3-8B@http://host:8000/v1"`` → ``("Qwen/Qwen3-8B", "http://host:8000/v1")``."""
    for marker in ("@http://", "@https://"):
        index = model.find(marker)
        if index > 0:
            return model[:index], model[index + 1 :]
    return model, None


default_registry = ProviderRegistry()


def client(spec: str, *, registry: ProviderRegistry | None = None, **kwargs: Any) -> Client:
    """A configured client from ``"provider:model"``; ``kwargs`` go to the client's constructor.

    >>> judge_client = client("ollama:qwen3:8b", think=False)          # doctest: +SKIP
    >>> judge_client = client("vllm:Qwen/Qwen3-8B@http://gpu:8000/v1")  # doctest: +SKIP
    """
    return (registry or default_registry).create(spec, **kwargs)


def register_provider(
    name: str,
    factory: ProviderFactory,
    *,
    replace: bool = False,
    registry: ProviderRegistry | None = None,
) -> None:
    """Register ``name:`` on ``registry`` (default: :data:`default_registry`)."""
    (registry or default_registry).register(name, factory, replace=replace)
