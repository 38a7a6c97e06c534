"""Judge options are declared once: judges, the config schema and the docs agree."""

from __future__ import annotations

import inspect
import re
import warnings
from pathlib import Path
from typing import Any

import pytest

from rftjudge import Criterion, FunctionClient, ListwiseJudge, PreferenceJudge, RubricJudge
from rftjudge.app.config import JudgeConfig, build_judge, parse_config
from rftjudge.judges._options import JudgeOptions
from rftjudge.judges.base import BaseJudge

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
JUDGES: dict[str, type[BaseJudge[Any]]] = {"rubric": RubricJudge, "preference": PreferenceJudge, "listwise": ListwiseJudge}
CLIENT_AND_REPORT_FIELDS = {
    "type",
    "provider",
    "model",
    "base_url",
    "api_key_env",
    "structured_output",
    "logprobs",
    "max_concurrency",
    "timeout",
    "max_retries",
    "client_options",
    "limits",
    "criteria",
    "price",
}
CRITERIA = [Criterion(name="quality", description="Is it good?")]


def _client() -> FunctionClient:
    return FunctionClient(lambda request: '{"rationale": "", "scores": {"quality": 3}}')


def _keywords(judge: type[BaseJudge[Any]]) -> set[str]:
    parameters = inspect.signature(judge.__init__).parameters
    return {n for n, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


@pytest.mark.parametrize("kind", sorted(JUDGES))
def test_every_judge_argument_is_a_config_field(kind: str) -> None:
    arguments = _keywords(JUDGES[kind]) | set(JudgeOptions.__annotations__)
    assert arguments - set(JudgeConfig.model_fields) == set()


def test_every_judge_config_field_is_some_judges_argument() -> None:
    arguments = set(JudgeOptions.__annotations__).union(*(_keywords(j) for j in JUDGES.values()))
    assert set(JudgeConfig.model_fields) - arguments - CLIENT_AND_REPORT_FIELDS == set()


def test_the_config_reference_documents_every_field() -> None:
    documented = set(re.findall(r"`([a-z_]+)`", DOCS.read_text(encoding="utf-8")))
    assert set(JudgeConfig.model_fields) - documented == set()


def test_judges_share_one_signature_shape() -> None:
    for judge in JUDGES.values():
        parameters = list(inspect.signature(judge.__init__).parameters.values())
        assert [p.name for p in parameters[:3]] == ["self", "client", "criteria"]
        assert all(p.kind is not p.POSITIONAL_OR_KEYWORD for p in parameters[3:])
        assert parameters[-1].kind is inspect.Parameter.VAR_KEYWORD  # **JudgeOptions
        assert "scoring" in _keywords(judge)


def test_old_positional_arguments_still_work_with_a_deprecation_warning() -> None:
    with pytest.warns(DeprecationWarning, match=r"pass scale, template, on_error by keyword"):
        # the deprecated positional forms, deliberately off the keyword-only signatures
        judge = RubricJudge(_client(), CRITERIA, (1, 10), None, 0.5)  # type: ignore[call-arg, arg-type]
    assert judge.scale.high == 10 and judge.on_error == 0.5
    with pytest.warns(DeprecationWarning, match="swap, allow_ties"):
        preference = PreferenceJudge(_client(), None, False, False)  # type: ignore[call-arg]
    assert preference.swap is False and preference.allow_ties is False
    with pytest.warns(DeprecationWarning, match="scale, permutations"):
        listwise = ListwiseJudge(_client(), None, (1, 5), 2)  # type: ignore[call-arg]
    assert listwise.scale.high == 5 and listwise.permutations == 2


def test_positional_and_keyword_for_the_same_argument_is_refused() -> None:
    with pytest.raises(TypeError, match="'scale' twice"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        RubricJudge(_client(), CRITERIA, (1, 10), scale=(1, 5))  # type: ignore[misc]


def test_keyword_calls_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RubricJudge(_client(), CRITERIA, scale=(1, 10), on_error=0.5, name="q")
        PreferenceJudge(_client(), swap=False, scoring="sampled")
        ListwiseJudge(_client(), permutations=2)


@pytest.mark.parametrize(("old", "new"), [(None, "sampled"), (True, "expected"), (False, "sampled")])
def test_preference_use_logprobs_is_the_old_spelling_of_scoring(old: bool | None, new: str) -> None:
    # FunctionClient reports no logprobs, so None ("auto") resolves to sampled
    with pytest.warns(DeprecationWarning, match="use_logprobs= is deprecated"):
        judge = PreferenceJudge(_client(), use_logprobs=old)
    assert judge.scoring == new
    assert judge.use_logprobs is (new == "expected")


def test_preference_scoring_in_a_config_file() -> None:
    config = parse_config({"type": "preference", "scoring": "sampled", "swap": False})
    judge = build_judge(config, _client())
    assert isinstance(judge, PreferenceJudge) and judge.scoring == "sampled" and not judge.swap
