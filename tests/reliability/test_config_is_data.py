"""Issue 17 item 8: a config file (and the template it names) is data, not code.

A YAML alias bomb must be refused at once with a one-line error instead of being expanded by the
validation and the fingerprint; a template must not hang ``load_judge`` nor build huge values.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rftjudge import ConfigurationError, OpenAIClient, PromptTemplate
from rftjudge.app.config import fingerprint, load_config, load_judge, parse_config
from rftjudge.templates import _budget

# Under 600 bytes: nine levels of nine aliases, 9**9 (387 million) strings once expanded.
_LEVELS = "\n".join(f"  l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9))
ALIAS_BOMB = (
    "type: rubric\nprovider: openai\nmodel: m\nbase_url: http://judge.test/v1\n"
    "criteria: [{name: c, description: d}]\nclient_options:\n"
    '  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + _LEVELS + "\n"
)


def test_a_yaml_alias_bomb_is_refused_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB, encoding="utf-8")
    assert len(ALIAS_BOMB.encode()) < 600
    with pytest.raises(ConfigurationError, match="expands to more than 100,000 values") as info:
        load_config(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_a_self_referencing_alias_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("model: m\nprovider: openai\nclient_options: &a {x: *a}\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="expands to more than"):
        load_config(path)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_config_nested_thousands_deep_is_one_line(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text('{"client_options": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}")
    with pytest.raises(ConfigurationError, match="nested too deeply"):
        load_config(path)


def test_a_config_over_a_mebibyte_is_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text('{"model": "' + "m" * (2 << 20) + '"}', encoding="utf-8")
    with pytest.raises(ConfigurationError, match="over 1,048,576 characters"):
        load_config(path)


def test_ordinary_anchors_still_load_and_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(
        "provider: openai\nmodel: m\nbase_url: http://judge.test/v1\n"
        "criteria:\n  - &c {name: a, description: d}\n  - {name: b, description: d}\n",
        encoding="utf-8",
    )
    assert len(fingerprint(load_config(path))) == 12
    assert parse_config(
        {"provider": "openai", "model": "m", "criteria": [{"name": "a", "description": "d"}]}
    )


RUNAWAY = (
    "{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}{{ response }}"
)


def test_a_runaway_template_fails_load_judge_within_its_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_budget, "RENDER_BUDGET_S", 0.2)
    (tmp_path / "slow.j2").write_text(RUNAWAY, encoding="utf-8")
    path = tmp_path / "judge.yaml"
    path.write_text(
        "provider: openai\nmodel: m\nbase_url: http://judge.test/v1\ntemplate: slow.j2\n"
        "criteria: [{name: c, description: d}]\n",
        encoding="utf-8",
    )
    client = OpenAIClient("m", base_url="http://judge.test/v1", api_key="k")
    with pytest.raises(ConfigurationError, match=r"did not render within 0.2 s"):
        load_judge(path, client=client)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('{{ "x" * 10**10 }}', "repeating a str"),
        ("{{ [1] * 99999999 }}", "repeating a list"),
        ("{{ 7 ** 99999999 }}", "exponent"),
        ('{{ "x" | center(10**9) }}', "over the template limit"),
        ('{{ "%0999999999d" % 1 }}', "format field"),
        ('{{ "%0999999999d" | format(1) }}', "format field"),
        ('{{ "{:999999999}".format(1) }}', "format field"),
        ('{{ "x".ljust(10**9) }}', "over the template limit"),
        ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "RecursionError"),
        (
            "{% for a in range(99999) %}{% for b in range(99) %}xxxxxxxxxx{% endfor %}{% endfor %}",
            "renders more than 1,048,576 characters",
        ),
    ],
)
def test_a_template_cannot_build_a_huge_value(source: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        PromptTemplate(source).render(response="r")


def test_ordinary_templates_render_as_before() -> None:
    template = PromptTemplate('[{{ "%5d" % 3 }}|{{ "ab" | center(6) }}|{{ 2 ** 10 }}|{{ "-" * 3 }}')
    assert template.render()[0].content == "[    3|  ab  |1024|---"
    assert template.render()[0].content == "[    3|  ab  |1024|---"  # later renders: inline
