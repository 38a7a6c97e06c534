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
from .clients import (
    Capabilities,
    Client,
    FunctionClient,
    HTTPClient,
    OpenAIClient,
    RetryPolicy,
)
from .judges import (
    BaseJudge,
    Criterion,
    JudgeStats,
    Judgment,
    Preference,
    PreferenceJudge,
    RewardBase,
    RubricJudge,
    Scale,
)
from .checks import (
    JSONSchemaCheck,
    LanguageCheck,
    LengthPenalty,
    NonEmptyCheck,
    RegexCheck,
    RepetitionPenalty,
)
from .compose import CompositeResult, CompositeReward, CriterionGate
from .judges.ensemble import CascadeJudge, CascadeResult, EnsembleJudge, EnsembleResult
from .templates import PromptTemplate

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "BaseJudge",
    "Capabilities",
    "CascadeJudge",
    "CascadeResult",
    "ChatRequest",
    "ChatResponse",
    "Client",
    "CompositeResult",
    "CompositeReward",
    "ConfigurationError",
    "Criterion",
    "CriterionGate",
    "EnsembleJudge",
    "EnsembleResult",
    "FunctionClient",
    "HTTPClient",
    "HTTPStatusError",
    "JSONSchemaCheck",
    "JudgeError",
    "JudgeStats",
    "JudgeTimeoutError",
    "Judgment",
    "LanguageCheck",
    "LengthPenalty",
    "Message",
    "NonEmptyCheck",
    "OpenAIClient",
    "ParseError",
    "Preference",
    "PreferenceJudge",
    "PromptTemplate",
    "ProviderError",
    "QuotaExceededError",
    "RateLimitError",
    "RefusalError",
    "RegexCheck",
    "RepetitionPenalty",
    "RetryPolicy",
    "RewardBase",
    "RubricJudge",
    "Scale",
    "ServerError",
    "TokenLogprob",
    "TransportError",
    "TruncatedError",
    "Usage",
    "VerdictError",
]
