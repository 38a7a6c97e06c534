from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from rftjudge import ParseError
from rftjudge.parsing import find_json_objects, parse_verdict


class V(BaseModel):
    score: int = Field(ge=1, le=5)


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ('{"score": 4}', 4),
        ('```json\n{"score": 3}\n```', 3),
        ('Reasoning... so {"score": 2} is my verdict.', 2),
        ('<think>{"score": 1}</think>{"score": 5}', 5),
        ('example {"score": 1} ... final {"score": 4}', 4),
        ('{"score": "5", "extra": [1, 2]}', 5),
        ('{"bad json": } {"score": 3}', 3),
    ],
)
def test_parse_variants(text: str, score: int) -> None:
    assert parse_verdict(text, V).score == score


@pytest.mark.parametrize(
    "text", ["", "no json here", '{"score": 0}', '["score", 4]', '{"score": 4.5}']
)
def test_unusable_answers_raise_parse_error(text: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_verdict(text, V)
    assert info.value.raw == text


def test_error_names_the_field() -> None:
    with pytest.raises(ParseError, match="score"):
        parse_verdict('{"score": 9}', V)


def test_find_json_objects_order() -> None:
    assert find_json_objects('a {"x": 1} b {"y": {"z": 2}} c') == [{"x": 1}, {"y": {"z": 2}}]


def test_raw_newlines_inside_strings_are_accepted() -> None:
    """llama.cpp's grammar lets small models put a literal newline inside a JSON string."""
    text = '{"score": 4, "note": "The answer is:\nKyoto"}'
    assert parse_verdict(text, V).score == 4
    assert parse_verdict("prose " + text, V).score == 4
