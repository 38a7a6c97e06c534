"""What one grader returns for one sample: a score, or zero with the ``/graders/run`` error flags.

OpenAI's graders never raise for a bad sample: the reward is 0 and a flag in ``metadata.errors``
says why. :class:`Outcome` carries exactly that, plus token usage per grader model, so a ``multi``
grader can merge its sub-graders' outcomes and ``run()`` can print the response shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ERROR_FLAGS", "Outcome", "empty_errors"]

# The boolean flags of openai-python's ``fine_tuning/alpha/grader_run_response.MetadataErrors``.
ERROR_FLAGS = (
    "formula_parse_error",
    "invalid_variable_error",
    "model_grader_parse_error",
    "model_grader_refusal_error",
    "model_grader_server_error",
    "other_error",
    "python_grader_runtime_error",
    "python_grader_server_error",
    "sample_parse_error",
    "truncated_observation_error",
    "unresponsive_reward_error",
)
# Flags with a details string next to them in the same object.
DETAIL_FIELDS = {
    "model_grader_server_error": "model_grader_server_error_details",
    "python_grader_runtime_error": "python_grader_runtime_error_details",
    "python_grader_server_error": "python_grader_server_error_type",
}


def empty_errors() -> dict[str, Any]:
    errors: dict[str, Any] = {flag: False for flag in ERROR_FLAGS}
    errors.update({detail: None for detail in DETAIL_FIELDS.values()})
    return errors


@dataclass
class Outcome:
    """One grader's result for one sample."""

    score: float
    errors: dict[str, str] = field(default_factory=dict)  # flag -> details ("" when none)
    token_usage: dict[str, dict[str, int]] = field(default_factory=dict)  # model -> counts
    sub_rewards: dict[str, float] = field(default_factory=dict)
    rationale: str = ""

    @classmethod
    def failed(cls, flag: str, details: str = "", **kw: Any) -> Outcome:
        return cls(score=0.0, errors={flag: details}, **kw)

    def add_usage(self, model: str, input_tokens: int, output_tokens: int) -> None:
        counts = self.token_usage.setdefault(
            model, {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        )
        counts["prompt_tokens"] += input_tokens
        counts["completion_tokens"] += output_tokens
        counts["total_tokens"] += input_tokens + output_tokens

    def merge(self, other: Outcome) -> None:
        """Take ``other``'s errors and token usage (a multi grader's sub-grader)."""
        for flag, details in other.errors.items():
            self.errors.setdefault(flag, details)
        for model, counts in other.token_usage.items():
            self.add_usage(model, counts["prompt_tokens"], counts["completion_tokens"])

    def errors_object(self) -> dict[str, Any]:
        """The ``metadata.errors`` object of ``/graders/run``."""
        errors = empty_errors()
        for flag, details in self.errors.items():
            errors[flag] = True
            if flag in DETAIL_FIELDS and details:
                errors[DETAIL_FIELDS[flag]] = details
        return errors
