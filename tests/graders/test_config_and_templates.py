"""Grader configs (validation naming the field, both spellings accepted) and templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rftjudge import ConfigurationError
from rftjudge.graders import (
    InvalidVariable,
    load_openai_grader,
    make_sample,
    parse_grader,
    render,
    validate_grader,
)

CHECK = {
    "type": "string_check",
    "name": "exact",
    "input": "{{ sample.output_text }}",
    "reference": "{{ item.answer }}",
    "operation": "eq",
}


def test_dict_json_string_path_and_run_body_all_load(tmp_path: Path) -> None:
    path = tmp_path / "grader.json"
    path.write_text(json.dumps(CHECK))
    for config in (CHECK, json.dumps(CHECK), path, str(path), {"grader": CHECK}):
        assert parse_grader(config).operation == "eq"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"operation": "contains"}, "grader.operation"),
        ({"refrence": "x"}, "grader.refrence"),
        ({"type": "nope"}, "grader"),
    ],
)
def test_validation_errors_name_the_field(change: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_grader({**CHECK, **change})
    assert str(info.value).startswith(field)


def test_nested_errors_name_the_sub_grader() -> None:
    multi = {
        "type": "multi",
        "name": "m",
        "graders": {"a": {**CHECK, "operation": "bad"}},
        "calculate_output": "a",
    }
    with pytest.raises(ConfigurationError, match=r"grader\.graders\.a\.operation"):
        parse_grader(multi)


def test_both_spellings_where_types_and_guide_disagree() -> None:
    assert parse_grader({**CHECK, "operation": "neq"}).operation == "neq"  # the guide's
    model = {
        "type": "score_model",
        "name": "s",
        "model": "m",
        "input": [{"role": "user", "content": "x"}],
        "pass_threshold": 0.5,  # guide only
        "sampling_params": {"max_completion_tokens": 10},  # chat spelling
    }
    assert parse_grader(model).sampling_params.max_tokens == 10
    model["sampling_params"] = {"max_completions_tokens": 20}  # the types' spelling
    assert parse_grader(model).sampling_params.max_tokens == 20
    single = {"type": "multi", "name": "m", "graders": CHECK, "calculate_output": "exact * 2"}
    assert list(parse_grader(single).named) == ["exact"]  # the types' single grader
    similarity = {
        "type": "text_similarity",
        "name": "t",
        "input": "a",
        "reference": "b",
        "evaluation_metric": "fuzzy_match",
    }
    assert parse_grader(similarity).pass_threshold is None  # optional in the types


def test_label_model_passing_labels_must_be_labels() -> None:
    config = {
        "type": "label_model",
        "name": "l",
        "model": "m",
        "input": [{"role": "user", "content": "x"}],
        "labels": ["good", "bad"],
        "passing_labels": ["great"],
    }
    with pytest.raises(ConfigurationError, match="passing_labels"):
        parse_grader(config)


def test_invalid_json_and_missing_file_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        parse_grader("{not json")
    with pytest.raises(ConfigurationError, match="cannot read"):
        parse_grader(tmp_path / "absent.json")


def test_validate_parses_the_formula_against_grader_names() -> None:
    multi = {"type": "multi", "name": "m", "graders": {"a": CHECK}, "calculate_output": "a + b"}
    with pytest.raises(ConfigurationError, match=r"calculate_output.*\bb\b"):
        validate_grader(multi)


# -- templates -------------------------------------------------------------------------------------


def test_render_paths_indexes_and_json_values() -> None:
    sample = make_sample('{"answer": {"items": [3, {"k": "v"}]}, "ok": true}')
    item = {"q": "why", "tags": ["a", "b"], "nested": {"x y": 1}}
    assert render("{{item.q}}/{{ item.tags[1] }}", sample, item) == "why/b"
    assert render("{{ sample.output_json.answer.items[1].k }}", sample, item) == "v"
    assert render('{{ item.nested["x y"] }}', sample, item) == "1"
    assert render("{{ item.tags[-1] }}", sample, item) == "b"
    assert render("{{ sample.output_json.ok }}", sample, item) == "true"
    assert render("{{ item.tags }}", sample, item) == '["a", "b"]'


@pytest.mark.parametrize(
    "template",
    [
        "{{ item.absent }}",
        "{{ item.tags[5] }}",
        "{{ sample.output_json.x }}",  # not JSON: output_json absent
        "{{ other.x }}",
        "{{ item.q.deeper }}",
    ],
)
def test_unresolvable_variables_are_invalid(template: str) -> None:
    with pytest.raises(InvalidVariable):
        render(template, make_sample("plain text"), {"q": "s", "tags": []})


def test_sample_from_a_tool_calling_conversation() -> None:
    call = {"type": "function", "function": {"name": "get_weather", "arguments": '{"c": 1}'}}
    sample = make_sample([{"role": "assistant", "content": "ok", "tool_calls": [call]}])
    assert sample["output_text"] == "ok"
    assert render("{{ sample.output_tools[0].function.name }}", sample, {}) == "get_weather"
    assert "output_json" not in sample


def test_missing_variable_is_flagged_like_openai() -> None:
    grader = load_openai_grader(CHECK)
    result = grader.run("4", {})
    assert result["reward"] == 0.0
    assert result["metadata"]["errors"]["invalid_variable_error"] is True


def test_error_paths_of_single_and_python_keyed_sub_graders() -> None:
    bad = {**CHECK, "operation": "bad"}
    single = {"type": "multi", "name": "m", "graders": bad, "calculate_output": "exact"}
    with pytest.raises(ConfigurationError, match=r"^grader\.graders\.exact\.operation:"):
        parse_grader(single)
    keyed = {
        "type": "multi",
        "name": "m",
        "graders": {"python": {"type": "python", "name": "p"}},
        "calculate_output": "python",
    }
    with pytest.raises(
        ConfigurationError, match=r"^grader\.graders\.python\.source: Field required"
    ):
        parse_grader(keyed)
    with pytest.raises(ConfigurationError, match=r"^grader\.type: required"):
        parse_grader({"name": "no type"})
