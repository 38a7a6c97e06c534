"""Where the rationale goes (before / after / none) for the preference and listwise judges: the
schema order, the prompt, and the winner or scores still read in band and exactly in every mode."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from rftjudge import (
    Capabilities,
    ChatRequest,
    ChatResponse,
    ConfigurationError,
    FunctionClient,
    ListwiseJudge,
    PreferenceJudge,
    TokenLogprob,
    Usage,
)
from rftjudge._content import content_text
from rftjudge.app.config import build_judge, parse_config
from rftjudge.judges._group import GroupReward
from rftjudge.judges._rationale import Rationale

from support.judges import rewards
from support.listwise import shown, with_logprobs

MODES = ["before", "after", "none"]
GOOD = {"good": 8, "poor": 2}


def in_schema_order(request: ChatRequest, verdict: dict[str, Any]) -> str:
    """The verdict as a constrained decoder writes it: the schema's properties, in its order."""
    order = list(request.output_schema["properties"])  # type: ignore[index]
    return json.dumps({k: verdict[k] for k in order})


def labelled(text: str, at: int, length: int, probs: dict[str, float]) -> ChatResponse:
    """``text`` in three tokens; the middle one (``text[at:at + length]``) carries ``probs``."""
    top = tuple((label, math.log(p)) for label, p in probs.items())
    label = text[at : at + length]
    tokens = [
        TokenLogprob(text[:at], 0.0),
        TokenLogprob(label, dict(top).get(label, -5.0), top),
        TokenLogprob(text[at + length :], 0.0),
    ]
    return ChatResponse(
        text=text,
        finish_reason="stop",
        usage=Usage(requests=1),
        logprobs=tuple(t for t in tokens if t.token),
    )


def system_text(request: ChatRequest) -> str:
    return "\n".join(content_text(m.content) for m in request.messages)


# -- schema order and prompt -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "order", "instruction"),
    [
        ("before", ["rationale", "winner"], 'Think briefly in "rationale" first'),
        ("after", ["winner", "rationale"], 'Give the verdict ("winner") first, then explain it'),
        ("none", ["winner"], 'Give the verdict ("winner"), nothing else.'),
    ],
)
def test_preference_schema_order_and_prompt_follow_the_option(
    where: Rationale, order: list[str], instruction: str
) -> None:
    seen: list[ChatRequest] = []

    def handler(request: ChatRequest) -> str:
        seen.append(request)
        return in_schema_order(request, {"winner": "A", "rationale": "fine"})

    judge = PreferenceJudge(FunctionClient(handler), swap=False, rationale=where)
    result = judge.compare("q", "x", "y")
    schema = seen[0].output_schema
    assert schema is not None
    assert list(schema["properties"]) == order and schema["required"] == order
    prompt = system_text(seen[0])
    assert instruction in prompt
    assert ('"rationale"' in prompt) is (where != "none")
    assert result.winner == "A" and result.rationale == ("" if where == "none" else "fine")


@pytest.mark.parametrize(
    ("where", "order", "instruction"),
    [
        ("before", ["rationale", "scores"], 'Think briefly in "rationale" first'),
        ("after", ["scores", "rationale"], "Give exactly one score per candidate id first"),
        ("none", ["scores"], "no other ids — and nothing else."),
    ],
)
async def test_listwise_schema_order_and_prompt_follow_the_option(
    where: Rationale, order: list[str], instruction: str
) -> None:
    seen: list[ChatRequest] = []

    def handler(request: ChatRequest) -> str:
        seen.append(request)
        scores = [{"id": c, "score": GOOD[t]} for c, t in shown(request)]
        return in_schema_order(request, {"scores": scores, "rationale": "fine"})

    judge = ListwiseJudge(FunctionClient(handler), permutations=1, rationale=where)
    out = await judge.ajudge_group("q", ["good", "poor"])
    assert rewards(out) == pytest.approx([0.8, 0.2])
    schema = seen[0].output_schema
    assert schema is not None
    assert list(schema["properties"]) == order and schema["required"] == order
    assert schema["properties"]["scores"]["minItems"] == 2  # the items stay bounded
    prompt = system_text(seen[0])
    assert instruction in prompt
    assert ('"rationale"' in prompt) is (where != "none")
    assert isinstance(out[0], GroupReward)
    assert out[0].rationale == ("" if where == "none" else "fine")


def test_the_rationale_is_bounded_by_default_and_the_bound_is_optional() -> None:
    client = FunctionClient(lambda r: "")

    def bound(judge: PreferenceJudge | ListwiseJudge) -> int | None:
        schema = judge.output_schema
        text = (schema if isinstance(schema, dict) else schema(["CAAA"]))["properties"]["rationale"]
        return text.get("maxLength")  # type: ignore[no-any-return]

    preference, listwise = PreferenceJudge(client), ListwiseJudge(client)
    assert preference.rationale == listwise.rationale == "before"
    assert bound(preference) == bound(listwise) == 800
    assert bound(PreferenceJudge(client, rationale_max_chars=None)) is None
    assert bound(ListwiseJudge(client, rationale_max_chars=None)) is None
    assert bound(ListwiseJudge(client, rationale_max_chars=50)) == 50


# -- the winner and the scores are still read in every mode ----------------------------------------


