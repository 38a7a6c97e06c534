"""Bad input: each case is either handled by a documented rule or fails with an error naming it.

Errors about configuration (criteria, scales, templates, options) are raised when the judge is
built; errors about data shapes (a completion TRL never produces) are raised before any judge call.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from rftjudge import (
    ChatRequest,
    ConfigurationError,
    Criterion,
    FunctionClient,
    NonAnswerGuard,
    PreferenceJudge,
    RubricJudge,
    Scale,
)
from rftjudge._content import content_text
from rftjudge.judges.base import DEFAULT_MAX_INPUT_CHARS

from support.judges import fenced

CRITERIA = [Criterion(name="quality", description="Is it good?")]
VERDICT = json.dumps({"rationale": "r", "scores": {"quality": 4}})


def recording_judge(**kwargs: Any) -> tuple[RubricJudge, FunctionClient]:
    client = FunctionClient(lambda request: VERDICT)
    return RubricJudge(client, criteria=CRITERIA, **kwargs), client


def user_text(request: ChatRequest) -> str:
    return next(content_text(m.content) for m in request.messages if m.role == "user")


# -- empty ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("response", ["", "   ", "\n\t", "\x00\x07", "\u200b\u200b"])
async def test_empty_response_fails_without_a_judge_call(response: str) -> None:
    judge, client = recording_judge()
    assert await judge.areward("What is 2+2?", response) == 0.0
    assert client.calls == []
    assert sum(judge.stats.guarded.values()) == 1
    assert judge.stats.failures == {}  # a non-answer is a real (zero) reward, not a failure


async def test_empty_inputs_reach_the_judge_with_the_guard_off() -> None:
    judge, client = recording_judge(guard=False)
    assert await judge.areward("", "", reference="") == 0.75
    user = user_text(client.calls[0])
    assert fenced(user, "PROMPT") == "" and fenced(user, "RESPONSE") == ""
    assert fenced(user, "REFERENCE") == ""  # an empty reference is still a reference


# -- huge ----------------------------------------------------------------------------------------


async def test_huge_inputs_are_cut_head_and_tail_with_a_visible_marker() -> None:
    judge, client = recording_judge(max_input_chars=1000)
    response = "HEAD" + "x" * 300_000 + "TAIL"
    prompt = "p" * 999
    assert await judge.areward(prompt, response) == 0.75
    seen = fenced(user_text(client.calls[0]), "RESPONSE")
    assert seen is not None
    head, marker, tail = seen.split("\n")
    assert head.startswith("HEAD") and len(head) == 500
    assert tail.endswith("TAIL") and len(tail) == 500
    assert marker == f"[... {len(response) - 1000} characters omitted ...]"
    assert fenced(user_text(client.calls[0]), "PROMPT") == prompt  # under the limit: untouched
    assert judge.stats.truncated == 1


async def test_default_limit_is_generous_and_none_disables_it() -> None:
    assert DEFAULT_MAX_INPUT_CHARS >= 100_000
    judge, client = recording_judge()
    long_answer = "word " * 10_000  # 50k characters: a long but ordinary completion
    await judge.areward("q", long_answer)
    assert fenced(user_text(client.calls[0]), "RESPONSE") == long_answer
    unlimited, client = recording_judge(max_input_chars=None)
    await unlimited.areward("q", "y" * 300_000)
    assert len(fenced(user_text(client.calls[0]), "RESPONSE") or "") == 300_000


async def test_preference_judge_cuts_both_responses() -> None:
    client = FunctionClient(lambda request: json.dumps({"rationale": "r", "winner": "A"}))
    judge = PreferenceJudge(client, max_input_chars=100, swap=False)
    await judge.acompare("q", "a" * 500, "b" * 50)
    user = user_text(client.calls[0])
    assert "[... 400 characters omitted ...]" in (fenced(user, "RESPONSE_A") or "")
    assert fenced(user, "RESPONSE_B") == "b" * 50


@pytest.mark.parametrize("value", [0, -5, 1.5, "100", True])
def test_invalid_max_input_chars(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_input_chars must be a positive int or None"):
        recording_judge(max_input_chars=value)


# -- not UTF-8 clean, control characters -------------------------------------------------------


async def test_broken_unicode_and_control_characters_are_cleaned() -> None:
    judge, client = recording_judge()
    response = (
        "ok\ud800 \x00\x1b[31mred\x07 \u202eevil\u202c \U000e0041\U000e0042 line\r\nnext\x85end"
    )
    assert await judge.areward("q\udfff", response) == 0.75
    request = client.calls[0]
    body = json.dumps([m.content for m in request.messages], ensure_ascii=False)
    body.encode("utf-8")  # strict: no lone surrogates made it into the request
    seen = fenced(user_text(request), "RESPONSE")
    assert seen == "ok? [31mred evil  line\nnext\nend"


def test_bytes_are_refused_with_a_hint() -> None:
    judge, _ = recording_judge()
    with pytest.raises(ConfigurationError, match="response: got bytes; decode it to str first"):
        judge.reward("q", b"\xff\xfe not utf-8")


# -- references ----------------------------------------------------------------------------------


async def test_none_references_mix_with_real_ones() -> None:
    judge, client = recording_judge()
    rewards = await judge.areward_batch(
        ["q1", "q2", "q3"], ["a1", "a2", "a3"], [None, "4", {"x": 1}]
    )
    assert rewards == [0.75] * 3
    seen = {
        fenced(user_text(r), "RESPONSE"): fenced(user_text(r), "REFERENCE") for r in client.calls
    }
    assert seen == {"a1": None, "a2": "4", "a3": '{"x": 1}'}


# -- shapes TRL may or may not produce ------------------------------------------------------------


async def test_conversational_completions_and_content_parts() -> None:
    judge, client = recording_judge()
    reward_func = judge.as_reward_func()
    prompts = [[{"role": "user", "content": "q"}]] * 3
    completions = [
        [{"role": "assistant", "content": "plain"}],
        [{"role": "assistant", "content": [{"type": "text", "text": "parts"}, {"type": "image"}]}],
        [
            {"role": "assistant", "content": "call"},
            {"role": "tool", "content": "TOOL OUTPUT"},
            {"role": "assistant", "content": "done"},
        ],
    ]
    assert await reward_func(prompts=prompts, completions=completions) == [0.75] * 3
    seen = sorted(fenced(user_text(r), "RESPONSE") or "" for r in client.calls)
    assert seen == ["call\ndone", "parts", "plain"]


@pytest.mark.parametrize(
    ("completion", "match"),
    [
        (42, "completion: expected a string or a list of chat messages, got int"),
        (
            [42],
            "completion: expected a string or a list of chat messages, found an item of type int",
        ),
        (b"bytes", "completion: got bytes"),
    ],
)
async def test_unexpected_completion_shapes_name_the_problem(completion: Any, match: str) -> None:
    judge, client = recording_judge()
    with pytest.raises(ConfigurationError, match=match):
        await judge.as_reward_func()(prompts=["q"], completions=[completion])
    assert client.calls == []


@pytest.mark.parametrize(
    ("prompts", "completions", "kwargs", "match"),
    [
        (["q", "q"], ["a"], {}, "got 2 prompts but 1 completions"),
        (["q"], ["a"], {"reference": ["r", "s"]}, "column 'reference' has 2 values for 1"),
    ],
)
async def test_mismatched_lengths_in_the_reward_function(
    prompts: list[Any], completions: list[Any], kwargs: dict[str, Any], match: str
) -> None:
    judge, _ = recording_judge()
    with pytest.raises(ConfigurationError, match=match):
        await judge.as_reward_func()(prompts=prompts, completions=completions, **kwargs)


def test_mismatched_lengths_in_reward_batch() -> None:
    judge, _ = recording_judge()
    with pytest.raises(
        ConfigurationError, match=r"prompts and responses differ in length \(2 vs 1\)"
    ):
        judge.reward_batch(["q", "q"], ["a"])
    with pytest.raises(ConfigurationError, match=r"references and prompts differ in length"):
        judge.reward_batch(["q"], ["a"], ["r", "s"])


# -- configuration, at construction --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {
                "criteria": [
                    Criterion(name="a-b", description="x"),
                    Criterion(name="a_b", description="y"),
                ]
            },
            "criterion names 'a-b' and 'a_b' collide",
        ),
        ({"criteria": []}, "non-empty list of Criterion"),
        ({"criteria": ["quality"]}, "must contain Criterion objects; got str"),
        ({"scale": (1.0, 5)}, "scale must be"),
        ({"scale": (True, 5)}, "scale must be"),
        ({"scale": (1, 1)}, "low < high"),
        ({"scale": (0, 1000)}, "too wide"),
        ({"template": "{{ response }} {{ undefined_thing }}"}, "undefined_thing"),
        ({"template": "{% for %}"}, "template syntax error on line 1"),
        ({"template": "{{ ''.__class__.__mro__ }}"}, "the sandbox forbids"),
        ({"template": Path("/no/such/template.j2")}, "cannot read template file"),
        ({"guard": "yes"}, "guard must be True, False, None or an object"),
        ({"batch_deadline": 0}, "batch_deadline must be None or a number of seconds > 0"),
        ({"batch_deadline": -1.0}, "batch_deadline must be None or a number of seconds > 0"),
        ({"on_error": math.nan}, "on_error must be a number in"),
        ({"max_reasks": -1}, "max_reasks must be an int >= 0"),
    ],
)
def test_bad_configuration_is_refused_at_construction(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"criteria": CRITERIA, **kwargs}
    with pytest.raises(ConfigurationError, match=match):
        RubricJudge(FunctionClient(lambda r: VERDICT), **args)


def test_a_degenerate_scale_cannot_be_built_directly() -> None:
    with pytest.raises(ValueError, match="low < high"):
        Scale(low=3, high=3)


@pytest.mark.parametrize("deadline", [0, -1, "soon", True])
def test_bad_per_call_deadline(deadline: Any) -> None:
    judge, _ = recording_judge()
    with pytest.raises(ConfigurationError, match="deadline must be None or a number of seconds"):
        judge.reward_batch(["q"], ["a"], deadline=deadline)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"extra_openers": ["("]}, "invalid opener pattern"),
        ({"extra_openers": [""]}, "openers must be non-empty strings"),
        ({"openers": [None]}, "openers must be non-empty strings"),
    ],
)
def test_bad_guard_configuration(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        NonAnswerGuard(**kwargs)
