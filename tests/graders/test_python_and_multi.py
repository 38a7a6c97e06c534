"""python graders in the sandbox, and multi graders' formulas."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rftjudge import ConfigurationError, FunctionClient
from rftjudge.graders import FormulaError, Sandbox, load_openai_grader, parse_formula


def _python(source: str, **kwargs: Any) -> Any:
    config = {"type": "python", "name": "py", "source": source}
    return load_openai_grader(config, **kwargs)


# The graders guide's python grader example (rapidfuzz, one of the packages OpenAI's image had).
GUIDE_SOURCE = """
from rapidfuzz import fuzz, utils

def grade(sample, item) -> float:
    output_text = sample["output_text"]
    reference_answer = item["reference_answer"]
    return fuzz.WRatio(output_text, reference_answer, processor=utils.default_process) / 100.0
"""


def test_the_guides_python_grader() -> None:
    grader = _python(GUIDE_SOURCE)
    assert grader.reward("", "this is a test", {"reference_answer": "this is a new test!!!"}) == (
        pytest.approx(0.95)
    )


def test_printing_to_stdout_does_not_break_the_protocol() -> None:
    source = (
        "import os\n"
        "def grade(sample, item):\n"
        "    print('{\"score\": 99}')\n"
        "    os.write(1, b'raw bytes on fd 1\\n')\n"
        "    return 0.25\n"
    )
    assert _python(source).reward("", "x", {}) == 0.25


@pytest.mark.parametrize(
    ("source", "details"),
    [
        ("def grade(sample, item):\n    raise KeyError('answer')\n", "KeyError"),
        ("def grade(sample, item):\n    return 'high'\n", "not a number"),
        ("def grade(sample, item):\n    return float('nan')\n", "nan"),
        ("x = 1\n", "defines no function grade"),
    ],
)
def test_failures_score_zero_with_runtime_error(source: str, details: str) -> None:
    result = _python(source).run("x", {})
    assert result["reward"] == 0.0
    errors = result["metadata"]["errors"]
    assert errors["python_grader_runtime_error"] is True
    assert details in errors["python_grader_runtime_error_details"]


def test_syntax_error_is_a_load_error() -> None:
    with pytest.raises(ConfigurationError, match=r"grader\.source"):
        _python("def grade(:\n")


def test_timeout_kills_the_grader() -> None:
    result = _python("def grade(s, i):\n    while True:\n        pass\n", python_timeout=1).run("x")
    assert (
        "timed out after 1s" in result["metadata"]["errors"]["python_grader_runtime_error_details"]
    )


def test_memory_bomb_is_stopped() -> None:
    source = "def grade(s, i):\n    blob = bytearray(1024 ** 3)\n    return 1.0\n"
    result = _python(source, python_memory_bytes=256 * 1024**2).run("x")
    assert result["reward"] == 0.0
    assert "MemoryError" in result["metadata"]["errors"]["python_grader_runtime_error_details"]


def test_network_attempt_fails_where_a_namespace_can_be_made() -> None:
    source = (
        "import socket\n"
        "def grade(s, i):\n"
        "    socket.create_connection(('93.184.215.14', 80), timeout=3)\n"
        "    return 1.0\n"
    )
    grader = _python(source)
    if not Sandbox().network_isolated:
        # Said plainly in the sandbox docs: without `unshare --net` the network is not blocked,
        # and network="required" refuses to load instead.
        with pytest.raises(ConfigurationError, match="network"):
            _python(source, network="required")
        return
    result = grader.run("x")
    assert result["reward"] == 0.0
    assert "unreachable" in result["metadata"]["errors"]["python_grader_runtime_error_details"]


# -- multi -------------------------------------------------------------------------------------------


# The graders guide's multigrader example: a function call's name and arguments, checked apart.
GUIDE_MULTI = {
    "type": "multi",
    "name": "tool call",
    "graders": {
        "name": {
            "name": "name_grader",
            "type": "string_check",
            "input": "{{sample.output_tools[0].function.name}}",
            "reference": "{{item.name}}",
            "operation": "eq",
        },
        "arguments": {
            "name": "arguments_grader",
            "type": "string_check",
            "input": "{{sample.output_tools[0].function.arguments}}",
            "reference": "{{item.arguments}}",
            "operation": "eq",
        },
    },
    "calculate_output": "0.5 * name + 0.5 * arguments",
}


def _call(name: str, arguments: str) -> list[dict[str, Any]]:
    function = {"name": name, "arguments": arguments}
    return [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"type": "function", "function": function}],
        }
    ]


def test_the_guides_multigrader() -> None:
    grader = load_openai_grader(GUIDE_MULTI)
    item = {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    full = grader.run(_call("get_weather", '{"city": "Paris"}'), item)
    assert full["reward"] == 1.0
    assert full["sub_rewards"] == {"name": 1.0, "arguments": 1.0}
    half = grader.run(_call("get_weather", '{"city": "Rome"}'), item)
    assert (half["reward"], half["sub_rewards"]) == (0.5, {"name": 1.0, "arguments": 0.0})


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("a + b * c", 1 + 2 * 3),
        ("(a + b) * c", 9),
        ("-a ^ 2", -1),  # power binds tighter than unary minus
        ("c ^ b ^ a", 3**2),  # right-associative: 3 ^ (2 ^ 1)
        ("min(a, b, c) + max(a, c)", 4),
        ("abs(a - c) / b", 1),
        ("floor(2.7) + ceil(2.1) + sqrt(4) + exp(0) + log(1)", 8),
        ("1e-1 * 10 + .5", 1.5),
    ],
)
def test_formula_values(formula: str, expected: float) -> None:
    assert parse_formula(formula, ["a", "b", "c"]).evaluate(
        {"a": 1, "b": 2, "c": 3}
    ) == pytest.approx(expected)


@pytest.mark.parametrize(
    "formula",
    ["a +", "(a", "a b", "a $ b", "__import__('os')", "sin(a)", "abs(a, b)", "", "a.b", "d * 2"],
)
def test_formula_parse_errors(formula: str) -> None:
    with pytest.raises(FormulaError):
        parse_formula(formula, ["a", "b", "c"])


def test_multi_with_a_bad_formula_fails_at_load() -> None:
    with pytest.raises(ConfigurationError, match="calculate_output"):
        load_openai_grader({**GUIDE_MULTI, "calculate_output": "name + + "})


def test_multi_division_by_zero_is_flagged_not_raised() -> None:
    result = load_openai_grader({**GUIDE_MULTI, "calculate_output": "name / arguments"}).run(
        _call("f", "{}"), {"name": "f", "arguments": "x"}
    )
    assert result["reward"] == 0.0
    assert result["metadata"]["errors"]["other_error"] is True


def test_multi_with_a_model_grader_carries_usage_and_errors() -> None:
    client = FunctionClient(lambda r: json.dumps({"steps": [], "result": "n/a"}))
    config = {
        "type": "multi",
        "name": "m",
        "graders": {
            "exact": {
                "type": "string_check",
                "name": "e",
                "input": "{{ sample.output_text }}",
                "reference": "4",
                "operation": "eq",
            },
            "judge": {
                "type": "score_model",
                "name": "j",
                "model": "gpt-4o",
                "input": [{"role": "user", "content": "{{ sample.output_text }}"}],
            },
        },
        "calculate_output": "0.7 * exact + 0.3 * judge",
    }
    result = load_openai_grader(config, models=client).run("4", {})
    assert result["reward"] == pytest.approx(0.7)
    assert result["metadata"]["errors"]["model_grader_parse_error"] is True
    assert "gpt-4o" in result["model_grader_token_usage_per_model"]
