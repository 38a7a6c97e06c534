"""Judge config files: YAML/TOML/JSON onto the Python API, and errors naming file, field, problem."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

import rftjudge
from rftjudge import (
    ConfigurationError,
    ListwiseJudge,
    OpenAIClient,
    PreferenceJudge,
    RubricJudge,
)
from rftjudge.app.config import (
    DEFAULT_JUDGE,
    JudgeConfig,
    build_client,
    fingerprint,
    judge_session,
    load_config,
    load_judge,
    parse_config,
)

from support.payloads import BASE, CHAT, completion, verdict

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


RUBRIC_YAML = """
    type: rubric
    provider: openai
    model: gpt-test
    base_url: http://judge.test/v1
    api_key_env: MY_JUDGE_KEY
    max_concurrency: 3
    timeout: 7
    max_retries: 1
    structured_output: json_object
    criteria:
      - name: correctness
        description: Is it right?
        weight: 2
      - name: tone
        description: Is it polite?
    scale: [0, 10]
    on_error: 0.5
    max_tokens: 200
    temperature: null
    price: {input: 1.0, output: 4.0}
"""


def test_yaml_maps_one_to_one_onto_the_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-secret-123")
    judge = load_judge(write(tmp_path, "judge.yaml", RUBRIC_YAML))
    assert isinstance(judge, RubricJudge)
    assert [c.name for c in judge.criteria] == ["correctness", "tone"]
    assert judge.criteria[0].weight == 2.0
    assert (judge.scale.low, judge.scale.high) == (0, 10)
    assert judge.on_error == 0.5
    assert judge.max_tokens == 200
    assert judge.temperature is None  # an explicit null is passed through
    client = judge.client
    assert isinstance(client, OpenAIClient)
    assert client.base_url == BASE
    assert client.max_concurrency == 3
    assert client.timeout == 7.0
    assert client.retry_policy.max_retries == 1
    assert client.structured_output == "json_object"
    assert "sk-secret-123" in client.secrets()
    assert "sk-secret-123" not in repr(client)


def test_toml_preference_judge(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pref.toml",
        """
        type = "preference"
        provider = "openai"
        model = "m"
        base_url = "http://judge.test/v1"
        swap = false
        allow_ties = false

        [[criteria]]
        name = "helpfulness"
        description = "Which helps more?"
        """,
    )
    judge = load_judge(path)
    assert isinstance(judge, PreferenceJudge)
    assert judge.swap is False and judge.allow_ties is False
    assert [c.name for c in judge.criteria] == ["helpfulness"]


def test_json_config_and_registry_providers(tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    path.write_text(
        json.dumps(
            {
                "provider": "vllm",
                "model": "Qwen/Qwen3-8B",
                "criteria": [{"name": "q", "description": "quality"}],
            }
        )
    )
    judge = load_judge(path)
    assert isinstance(judge.client, OpenAIClient)
    assert judge.client.base_url == "http://localhost:8000/v1"  # the vllm provider's default


def test_build_client_goes_through_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def fake(spec: str, **kwargs: Any) -> Any:
        seen.append((spec, kwargs))
        return OpenAIClient("m", base_url=BASE)

    monkeypatch.setattr("rftjudge.app.config.make_client", fake)
    config = JudgeConfig(
        provider="ollama", model="qwen3:8b", timeout=5, criteria=DEFAULT_JUDGE.criteria
    )
    build_client(config)
    assert seen == [("ollama:qwen3:8b", {"timeout": 5.0})]
    assert rftjudge.client is not None  # the registry is public


def test_model_without_provider_means_openai_compatible(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "j.yaml",
        """
        model: local-model
        base_url: http://judge.test/v1
        criteria: [{name: q, description: quality}]
        """,
    )
    judge = load_judge(path)
    assert isinstance(judge.client, OpenAIClient)
    assert judge.client.provider == "openai"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("critera: []\n", r"field `critera`: unknown field \(known fields: .*criteria"),
        (
            "criteria: [{name: q, description: d, weight: -1}]\n",
            r"field `criteria.0.weight`: .*finite number > 0",
        ),
        ("criteria: [{name: '1bad', description: d}]\n", r"field `criteria.0.name`"),
        ("type: rubric\n", r"field `criteria`: a rubric judge needs at least one criterion"),
        (
            "type: preference\nscale: [1, 5]\n",
            r"field `scale`: not a setting of a preference judge",
        ),
        ("criteria: [{name: q, description: d}]\nswap: true\n", r"field `swap`: not a setting"),
        ("criteria: [{name: q, description: d}]\non_error: 2\n", r"field `on_error`"),
        ("criteria: [{name: q, description: d}]\ntimeout: 0\n", r"field `timeout`"),
        ("criteria: [{name: q, description: d}]\nscale: [1, 2, 3]\n", r"field `scale"),
        ("- just\n- a list\n", r"must be a mapping"),
        (
            "criteria: [{name: q, description: d}]\napi_key_env: X\n",
            r"field `api_key_env`: the local judge needs no key",
        ),
        (
            "provider: 'openai:gpt'\nmodel: m\ncriteria: [{name: q, description: d}]\n",
            "field `provider`",
        ),
    ],
)
def test_errors_name_file_field_and_problem(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(ConfigurationError, match=message) as info:
        load_config(path)
    assert str(info.value).startswith(str(path))


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yaml", "criteria:\n  - name: q\n    description: [unclosed\n")
    with pytest.raises(ConfigurationError, match=r"broken.yaml: line \d+: invalid YAML"):
        load_config(path)


def test_invalid_toml_json_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="invalid TOML"):
        load_config(write(tmp_path, "b.toml", "type = \n"))
    with pytest.raises(ConfigurationError, match="invalid JSON"):
        load_config(write(tmp_path, "b.json", "{"))
    with pytest.raises(ConfigurationError, match=r"unknown judge config format '\.ini'"):
        load_config(write(tmp_path, "b.ini", "x"))
    with pytest.raises(ConfigurationError, match="cannot read the judge config"):
        load_config(tmp_path / "absent.yaml")


def test_missing_key_variable_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "j.yaml", RUBRIC_YAML)
    with pytest.raises(ConfigurationError, match="MY_JUDGE_KEY is not set"):
        load_judge(path)


def test_provider_settings_are_checked_by_the_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_KEY", "sk-ant-test")
    bad_mode = write(
        tmp_path,
        "mode.yaml",
        """
        provider: anthropic
        model: claude-test
        api_key_env: MY_KEY
        structured_output: json_object
        criteria: [{name: q, description: d}]
        """,
    )
    with pytest.raises(ConfigurationError, match=r"mode.yaml: structured_output must be one of"):
        load_judge(bad_mode)
    unknown = write(
        tmp_path,
        "unknown.yaml",
        """
        provider: anthropic
        model: claude-test
        api_key_env: MY_KEY
        client_options: {no_such_option: 1}
        criteria: [{name: q, description: d}]
        """,
    )
    with pytest.raises(
        ConfigurationError, match=r"unknown.yaml: provider 'anthropic': .*no_such_option"
    ):
        load_judge(unknown)


def test_client_options_reach_the_client(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "j.yaml",
        """
        model: m
        base_url: http://judge.test/v1
        client_options: {max_tokens_field: max_completion_tokens}
        criteria: [{name: q, description: d}]
        """,
    )
    client = load_judge(path).client
    assert isinstance(client, OpenAIClient)
    assert client.max_tokens_field == "max_completion_tokens"


def test_local_config_needs_a_session_or_client(tmp_path: Path) -> None:
    path = ROOT / "examples" / "judges" / "helpfulness.yaml"
    with pytest.raises(ConfigurationError, match="judge_session"):
        load_judge(path)
    client = rftjudge.FunctionClient(lambda r: json.dumps(verdict({"helpfulness": 4})))
    judge = load_judge(path, client=client)
    assert judge.reward("p", "r") == pytest.approx(0.75)


def test_template_is_found_next_to_the_config(tmp_path: Path, api: respx.MockRouter) -> None:
    (tmp_path / "mine.j2").write_text(
        "Grade {{ response | fence('response') }} on {{ criteria[0].name }}. {{ output_schema }}"
    )
    path = write(
        tmp_path,
        "j.yaml",
        """
        base_url: http://judge.test/v1
        model: m
        template: mine.j2
        criteria: [{name: q, description: d}]
        """,
    )
    config = load_config(path)
    assert config.template == str((tmp_path / "mine.j2").resolve())
    route = api.post(CHAT).mock(
        return_value=httpx.Response(200, json=completion(verdict({"q": 5})))
    )
    judge = load_judge(path)
    assert judge.reward("p", "hello") == pytest.approx(1.0)
    sent = json.loads(route.calls[0].request.content)
    assert sent["messages"][-1]["content"].startswith("Grade <<<RESPONSE")


def test_listwise_config_and_settings_every_judge_takes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "group.yaml",
        """
        type: listwise
        model: m
        base_url: http://judge.test/v1
        criteria: [{name: q, description: quality}]
        scale: [0, 5]
        permutations: 2
        aggregate: mean
        alphabet: letters
        chunk_size: 4
        max_prompt_chars: 20000
        ridge: 0.5
        exact: false
        guard: false
        max_input_chars: null
        batch_deadline: 30
        """,
    )
    judge = load_judge(path)
    assert isinstance(judge, ListwiseJudge)
    assert (judge.scale.low, judge.scale.high, judge.permutations) == (0, 5, 2)
    assert (judge.aggregate, judge.alphabet, judge.chunk_size) == ("mean", "letters", 4)
    assert (judge.max_prompt_chars, judge.ridge) == (20000, 0.5)
    assert not judge.exact.enabled and judge.guard is None
    assert judge.max_input_chars is None and judge.batch_deadline == 30

    preference = load_judge(
        write(
            tmp_path,
            "bt.yaml",
            """
            type: preference
            model: m
            base_url: http://judge.test/v1
            group_reward: bradley_terry
            schedule: circular
            bt_prior_sd: 2
            max_input_chars: 5000
            """,
        )
    )
    assert isinstance(preference, PreferenceJudge)
    assert (preference.group_reward, preference.schedule) == ("bradley_terry", "circular")
    assert preference.bt_prior_sd == 2.0 and preference.max_input_chars == 5000
    assert preference.guard is not None  # on unless the file says guard: false


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("type: listwise\nswap: true\n", r"field `swap`: not a setting of a listwise judge"),
        ("type: preference\npermutations: 3\n", r"field `permutations`: not a setting of a pref"),
        (
            "criteria: [{name: q, description: d}]\nchunk_size: 4\n",
            r"field `chunk_size`: not a setting of a rubric judge",
        ),
        ("type: listwise\naggregate: median\n", r"field `aggregate`"),
        ("type: preference\nschedule: swiss\n", r"field `schedule`"),
    ],
)
def test_settings_of_another_judge_type_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_config(write(tmp_path, "bad.yaml", text))


def test_listwise_config_is_refused_by_row_commands_before_reading_data(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from rftjudge.app.cli import app

    judge = write(tmp_path, "group.yaml", "type: listwise\nmodel: m\nbase_url: http://x.test/v1\n")
    for command in ("compare", "calibrate"):
        result = CliRunner().invoke(
            app,
            [command, str(tmp_path / "absent.jsonl"), "--judge", str(judge), "--label", "h"][
                : 6 if command == "calibrate" else 4
            ],
        )
        assert result.exit_code != 0
        assert "a listwise judge scores the completions of one prompt against each other" in (
            result.output
        )
    # `score` judges groups with it (group mode): the data is read, and here it is absent
    result = CliRunner().invoke(
        app, ["score", str(tmp_path / "absent.jsonl"), "--judge", str(judge)]
    )
    assert result.exit_code == 1 and "absent.jsonl: no such file or directory" in result.output


def test_fingerprints_ignore_settings_left_at_their_defaults() -> None:
    criteria = [{"name": "q", "description": "d"}]
    base = parse_config({"model": "m", "criteria": criteria})
    spelled_out = parse_config({"model": "m", "criteria": criteria, "scoring": None, "guard": None})
    assert fingerprint(base) == fingerprint(spelled_out)
    assert fingerprint(base) != fingerprint(
        parse_config({"model": "m", "criteria": criteria, "guard": False})
    )
    deadline = parse_config({"model": "m", "criteria": criteria, "batch_deadline": 5})
    assert fingerprint(deadline) == fingerprint(base)  # operational: the verdicts are the same
    # an explicit null is not the default: "send no temperature" is another judge
    assert fingerprint(parse_config({"model": "m", "criteria": criteria, "temperature": None})) != (
        fingerprint(base)
    )


def test_fingerprint_tracks_what_changes_judgments(tmp_path: Path) -> None:
    base = parse_config({"model": "m", "criteria": [{"name": "q", "description": "d"}]})
    same = parse_config(
        {
            "model": "m",
            "criteria": [{"name": "q", "description": "d"}],
            "timeout": 3,
            "max_concurrency": 2,
        }
    )
    other = parse_config({"model": "m", "criteria": [{"name": "q", "description": "e"}]})
    assert fingerprint(base) == fingerprint(same)
    assert fingerprint(base) != fingerprint(other)
    template = tmp_path / "t.j2"
    template.write_text("A {{ response }} {{ output_schema }}")
    with_file = parse_config(
        {"model": "m", "template": str(template), "criteria": [{"name": "q", "description": "d"}]}
    )
    before = fingerprint(with_file)
    template.write_text("B {{ response }} {{ output_schema }}")
    assert fingerprint(with_file) != before  # editing the template file re-judges


class FakeServer:
    """Stands in for a running LocalJudgeServer (judge_session(server=...) reuses it)."""

    base_url = BASE
    alias = "local-judge"
    api_key = None


def test_local_session_speaks_llamacpp_dialect(api: respx.MockRouter) -> None:
    route = api.post(CHAT).mock(
        return_value=httpx.Response(200, json=completion(verdict({"helpfulness": 5})))
    )
    announced: list[str] = []
    with judge_session(None, server=FakeServer(), announce=announced.append) as judge:  # type: ignore[arg-type]
        assert judge.reward("What is 2+2?", "4") == pytest.approx(1.0)
    body = json.loads(route.calls[0].request.content)
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["rationale", "scores"]
    assert body["max_tokens"] == DEFAULT_JUDGE.max_tokens
    assert body["logprobs"] is True  # expected scores from the local judge's logprobs
    assert "authorization" not in route.calls[0].request.headers


def test_session_for_a_provider_closes_its_client(monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[bool] = []
    config = JudgeConfig(model="m", base_url=BASE, criteria=DEFAULT_JUDGE.criteria)
    with judge_session(config) as judge:
        monkeypatch.setattr(judge.client, "close", lambda: closed.append(True))
    assert closed == [True]


@pytest.mark.parametrize(
    "path", sorted((ROOT / "examples" / "judges").iterdir()), ids=lambda p: p.name
)
def test_example_judge_configs_are_valid(path: Path) -> None:
    config = load_config(path)
    assert config.criteria
    assert config.uses_local_judge == (config.provider is None)
