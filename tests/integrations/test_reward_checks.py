"""Deterministic pre-checks and the built-in JSON Schema subset validator."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from rftjudge import ConfigurationError
from rftjudge._jsonschema import unsupported_keywords, validation_errors
from rftjudge.integrations.checks import json_valid, non_empty

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "label": {"enum": ["Yes", "No"]},
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 2},
        "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "note": {"type": ["string", "null"]},
        "kind": {"const": "review"},
        "detail": {"anyOf": [{"type": "string"}, {"type": "object", "required": ["why"]}]},
    },
    "required": ["label", "score"],
    "additionalProperties": False,
}


def test_non_empty() -> None:
    check = non_empty()
    assert check.__name__ == "non_empty"
    assert check("  \n", {}) == 0.0
    assert check(" x ", {}) == 1.0
    assert non_empty(min_chars=3)("ab", {}) == 0.0
    with pytest.raises(ConfigurationError):
        non_empty(min_chars=0)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"label": "Yes", "score": 3}', 1.0),
        ('```json\n{"label": "No", "score": 5, "tags": ["a"]}\n```', 1.0),
        ('{"label": "Maybe", "score": 3}', 0.0),  # enum
        ('{"label": "Yes"}', 0.0),  # required
        ('{"label": "Yes", "score": 3, "extra": 1}', 0.0),  # additionalProperties
        ('{"label": "Yes", "score": 3.0}', 1.0),  # an integral float is an integer
        ('{"label": "Yes", "score": 2.5}', 0.0),
        ('{"label": "Yes", "score": 9}', 0.0),  # maximum
        ('{"label": "Yes", "score": true}', 0.0),  # a boolean is not an integer
        ('{"label": "Yes", "score": 1, "ratio": 1}', 0.0),  # exclusiveMaximum
        ('{"label": "Yes", "score": 1, "tags": ["a", "b", "c"]}', 0.0),  # maxItems
        ('{"label": "Yes", "score": 1, "tags": [""]}', 0.0),  # minLength in items
        ('{"label": "Yes", "score": 1, "code": "ABC", "note": null}', 1.0),
        ('{"label": "Yes", "score": 1, "code": "abc"}', 0.0),  # pattern
        ('{"label": "Yes", "score": 1, "kind": "other"}', 0.0),  # const
        ('{"label": "Yes", "score": 1, "detail": {"why": "x"}}', 1.0),
        ('{"label": "Yes", "score": 1, "detail": {}}', 0.0),  # anyOf
        ('Sure! {"label": "Yes", "score": 3}', 0.0),  # prose around it: not strict JSON
        ("", 0.0),
    ],
)
def test_json_valid_with_schema(answer: str, expected: float) -> None:
    assert json_valid(SCHEMA)(answer, {}) == expected


def test_json_valid_without_schema_and_lenient() -> None:
    assert json_valid()("[1, 2]", {}) == 1.0
    assert json_valid()("[1, 2", {}) == 0.0
    lenient = json_valid({"type": "object", "required": ["a"]}, lenient=True, name="json_ok")
    assert lenient.__name__ == "json_ok"
    assert lenient('Here you go: {"a": 1} and {"b": 2}', {}) == 0.0  # the last object wins
    assert lenient('Here you go: {"b": 2} then {"a": 1}', {}) == 1.0


def test_validation_errors_name_the_path() -> None:
    errors = validation_errors({"label": "Yes", "score": 1, "tags": [3]}, SCHEMA)
    assert errors == ["$.tags[0]: expected string, got integer"]
    assert validation_errors(1, {"oneOf": [{"type": "integer"}, {"type": "number"}]}) == [
        "$: matches 2 of oneOf (exactly 1 required)"
    ]


def test_unsupported_keywords_need_jsonschema(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "format": "email"}}}
    assert unsupported_keywords(schema) == {"format"}
    assert unsupported_keywords({"type": "array", "items": [{"type": "string"}]}) == {
        "items (tuple form)"
    }
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    with pytest.raises(ConfigurationError, match=r"format.*pip install jsonschema"):
        json_valid(schema)


def test_unsupported_keywords_use_jsonschema_when_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Any] = []

    class Validator:
        def __init__(self, schema: Any) -> None:
            self.schema = schema

        @staticmethod
        def check_schema(schema: Any) -> None:
            seen.append(schema)

        def is_valid(self, value: Any) -> bool:
            return "@" in value.get("a", "")

    fake = types.ModuleType("jsonschema")
    fake.validators = types.SimpleNamespace(validator_for=lambda schema: Validator)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "jsonschema", fake)
    schema = {"type": "object", "properties": {"a": {"type": "string", "format": "email"}}}
    check = json_valid(schema)
    assert seen == [schema]
    assert check('{"a": "x@y"}', {}) == 1.0
    assert check('{"a": "xy"}', {}) == 0.0
