"""rftjudge: dependable LLM-as-a-judge reward functions for reinforcement fine-tuning.

>>> from rftjudge import RubricJudge, Criterion, OpenAIClient
>>> client = OpenAIClient(model="gpt-4.1-mini")           # doctest: +SKIP
>>> judge = RubricJudge(client, criteria=[Criterion(name="correctness", description="...")])  # doctest: +SKIP
>>> judge.reward("What is 2+2?", "4", reference="4")      # doctest: +SKIP

Names are imported on first use (PEP 562): ``import rftjudge`` stays cheap for processes that
need one part of it (a CLI's ``--help``, a trainer's reward worker), and each name costs its own
modules only. Type checkers see the imports under ``TYPE_CHECKING``; ``tests/test_exports.py``
checks that they and ``_LAZY`` name the same things.
"""

import importlib
import typing

from ._errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    DeadlineExceededError,
    HTTPStatusError,
    JudgeError,
    JudgeTimeoutError,
    ParseError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    RefusalError,
    ResponseTooLargeError,
    ServerError,
    TransportError,
    TruncatedError,
    VerdictError,
)
from ._version import __version__ as __version__

if typing.TYPE_CHECKING:
    from ._types import (
        ChatRequest,
        ChatResponse,
        Message,
        TokenLogprob,
        Usage,
    )
    from .cache import (
        Cache,
        MemoryCache,
        SQLiteCache,
    )
    from .checks import (
        JSONSchemaCheck,
        LanguageCheck,
        LengthPenalty,
        NonEmptyCheck,
        RegexCheck,
        RepetitionPenalty,
    )
    from .clients import (
        AnthropicClient,
        AzureOpenAIClient,
        BedrockClient,
        Capabilities,
        Client,
        EndpointPool,
        EndpointStats,
        FunctionClient,
        GeminiClient,
        HTTPClient,
        OllamaClient,
        OpenAIClient,
        ProviderRegistry,
        RateLimits,
        RateLimitSnapshot,
        RetryPolicy,
        client,
        register_provider,
    )
    from .compose import (
        CompositeResult,
        CompositeReward,
        CriterionGate,
    )
    from .guards import NonAnswerGuard
    from .judges import (
        BaseJudge,
        Criterion,
        GroupReward,
        JudgeStats,
        Judgment,
        ListwiseJudge,
        Preference,
        PreferenceJudge,
        RewardBase,
        RubricJudge,
        Scale,
    )
    from .judges.ensemble import (
        CascadeJudge,
        CascadeResult,
        EnsembleJudge,
        EnsembleResult,
    )
    from .pricing import Price
    from .templates import PromptTemplate

# The public submodules reachable as attributes (``rftjudge.judges``) without importing them first.
_SUBPACKAGES = frozenset(
    {
        "app",
        "cache",
        "calibration",
        "checks",
        "clients",
        "compose",
        "graders",
        "guards",
        "integrations",
        "judges",
        "parsing",
        "pricing",
        "rewards",
        "templates",
    }
)

# name -> the module that defines it (relative to this package)
_LAZY: dict[str, str] = {
    "ChatRequest": "._types",
    "ChatResponse": "._types",
    "Message": "._types",
    "TokenLogprob": "._types",
    "Usage": "._types",
    "Cache": ".cache",
    "MemoryCache": ".cache",
    "SQLiteCache": ".cache",
    "JSONSchemaCheck": ".checks",
    "LanguageCheck": ".checks",
    "LengthPenalty": ".checks",
    "NonEmptyCheck": ".checks",
    "RegexCheck": ".checks",
    "RepetitionPenalty": ".checks",
    "AnthropicClient": ".clients",
    "AzureOpenAIClient": ".clients",
    "BedrockClient": ".clients",
    "Capabilities": ".clients",
    "Client": ".clients",
    "EndpointPool": ".clients",
    "EndpointStats": ".clients",
    "FunctionClient": ".clients",
    "GeminiClient": ".clients",
    "HTTPClient": ".clients",
    "OllamaClient": ".clients",
    "OpenAIClient": ".clients",
    "ProviderRegistry": ".clients",
    "RateLimits": ".clients",
    "RateLimitSnapshot": ".clients",
    "RetryPolicy": ".clients",
    "client": ".clients",
    "register_provider": ".clients",
    "CompositeResult": ".compose",
    "CompositeReward": ".compose",
    "CriterionGate": ".compose",
    "NonAnswerGuard": ".guards",
    "BaseJudge": ".judges",
    "Criterion": ".judges",
    "GroupReward": ".judges",
    "JudgeStats": ".judges",
    "Judgment": ".judges",
    "ListwiseJudge": ".judges",
    "Preference": ".judges",
    "PreferenceJudge": ".judges",
    "RewardBase": ".judges",
    "RubricJudge": ".judges",
    "Scale": ".judges",
    "CascadeJudge": ".judges.ensemble",
    "CascadeResult": ".judges.ensemble",
    "EnsembleJudge": ".judges.ensemble",
    "EnsembleResult": ".judges.ensemble",
    "Price": ".pricing",
    "PromptTemplate": ".templates",
}


def __getattr__(name: str) -> typing.Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module, __name__), name)
    elif name in _SUBPACKAGES:
        # ``rftjudge.judges.ensemble...`` after a bare ``import rftjudge``, as when the package
        # imported these eagerly: the subpackage with the modules the names above come from
        # (importing a submodule also sets it as an attribute of its parent).
        value = importlib.import_module(f".{name}", __name__)
        for module_name in set(_LAZY.values()):
            if module_name.startswith(f".{name}."):
                importlib.import_module(module_name, __name__)
    else:
        raise AttributeError(f"module 'rftjudge' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_SUBPACKAGES})


__all__ = [  # noqa: RUF022 - sorted by str.casefold (tests/test_exports.py)
    "AnthropicClient",
    "AuthenticationError",
    "AzureOpenAIClient",
    "BadRequestError",
    "BaseJudge",
    "BedrockClient",
    "Cache",
    "Capabilities",
    "CascadeJudge",
    "CascadeResult",
    "ChatRequest",
    "ChatResponse",
    "Client",
    "client",
    "CompositeResult",
    "CompositeReward",
    "ConfigurationError",
    "Criterion",
    "CriterionGate",
    "DeadlineExceededError",
    "EndpointPool",
    "EndpointStats",
    "EnsembleJudge",
    "EnsembleResult",
    "FunctionClient",
    "GeminiClient",
    "GroupReward",
    "HTTPClient",
    "HTTPStatusError",
    "JSONSchemaCheck",
    "JudgeError",
    "JudgeStats",
    "JudgeTimeoutError",
    "Judgment",
    "LanguageCheck",
    "LengthPenalty",
    "ListwiseJudge",
    "MemoryCache",
    "Message",
    "NonAnswerGuard",
    "NonEmptyCheck",
    "OllamaClient",
    "OpenAIClient",
    "ParseError",
    "Preference",
    "PreferenceJudge",
    "Price",
    "PromptTemplate",
    "ProviderError",
    "ProviderRegistry",
    "QuotaExceededError",
    "RateLimitError",
    "RateLimits",
    "RateLimitSnapshot",
    "RefusalError",
    "RegexCheck",
    "register_provider",
    "RepetitionPenalty",
    "ResponseTooLargeError",
    "RetryPolicy",
    "RewardBase",
    "RubricJudge",
    "Scale",
    "ServerError",
    "SQLiteCache",
    "TokenLogprob",
    "TransportError",
    "TruncatedError",
    "Usage",
    "VerdictError",
]
