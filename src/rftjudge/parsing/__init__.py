"""Turning judge text into validated verdicts."""

from ._json import find_json_objects, parse_verdict
from ._logprobs import distribution_at, json_value_offset, score_distribution, token_index_at

__all__ = [
    "distribution_at",
    "find_json_objects",
    "json_value_offset",
    "parse_verdict",
    "score_distribution",
    "token_index_at",
]