@pytest.mark.parametrize("where", MODES)
def test_preference_reads_the_winner_in_band_in_every_mode(where: Rationale) -> None:
    def handler(request: ChatRequest) -> ChatResponse:
        # the rationale quotes a winner key (escaped in its string), and a note follows the
        # object: neither is the verdict's own label
        verdict = in_schema_order(request, {"winner": "B", "rationale": 'not "winner": "A"'})
        text = verdict + '\n"winner": "A" was my first thought'
        at = verdict.index('"winner": "') + len('"winner": "')
        return labelled(text, at, 1, {"B": 0.6, "A": 0.3, "tie": 0.1})

    client = FunctionClient(handler, capabilities=Capabilities(logprobs=True, max_top_logprobs=20))
    judge = PreferenceJudge(client, swap=False, rationale=where)
    assert judge.scoring == "expected" and not judge.exact.enabled
    result = judge.compare("q", "x", "y")
    assert result.winner == "B" and result.from_logprobs
    assert result.prob_a == pytest.approx(0.3 + 0.05)


@pytest.mark.parametrize("where", MODES)
def test_preference_reads_the_winner_exactly_in_every_mode(where: Rationale) -> None:
    prefixes: list[str] = []

    def handler(request: ChatRequest) -> Any:
        if request.messages[-1].role == "assistant":  # the exact read
            prefixes.append(content_text(request.messages[-1].content))
            return labelled("A", 0, 1, {"A": 0.7, "B": 0.2, "tie": 0.1})
        return in_schema_order(request, {"winner": "B", "rationale": "r"})

    client = FunctionClient(
        handler, capabilities=Capabilities(logprobs=True, max_top_logprobs=20, prefill_choice=True)
    )
    judge = PreferenceJudge(client, swap=False, rationale=where)
    result = judge.compare("q", "x", "y")
    expected_prefix = '{"rationale": "r", "winner": "' if where == "before" else '{"winner": "'
    assert prefixes == [expected_prefix]
    assert result.from_logprobs and result.prob_a == pytest.approx(0.7 + 0.05)
    assert judge.exact.fallbacks == 0


@pytest.mark.parametrize("where", MODES)
async def test_listwise_reads_each_score_in_band_in_every_mode(where: Rationale) -> None:
    spread: dict[str, dict[str, float]] = {}

    def handler(request: ChatRequest) -> ChatResponse:
        items = shown(request)
        for cid, text in items:
            spread[cid] = {"8": 0.5, "9": 0.5} if text == "good" else {"2": 0.8, "3": 0.2}
        scores = [{"id": c, "score": GOOD[t]} for c, t in items]
        return with_logprobs(in_schema_order(request, {"scores": scores, "rationale": "r"}), spread)

    client = FunctionClient(handler, capabilities=Capabilities(logprobs=True, max_top_logprobs=20))
    judge = ListwiseJudge(client, permutations=1, rationale=where)
    out = await judge.ajudge_group("q", ["good", "poor"])
    assert rewards(out) == pytest.approx([0.85, 0.22])
    assert judge.stats.expected_fallbacks == 0


@pytest.mark.parametrize("where", MODES)
async def test_listwise_reads_each_score_exactly_in_every_mode(where: Rationale) -> None:
    exact = {"good": {"8": 0.5, "9": 0.5}, "poor": {"2": 1.0}}
    answers: dict[str, str] = {}
    prefixes: list[str] = []

    def handler(request: ChatRequest) -> Any:
        if request.messages[-1].role == "assistant":
            prefix = content_text(request.messages[-1].content)
            prefixes.append(prefix)
            cid = prefix.rsplit('"id": "', 1)[1].split('"', 1)[0]
            label = max(exact[answers[cid]], key=lambda k: exact[answers[cid]][k])
            return labelled(label, 0, len(label), exact[answers[cid]])
        items = shown(request)
        answers.update(dict(items))
        scores = [{"id": c, "score": GOOD[t]} for c, t in items]
        return in_schema_order(request, {"scores": scores, "rationale": "r"})

    client = FunctionClient(
        handler, capabilities=Capabilities(logprobs=True, max_top_logprobs=20, prefill_choice=True)
    )
    judge = ListwiseJudge(client, permutations=1, rationale=where)
    out = await judge.ajudge_group("q", ["good", "poor"])
    assert rewards(out) == pytest.approx([0.85, 0.2])
    assert len(prefixes) == 2
    assert all(p.startswith('{"rationale": "r"') is (where == "before") for p in prefixes)
    assert judge.metrics_of(out)["exact_fallback_rate"] == 0.0


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize("judge_type", [PreferenceJudge, ListwiseJudge])
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rationale": "first"}, 'rationale must be "before", "after" or "none"; got \'first\''),
        ({"rationale_max_chars": 0}, "rationale_max_chars must be a positive int or None; got 0"),
        ({"rationale_max_chars": True}, "rationale_max_chars must be a positive int"),
        ({"rationale_max_chars": 2.5}, "rationale_max_chars must be a positive int"),
    ],
)
def test_bad_values_are_one_line_configuration_errors(
    judge_type: Any, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        judge_type(FunctionClient(lambda r: ""), **options)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("judge_type", ["preference", "listwise"])
def test_config_files_set_the_option_for_every_judge_type(judge_type: str) -> None:
    config = parse_config({"type": judge_type, "rationale": "after", "rationale_max_chars": 100})
    judge: Any = build_judge(config, FunctionClient(lambda r: ""))
    assert judge.rationale == "after" and judge.rationale_max_chars == 100
    schema = judge.output_schema if judge_type == "preference" else judge.output_schema(["CAAA"])
    assert list(schema["properties"])[-1] == "rationale"
    assert schema["properties"]["rationale"]["maxLength"] == 100
