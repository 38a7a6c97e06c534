"""OpenAI-shaped logprobs are read lazily: only the positions a judge looks at become TokenLogprobs."""

from __future__ import annotations

import math
import pickle

import pytest

from rftjudge import Criterion, OpenAIClient, TokenLogprob
from rftjudge._types import LazyLogprobs
from rftjudge.judges._criteria import Scale
from rftjudge.judges._scoring import expected_scores
from rftjudge.parsing import token_index_at

TEXT = '{"scores": {"a": 4}}'
PIECES = ['{"', "scores", '":', ' {"', "a", '":', " 4", "}}"]


def content(score_top: list[tuple[str, float]]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for piece in PIECES:
        top = (
            score_top if piece == " 4" else [(piece, -0.01)] + [(f"x{i}", -9.0) for i in range(19)]
        )
        out.append(
            {
                "token": piece,
                "logprob": dict(top).get(piece, -0.01),
                "bytes": list(piece.encode()),
                "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top],
            }
        )
    return out


def parsed(items: list[dict[str, object]]) -> LazyLogprobs:
    client = OpenAIClient("m", base_url="http://judge.test/v1")
    body = {
        "choices": [
            {
                "message": {"content": TEXT},
                "logprobs": {"content": items},
                "finish_reason": "stop",
            }
        ]
    }
    response = client.parse_response(body, {})
    assert isinstance(response.logprobs, LazyLogprobs)
    return response.logprobs


def test_only_read_positions_are_converted_and_values_match_the_eager_tuple() -> None:
    top = [(" 4", math.log(0.6)), (" 3", math.log(0.3)), ("}", math.log(0.05))]
    lazy = parsed(content(top))
    index = token_index_at(lazy, TEXT, TEXT.index("4"))
    assert index == 6
    assert lazy._done == {}  # locating the score read token texts only
    assert lazy[index] == TokenLogprob(" 4", math.log(0.6), tuple(top))
    assert list(lazy._done) == [6]
    eager = tuple(lazy)
    assert lazy == eager and len(lazy) == len(PIECES) and lazy[-1].token == "}}"
    assert lazy[1:3] == eager[1:3]
    with pytest.raises(IndexError):
        lazy[len(PIECES)]


def test_expected_score_from_lazy_logprobs() -> None:
    top = [(" 4", math.log(0.6)), (" 3", math.log(0.3)), ("}", math.log(0.05))]
    client = OpenAIClient("m", base_url="http://judge.test/v1")
    body = {
        "choices": [
            {
                "message": {"content": TEXT},
                "logprobs": {"content": content(top)},
                "finish_reason": "stop",
            }
        ]
    }
    response = client.parse_response(body, {})
    scores = expected_scores(response, [Criterion(name="a", description="a")], Scale(low=1, high=5))
    assert scores["a"] == pytest.approx((4 * 0.6 + 3 * 0.3) / 0.9)


def test_pickles_as_the_plain_tuple() -> None:
    lazy = parsed(content([(" 4", -0.1)]))
    assert pickle.loads(pickle.dumps(lazy)) == tuple(lazy)


def test_a_malformed_alternative_reads_as_no_alternatives() -> None:
    items = content([(" 4", -0.1)])
    items[6]["top_logprobs"] = [{"token": " 4", "logprob": "not a number"}]
    lazy = parsed(items)
    assert lazy[6] == TokenLogprob(" 4", -math.inf)


def test_a_token_entry_that_is_not_an_object_is_a_shape_error() -> None:
    client = OpenAIClient("m", base_url="http://judge.test/v1")
    body = {"choices": [{"message": {"content": TEXT}, "logprobs": {"content": ["x"]}}]}
    with pytest.raises(TypeError):
        client.parse_response(body, {})
