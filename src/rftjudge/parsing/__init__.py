"""Turning judge text into validated verdicts."""

from ._json import answer_span, find_json_objects, parse_verdict, read_verdict
from ._logprobs import distribution_at, json_value_offset, score_distribution, token_index_at

__all__ = [
    "answer_span",
    "distribution_at",
    "find_json_objects",
    "json_value_offset",
    "parse_verdict",
    "read_verdict",
    "score_distribution",
    "token_index_at",
]
