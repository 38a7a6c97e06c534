"""rftjudge: dependable LLM-as-a-judge reward functions for reinforcement fine-tuning.

>>> from rftjudge import RubricJudge, Criterion, OpenAIClient
>>> client = OpenAIClient(model="gpt-4.1-mini")           # doctest: +SKIP
>>> judge = RubricJudge(client, criteria=[Criterion(name="correctness", description="...")])  # doctest: +SKIP
>>> judge.reward("What is 2+2?", "4", reference="4")      # doctest: +SKIP
"""

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
    ServerError,
    TransportError,
    TruncatedError,
    VerdictError,
)
from ._types import ChatRequest, ChatResponse, Message, TokenLogprob, Usage
from .cache import Cache, MemoryCache, SQLiteCache
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
from .compose import CompositeResult, CompositeReward, CriterionGate
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
from .judges.ensemble import CascadeJudge, CascadeResult, EnsembleJudge, EnsembleResult
from .pricing import Price
from .templates import PromptTemplate

__version__ = "0.1.0"

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
