"""Per-row rubrics: parsing, explicit/implicit aggregation, chunks, id-level re-asks, programs."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any, cast

import pytest

from rftjudge import (
    ChatRequest,
    ChatResponse,
    ConfigurationError,
    Criterion,
    FunctionClient,
    RubricJudge,
    TokenLogprob,
)
from rftjudge._content import content_text
from rftjudge.clients import Capabilities
from rftjudge.judges._rubric_items import CATEGORY_WEIGHTS, parse_rubric
from rftjudge.judges.rubric import InvalidRubricError, Judgment, RubricError, with_rubric


def ids_of(request: ChatRequest) -> list[str]:
    return list(request.output_schema["properties"]["scores"]["required"])  # type: ignore[index]


def binary(request: ChatRequest, ident: str) -> bool:
    props = request.output_schema["properties"]["scores"]["properties"]  # type: ignore[index]
    return bool(props[ident]["type"] == "boolean")


class Scripted:
    """Scores each item id from ``scores`` (default: 5 / true); records the requests."""

    def __init__(self, scores: dict[str, Any] | None = None, overall: int = 4) -> None:
        self.scores = scores or {}
        self.overall = overall
        self.requests: list[ChatRequest] = []

    def __call__(self, request: ChatRequest) -> str:
        self.requests.append(request)
        if "score" in request.output_schema["properties"]:  # type: ignore[index]
            return json.dumps({"rationale": "overall", "score": self.overall})
        values = {i: self.scores.get(i, True if binary(request, i) else 5) for i in ids_of(request)}
        return json.dumps({"rationale": "items", "scores": values})


def make(script: Scripted, **kwargs: Any) -> RubricJudge:
    return RubricJudge(FunctionClient(script), **kwargs)


# -- parsing -----------------------------------------------------------------------------------


def test_every_input_shape_gives_the_same_items() -> None:
    items = [
        {"id": "a", "description": "Says 4", "category": "essential"},
        {"id": "b", "description": "Says 5", "category": "pitfall"},
    ]
    shapes = [
        items,
        json.dumps(items),
        {"items": items},
        {"a": {"description": "Says 4", "category": "essential"}, "b": items[1]},
    ]
    for shape in shapes:
        rubric = parse_rubric(shape)
        assert [(i.id, i.description, i.category, i.weight) for i in rubric.items] == [
            ("a", "Says 4", "essential", 1.0),
            ("b", "Says 5", "pitfall", CATEGORY_WEIGHTS["pitfall"]),
        ]


def test_plain_text_one_item_per_line_with_categories_and_bullets() -> None:
    rubric = parse_rubric("- Essential: says 4\n* [pitfall] says 5\n\n3. is polite\n")
    assert [(i.id, i.description, i.category) for i in rubric.items] == [
        ("c1", "says 4", "essential"),
        ("c2", "says 5", "pitfall"),
        ("c3", "is polite", None),
    ]


def test_points_negative_points_are_pitfalls_and_generated_ids_avoid_given_ones() -> None:
    rubric = parse_rubric(
        [{"description": "x", "points": 5}, {"id": "c1", "description": "y", "points": -2}]
    )
    assert [(i.id, i.weight, i.category) for i in rubric.items] == [
        ("c2", 5.0, None),
        ("c1", 2.0, "pitfall"),
    ]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "is empty"),
        ([], "is empty"),
        ("[{", "not valid JSON"),
        ([{"id": "a", "description": "x"}, {"id": "a", "description": "y"}], "duplicate item id"),
        ([{"description": "x", "weight": -1}], "weight must be a finite number > 0"),
        ([{"description": "x", "weight": math.inf}], "weight must be a finite number > 0"),
        ([{"description": "x", "weight": "2"}], "weight must be a finite number > 0"),
        (["x"] * 65, "more than the cap of 64"),
        (7, "must be a list, a dict or text"),
        ([{"description": "x", "category": "vital"}], "unknown category"),
        ([{"id": "scores", "description": "x"}], "id 'scores'"),
        ([{"description": " "}], "has no description"),
        ([{"check": "exec", "code": "import os"}], "unknown check 'exec'"),
        ([{"check": "regex", "pattern": "("}], "invalid regex"),
        ([{"description": "x", "type": "stars"}], "type must be"),
    ],
)
def test_bad_rubric_fails_its_row_only_with_a_clear_message(raw: Any, problem: str) -> None:
    script = Scripted()
    judge = make(script)
    outcomes = judge.reward_batch(
        ["p", "p"], ["bad row", "good row"], rubrics=[raw, [{"description": "fine"}]]
    )
    assert outcomes[0] is None and outcomes[1] == 1.0
    assert judge.stats.failures["invalid_rubric"] == 1
    with pytest.raises(InvalidRubricError, match=f"row 0: rubric .*{problem}") as caught:
        parse_rubric(raw, row=0)
    assert caught.value.kind == "invalid_rubric"
    assert all("bad row" not in str(r.messages) for r in script.requests)


def test_no_rubric_and_no_criteria_fails_the_row_never_a_default() -> None:
    judge = make(Scripted())
    [outcome] = asyncio.run(judge.ajudge_batch(["p"], ["r"], rubrics=[None]))
    assert isinstance(outcome, InvalidRubricError)
    assert "row 0 has no rubric (column 'rubric' empty)" in str(outcome)
    assert judge.reward("p", "r") is None


def test_bad_options_fail_at_construction() -> None:
    client = FunctionClient(Scripted())
    for kwargs in ({"aggregate": "sum"}, {"max_criteria": 0}, {"max_rubric_items": True}):
        with pytest.raises(ConfigurationError):
            RubricJudge(client, **kwargs)


# -- explicit aggregation ----------------------------------------------------------------------


def test_explicit_weighted_mean_with_categories() -> None:
    script = Scripted({"a": 5, "b": 1, "c": 3})
    judge = make(script)
    rubric = [
        {"id": "a", "description": "x", "category": "essential"},  # 1.0 x 1.0
        {"id": "b", "description": "y", "category": "important"},  # 0.7 x 0.0
        {"id": "c", "description": "z", "category": "optional"},  # 0.3 x 0.5
    ]
    result = judge.judge("p", "r", rubric=rubric)
    assert result.score == pytest.approx((1.0 + 0.15) / 2.0)
    assert result.aggregate == "explicit" and result.items == 3 and result.items_passed == 2
    assert result.categories == {"essential": 1.0, "important": 0.0, "optional": 0.5}
    assert len(script.requests) == 1 and result.requests == 1


def test_a_present_pitfall_subtracts_and_clipping_is_counted() -> None:
    rubric = [
        {"id": "good", "description": "x", "weight": 1},
        {"id": "bad", "description": "mistake", "category": "pitfall", "weight": 3},
    ]
    present = make(Scripted({"good": 5, "bad": 5})).judge("p", "r", rubric=rubric)
    assert present.score == 0.0 and present.clipped
    absent = make(Scripted({"good": 5, "bad": 1})).judge("p", "r", rubric=rubric)
    assert absent.score == 1.0 and not absent.clipped and absent.items_passed == 2
    judge = make(Scripted({"good": 5, "bad": 5}))
    outcomes = [judge.judge("p", "r", rubric=rubric), absent]
    assert judge.metrics_of(outcomes)["clip_rate"] == 0.5


def test_pitfalls_only() -> None:
    rubric = [{"id": "x", "description": "m", "category": "pitfall", "type": "pass_fail"}]
    assert make(Scripted({"x": False})).judge("p", "r", rubric=rubric).score == 1.0
    assert make(Scripted({"x": True})).judge("p", "r", rubric=rubric).score == 0.0


def test_judge_wide_criteria_combine_with_the_rows_items() -> None:
    script = Scripted({"tone": 1})
    judge = make(script, criteria=[Criterion(name="tone", description="polite", weight=1.0)])
    result = judge.judge("p", "r", rubric=["says 4"])
    assert ids_of(script.requests[0]) == ["tone", "c1"]
    assert result.score == 0.5
    with pytest.raises(InvalidRubricError, match="duplicate item id 'tone'"):
        judge.judge("p", "r", rubric=[{"id": "tone", "description": "again"}])
    # no row rubric: the judge-wide path, unchanged
    legacy = judge.judge("p", "r")
    assert legacy.aggregate is None and "tone" in legacy.criteria


def test_binary_scale_and_mixed_item_types() -> None:
    script = Scripted({"a": True, "b": 4})
    judge = make(script, scale="pass_fail")
    result = judge.judge(
        "p",
        "r",
        rubric=[{"id": "a", "description": "x"}, {"id": "b", "description": "y", "type": "likert"}],
    )
    assert binary(script.requests[0], "a") and not binary(script.requests[0], "b")
    assert result.normalized == {"a": 1.0, "b": 0.75}


# -- implicit ----------------------------------------------------------------------------------


def test_implicit_one_request_one_score_programs_mixed_by_weight() -> None:
    script = Scripted(overall=4)  # 0.75 on 1..5
    judge = make(script, aggregate="implicit")
    rubric = [
        {"description": "x", "category": "essential"},
        {"description": "y", "category": "optional"},
        {"check": "contains", "text": "hello", "weight": 0.7},
    ]
    result = judge.judge("p", "no greeting", rubric=rubric)
    assert len(script.requests) == 1
    assert result.aggregate == "implicit"
    assert result.score == pytest.approx(1.3 * 0.75 / 2.0)
    assert "c1 [essential] (weight 1.0)" in script.requests[0].messages[-1].content


# -- chunks and re-asks ------------------------------------------------------------------------


def test_chunks_are_sent_together_and_share_the_prompt_prefix() -> None:
    script = Scripted()
    judge = make(script, max_criteria=2)
    result = judge.judge("What is 2+2?", "It is 4.", rubric=[f"item {i}" for i in range(5)])
    assert [ids_of(r) for r in script.requests] == [["c1", "c2"], ["c3", "c4"], ["c5"]]
    users = [content_text(r.messages[-1].content) for r in script.requests]
    prefix = users[0].split("RUBRIC ITEMS:")[0]
    assert "It is 4." in prefix and all(u.startswith(prefix) for u in users)
    assert result.score == 1.0 and result.requests == 3 and result.items == 5


def test_a_chunk_missing_an_id_is_re_asked_alone() -> None:
    answers: dict[str, int] = {}

    def handler(request: ChatRequest) -> str:
        ids = ids_of(request)
        key = ids[0]
        answers[key] = answers.get(key, 0) + 1
        scores = {i: 5 for i in ids}
        if key == "c3" and answers[key] == 1:
            del scores["c4"]
            scores["c9"] = 2
        return json.dumps({"rationale": "", "scores": scores})

    judge = RubricJudge(FunctionClient(handler), max_criteria=2)
    result = judge.judge("p", "r", rubric=[f"item {i}" for i in range(5)])
    assert answers == {"c1": 1, "c3": 2, "c5": 1}
    assert result.chunk_reasks == 1 and result.requests == 4 and result.score == 1.0
    assert judge.metrics_of([result])["chunk_reasks"] == 1.0


def test_an_item_that_never_validates_fails_the_row_with_kind_rubric() -> None:
    def handler(request: ChatRequest) -> str:
        scores = {i: 5 for i in ids_of(request)}
        if "c2" in scores:
            scores["c2"] = 9  # out of range, every time
        return json.dumps({"rationale": "", "scores": scores})

    client = FunctionClient(handler)
    judge = RubricJudge(client, max_criteria=1, max_reasks=2)
    rewards = judge.reward_batch(["p", "p"], ["r", "r2"], rubrics=[["a", "b"], ["a"]])
    assert rewards == [None, 1.0]
    assert judge.stats.failures["rubric"] == 1
    with pytest.raises(RubricError, match=r"row 0: .*c2: expected an integer 1-5, got 9"):
        judge.judge("p", "r", with_rubric(None, ["a", "b"], 0))
    c2_requests = [r for r in client.calls if ids_of(r) == ["c2"]]
    assert len(c2_requests) == 2 * 3  # two rows' worth, each 1 + max_reasks


# -- programs ----------------------------------------------------------------------------------


def test_program_items_run_locally_without_a_judge_call() -> None:
    script = Scripted()
    judge = make(script)
    rubric = [
        {"id": "json", "check": "json_schema", "schema": {"type": "object", "required": ["x"]}},
        {"id": "short", "check": "max_words", "max": 3},
        {"id": "re", "check": "regex", "pattern": "\\d+"},
        {"id": "no", "check": "not_contains", "text": "sorry", "category": "essential"},
        {"id": "latin", "check": "language", "script": "latin"},
    ]
    result = judge.judge("p", '{"x": 1}', rubric=rubric)
    assert script.requests == []
    assert result.normalized == {"json": 1.0, "short": 1.0, "re": 1.0, "no": 1.0, "latin": 1.0}
    assert result.score == 1.0
    result = judge.judge("p", "Sorry, no JSON here at all", rubric=rubric)
    assert result.normalized["json"] == 0.0 and result.normalized["no"] == 0.0


def test_programs_mix_with_judged_items_by_weight() -> None:
    script = Scripted({"c1": 5})
    judge = make(script)
    rubric = [{"description": "x", "weight": 3}, {"check": "contains", "text": "yes"}]
    assert judge.judge("p", "no", rubric=rubric).score == pytest.approx(0.75)
    assert judge.judge("p", "yes", rubric=rubric).score == 1.0


# -- expected scores ---------------------------------------------------------------------------


def test_expected_scores_per_item_from_logprobs() -> None:
    text = '{"rationale": "", "scores": {"a": 4, "b": true}}'
    cut_a, cut_b = text.index("4"), text.index("true")
    tokens = (
        TokenLogprob(text[:cut_a], 0.0),
        TokenLogprob("4", math.log(0.5), (("4", math.log(0.5)), ("2", math.log(0.5)))),
        TokenLogprob(text[cut_a + 1 : cut_b], 0.0),
        TokenLogprob("true", math.log(0.8), (("true", math.log(0.8)), ("false", math.log(0.2)))),
        TokenLogprob(text[cut_b + 4 :], 0.0),
    )
    response = ChatResponse(text=text, finish_reason="stop", logprobs=tokens)
    capabilities = Capabilities(structured_output=True, logprobs=True, max_top_logprobs=20)
    judge = RubricJudge(FunctionClient(lambda r: response, capabilities=capabilities))
    result = judge.judge(
        "p",
        "r",
        rubric=[
            {"id": "a", "description": "x"},
            {"id": "b", "description": "y", "type": "pass_fail"},
        ],
    )
    assert result.scoring == "expected"
    assert result.normalized == pytest.approx({"a": 0.5, "b": 0.8})


# -- plumbing ----------------------------------------------------------------------------------


def test_verdict_shapes_are_cached_by_rubric_shape() -> None:
    judge = make(Scripted())
    shapes = judge.row_settings.shapes
    for text in ("one\ntwo", "three\nfour", "five\nsix"):
        judge.judge("p", "r", rubric=text)
    assert shapes.misses == 1


def test_deduplication_never_merges_rows_with_different_rubrics() -> None:
    script = Scripted({"c1": 1})
    judge = make(script)
    rewards = judge.reward_batch(["p"] * 3, ["r"] * 3, rubrics=[["x"], ["y"], ["x"]])
    assert rewards == [0.0, 0.0, 0.0]
    assert len(script.requests) == 2


def test_metrics_carry_per_category_means() -> None:
    judge = make(Scripted({"c1": 5, "c2": 1}))
    rubric = "- essential: a\n- optional: b"
    outcomes: list[Judgment | BaseException] = [judge.judge("p", "r", rubric=rubric)]
    metrics = judge.metrics_of(outcomes)
    assert metrics["category/essential"] == 1.0 and metrics["category/optional"] == 0.0
    assert metrics["items_passed_rate"] == 0.5


async def test_trl_reward_function_reads_the_rubric_column() -> None:
    script = Scripted({"c1": 5, "c2": 1})
    reward_func = make(script).as_reward_func()
    logged: dict[str, float] = {}
    rewards = await reward_func(
        prompts=["p", "p"],
        completions=["a", "b"],
        rubric=[["x"], ["x", "y"]],
        log_metric=lambda k, v: logged.__setitem__(k, v),
    )
    assert rewards == [1.0, 0.5]
    assert logged["rubric/items_passed_rate"] == 0.75
    with pytest.raises(ConfigurationError, match="column 'rubric' has 1 values"):
        await reward_func(prompts=["p", "p"], completions=["a", "b"], rubric=[["x"]])


def test_the_judge_pickles_with_its_rubric_options() -> None:
    import pickle

    judge = make(Scripted(), aggregate="implicit", max_criteria=3)
    copy = pickle.loads(pickle.dumps(judge))
    assert copy.aggregate == "implicit" and copy.max_criteria == 3


def test_samples_average_distinct_seeds_per_item() -> None:
    seen: list[int | None] = []

    def handler(request: ChatRequest) -> str:
        seen.append(request.seed)
        value = 5 if request.seed == 10 else 1
        return json.dumps({"rationale": "", "scores": {i: value for i in ids_of(request)}})

    judge = RubricJudge(FunctionClient(handler), samples=2, temperature=0.7, seed=10)
    result = judge.judge("p", "r", rubric=["x", "y"])
    assert sorted(cast("list[int]", seen)) == [10, 11] and result.samples == 2
    assert result.normalized == {"c1": 0.5, "c2": 0.5} and result.score == 0.5


async def test_a_missing_cell_means_no_rubric_and_rubric_column_none_reads_none() -> None:
    script = Scripted()
    judge = make(script, criteria=[Criterion(name="tone", description="polite")])
    assert with_rubric("ref", float("nan")) == "ref"
    outcomes = await judge.ajudge_batch(["p", "p"], ["a", "b"], rubrics=[None, float("nan")])
    assert [(o.score, o.aggregate) for o in outcomes] == [(1.0, None), (1.0, None)]  # type: ignore[union-attr]
    assert all(ids_of(r) == ["tone"] for r in script.requests)  # the judge-wide criteria
    off = make(
        Scripted({"c1": 1}), rubric_column=None, criteria=[Criterion(name="q", description="d")]
    )
    reward_func = off.as_reward_func()
    assert await reward_func(prompts=["p"], completions=["a"], rubric=[["x"]]) == [1.0]


@pytest.mark.parametrize(
    ("rationale", "order", "asked"),
    [
        ("before", ["rationale", "scores"], 'Think briefly in "rationale" first'),
        ("after", ["scores", "rationale"], 'first, then explain briefly in "rationale"'),
        ("none", ["scores"], "Give your scores, nothing else."),
    ],
)
def test_row_rubrics_follow_the_rationale_option(
    rationale: Any, order: list[str], asked: str
) -> None:
    """The per-row path asks for the rationale where the judge-wide path does (issue 23): its
    chunk schemas follow ``rationale`` and carry the same ``maxLength``."""

    def answer(request: ChatRequest) -> str:
        scores = {i: 4 for i in ids_of(request)}
        verdict: dict[str, Any] = {"scores": scores}
        if rationale != "none":
            verdict["rationale"] = "why"
        return json.dumps(verdict)

    client = FunctionClient(answer)
    judge = RubricJudge(client, rubric_column="rubric", scale=(1, 5), rationale=rationale)
    result = judge.judge("q", "a", rubric=["is correct", "is polite"])
    (request,) = client.calls
    schema = cast("dict[str, Any]", request.output_schema)
    assert list(schema["properties"]) == order and schema["required"] == order
    if rationale != "none":
        assert schema["properties"]["rationale"]["maxLength"] == 800
    assert asked in content_text(request.messages[0].content)
    assert result.score == pytest.approx(0.75)
    implicit = RubricJudge(
        FunctionClient(lambda r: json.dumps({"score": 5})),
        rubric_column="rubric",
        aggregate="implicit",
        rationale="none",
    )
    assert implicit.reward("q", "a", rubric=["is correct"]) == 1.0
