from __future__ import annotations

import pytest

from rftjudge import (
    ConfigurationError,
    JSONSchemaCheck,
    LanguageCheck,
    LengthPenalty,
    NonEmptyCheck,
    RegexCheck,
    RepetitionPenalty,
)
from rftjudge._jsonschema import validation_errors

SCHEMA = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["approve", "reject"]},
        "risk": {"type": "integer", "minimum": 1, "maximum": 5},
        "clauses": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
    },
    "required": ["verdict", "risk"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("response", "ok"),
    [
        ('{"verdict": "approve", "risk": 2, "clauses": ["7.1"]}', True),
        ('```json\n{"verdict": "reject", "risk": 5}\n```', True),
        ('{"verdict": "maybe", "risk": 2}', False),
        ('{"verdict": "approve", "risk": 9}', False),
        ('{"verdict": "approve"}', False),
        ('{"verdict": "approve", "risk": 2, "extra": 1}', False),
        ('{"verdict": "approve", "risk": true}', False),
        ('{"verdict": "approve", "risk": 2, "clauses": []}', False),
        ("Sure! Here is the JSON: {}", False),
    ],
)
def test_json_schema_check(response: str, ok: bool) -> None:
    assert JSONSchemaCheck(SCHEMA)("p", response, None) == (1.0 if ok else 0.0)


def test_schema_errors_explain() -> None:
    errors = validation_errors({"verdict": "x", "risk": 0}, SCHEMA)
    assert any("not one of" in e for e in errors) and any("minimum" in e for e in errors)
    assert validation_errors(3, {"anyOf": [{"type": "string"}, {"type": "integer"}]}) == []
    assert validation_errors(3.0, {"type": "integer"}) == []


def test_regex_and_non_empty() -> None:
    assert RegexCheck(r"\bFinal answer:")("p", "Final answer: 4", None) == 1.0
    assert RegexCheck(r"(?i)as an ai", must_match=False)("p", "As an AI I can't", None) == 0.0
    assert NonEmptyCheck()("p", "  \n ", None) == 0.0
    with pytest.raises(ConfigurationError, match="invalid regex"):
        RegexCheck("(")


def test_length_penalty_is_soft() -> None:
    pen = LengthPenalty(100, soft=50)
    assert pen("p", "x" * 40, None) == 0.0
    assert pen("p", "x" * 75, None) == pytest.approx(0.5)
    assert pen("p", "x" * 200, None) == 1.0
    assert LengthPenalty(10, length_fn=lambda s: len(s.split()))("p", "a b c", None) == 0.0


def test_repetition_penalty() -> None:
    pen = RepetitionPenalty(ngram=2)
    assert pen("p", "the cat sat on the mat", None) == 0.0
    assert pen("p", "buy now " * 20, None) > 0.9


def test_language_check() -> None:
    assert LanguageCheck("latin")("p", "Hello there", None) == 1.0
    assert LanguageCheck("latin")("p", "Привет", None) == 0.0
    assert LanguageCheck("cjk")("p", "你好 hi", None) == pytest.approx(0.5)
    assert LanguageCheck(None, language="en", detector=lambda t: "en")("p", "x", None) == 1.0
    with pytest.raises(ConfigurationError):
        LanguageCheck("klingon")
