from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
import respx

from rftjudge import (
    Capabilities,
    ChatRequest,
    ConfigurationError,
    Criterion,
    FunctionClient,
    GroupReward,
    ListwiseJudge,
    OpenAIClient,
    ParseError,
)
from rftjudge._content import content_text
from rftjudge.judges._listwise_design import cyclic_shifts, windows

from support.judges import rewards
from support.listwise import ListwiseScript, shown, with_logprobs
from support.payloads import BASE, CHAT, completion

TEXTS = [f"answer number {i}" for i in range(8)]
QUALITY = {t: 10 - i for i, t in enumerate(TEXTS)}  # TEXTS[0] best (10) ... TEXTS[7] worst (3)


def judge_for(script: ListwiseScript, **options: Any) -> tuple[ListwiseJudge, FunctionClient]:
    client = FunctionClient(script)
    options.setdefault("permutations", 1)
    return ListwiseJudge(client, **options), client


def order_of(values: list[Any]) -> list[int]:
    return sorted(range(len(values)), key=lambda i: -float(values[i]))


# -- one request: scores by id -------------------------------------------------------------------


async def test_scores_map_back_by_id_not_by_position() -> None:
    script = ListwiseScript(QUALITY)
    judge, client = judge_for(script)
    out = await judge.ajudge_group("q", TEXTS)
    assert len(client.calls) == 1
    assert rewards(out) == pytest.approx([QUALITY[t] / 10 for t in TEXTS])
    assert all(isinstance(o, GroupReward) for o in out)
    # the judge saw every completion once, under an opaque id, in a shuffled order
    ids_and_texts = script.seen[0]
    assert sorted(t for _, t in ids_and_texts) == sorted(TEXTS)
    assert [t for _, t in ids_and_texts] != TEXTS
    assert all(re.fullmatch(r"C[A-Z2-9]{3}", cid) for cid, _ in ids_and_texts)


async def test_the_output_schema_pins_ids_and_count(api: respx.MockRouter) -> None:
    client = OpenAIClient("judge", base_url=BASE, logprobs=False)
    ids: list[str] = []

    def reply(request: httpx.Request) -> httpx.Response:
        schema = json.loads(request.content)["response_format"]["json_schema"]["schema"]
        items = schema["properties"]["scores"]
        ids.extend(items["items"]["properties"]["id"]["enum"])
        assert items["minItems"] == items["maxItems"] == 3
        assert items["items"]["properties"]["score"]["enum"] == list(range(11))
        scores = [{"id": cid, "score": 5 + k} for k, cid in enumerate(ids)]
        return httpx.Response(
            200, json=completion(json.dumps({"rationale": "r", "scores": scores}))
        )

    api.post(CHAT).mock(side_effect=reply)
    judge = ListwiseJudge(client, permutations=1)
    out = await judge.ajudge_group("q", ["a", "b", "c"])
    assert len(ids) == 3 and len(set(ids)) == 3
    assert sorted(rewards(out)) == pytest.approx([0.5, 0.6, 0.7])


@pytest.mark.parametrize("fault", ["missing", "duplicate", "unknown", "garbage"])
async def test_a_bad_answer_is_re_asked_with_the_validation_error(fault: str) -> None:
    script = ListwiseScript(QUALITY, faults=[fault])
    judge, client = judge_for(script)
    out = await judge.ajudge_group("q", TEXTS)
    assert len(client.calls) == 2  # the answer and one re-ask
    assert rewards(out) == pytest.approx([QUALITY[t] / 10 for t in TEXTS])
    reask = client.calls[1].messages[-1].content
    if fault != "garbage":
        assert "exactly one entry per candidate id" in reask
    assert judge.stats.reasks == 1
    metrics = judge.metrics_of(out)
    assert metrics["requests_per_group"] == 2.0 and metrics["failure_rate"] == 0.0


async def test_an_answer_that_never_validates_makes_the_whole_group_abstain() -> None:
    script = ListwiseScript(QUALITY, always="missing")
    judge, client = judge_for(script)
    out = await judge.ajudge_group("q", TEXTS)
    assert len(client.calls) == 2  # max_reasks=1
    assert all(isinstance(o, ParseError) for o in out)
    assert [judge.reward_of(o) for o in out] == [None] * 8  # no silent winner
    assert judge.stats.failures["parse"] == 8
    metrics = judge.metrics_of(out)
    assert metrics["failure_rate"] == 1.0 and metrics["failures/parse"] == 8.0


async def test_identical_completions_are_judged_once() -> None:
    script = ListwiseScript({"x": 9, "y": 2})
    judge, _ = judge_for(script)
    out = await judge.ajudge_group("q", ["x", "y", "x", "x"])
    assert [t for _, t in script.seen[0]] in (["x", "y"], ["y", "x"])
    assert rewards(out) == pytest.approx([0.9, 0.2, 0.9, 0.9])


async def test_non_answers_get_zero_without_being_shown() -> None:
    script = ListwiseScript({"a real answer": 7, "another answer": 4})
    judge, _ = judge_for(script)
    out = await judge.ajudge_group("q", ["a real answer", ":", "another answer"])
    assert sorted(t for _, t in script.seen[0]) == ["a real answer", "another answer"]
    assert rewards(out) == pytest.approx([0.7, 0.0, 0.4])
    assert out[1].guarded is not None  # type: ignore[union-attr]
    assert judge.metrics_of(out)["guard_rate"] == pytest.approx(1 / 3)


# -- permutations ---------------------------------------------------------------------------------


def test_shifts_are_spread_and_connected_when_debiasing() -> None:
    assert cyclic_shifts(8, 1) == [0]
    assert cyclic_shifts(8, 3) == [0, 3, 5]
    assert cyclic_shifts(8, 4) == [0, 2, 4, 6]
    assert cyclic_shifts(8, 4, connected=True) == [0, 3, 4, 6]
    assert cyclic_shifts(8, 20) == list(range(8))  # more orders than positions: a Latin square
    assert cyclic_shifts(1, 3) == [0]


async def test_orders_are_asked_concurrently_with_every_completion_first_at_most_once() -> None:
    script = ListwiseScript(QUALITY)
    judge, client = judge_for(script, permutations=3)
    await judge.ajudge_group("q", TEXTS)
    assert len(client.calls) == 3
    orders = [[t for _, t in s] for s in script.seen]
    assert len({tuple(o) for o in orders}) == 3
    assert len({o[0] for o in orders}) == 3  # a different completion shown first each time
    for order in orders:  # cyclic shifts of one order
        start = orders[0].index(order[0])
        assert order == orders[0][start:] + orders[0][:start]


async def test_a_latin_square_of_orders_removes_a_first_position_bias() -> None:
    texts = TEXTS[:4]
    biased = ListwiseScript({t: QUALITY[t] - 4 for t in texts}, first_bonus=4)  # scores 2..6 + 4
    one, _ = judge_for(biased, permutations=1)
    single = await one.ajudge_group("q", texts)
    assert order_of(single) != [0, 1, 2, 3]  # the first-shown completion won, whatever it was

    square, client = judge_for(ListwiseScript(biased.quality, first_bonus=4), permutations=4)
    out = await square.ajudge_group("q", texts)
    assert len(client.calls) == 4
    # every completion was shown first exactly once: each got the bonus once, a quarter each
    assert rewards(out) == pytest.approx([(QUALITY[t] - 4 + 1) / 10 for t in texts])
    metrics = square.metrics_of(out)
    assert metrics["order_sensitivity"] == pytest.approx(0.4)  # every score spread by 4 of 10


async def test_debiased_aggregation_recovers_the_order_under_position_bias() -> None:
    quality = {t: 7 - i for i, t in enumerate(TEXTS)}  # 7 .. 0: no clipping at 10 with the bonus
    mean, _ = judge_for(ListwiseScript(quality, first_bonus=3), permutations=3, aggregate="mean")
    debiased, _ = judge_for(
        ListwiseScript(quality, first_bonus=3), permutations=3, aggregate="debiased", ridge=0.0
    )
    plain = await mean.ajudge_group("q", TEXTS)
    fitted = await debiased.ajudge_group("q", TEXTS)
    assert order_of(fitted) == list(range(8))

    def centred(values: list[float]) -> list[float]:
        return [v - sum(values) / len(values) for v in values]

    truth = centred([quality[t] / 10 for t in TEXTS])
    # the position effect is estimated and removed: what is left is the quality, shifted
    assert centred(rewards(fitted)) == pytest.approx(truth, abs=1e-6)
    # the plain mean keeps a third of the bonus on each completion that was shown first
    shifted = centred(rewards(plain))
    assert max(abs(a - b) for a, b in zip(shifted, truth, strict=True)) > 0.05


async def test_a_failed_order_is_dropped_and_counted() -> None:
    script = ListwiseScript(QUALITY, faults=["garbage", "garbage"])  # the first order fails twice
    judge, client = judge_for(script, permutations=3)
    out = await judge.ajudge_group("q", TEXTS)
    assert len(client.calls) == 4
    assert order_of(out) == list(range(8))
    metrics = judge.metrics_of(out)
    assert metrics["failed_order_rate"] == pytest.approx(1 / 3)
    assert metrics["failure_rate"] == 0.0
    assert metrics["requests_per_group"] == 4.0


# -- large groups ---------------------------------------------------------------------------------


def test_windows_overlap_and_cover_every_completion() -> None:
    assert windows(list(range(5)), 8) == [[0, 1, 2, 3, 4]]
    cut = windows(list(range(10)), 4)
    assert cut == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert windows(list(range(9)), 4)[-1] == [5, 6, 7, 8]  # the last window ends at the end


async def test_large_groups_are_split_into_overlappingwindows() -> None:
    texts = [f"completion {i}" for i in range(10)]
    quality = {t: 10 - i for i, t in enumerate(texts)}
    script = ListwiseScript(quality, low=0, high=10)
    judge, client = judge_for(script, chunk_size=4, permutations=2)
    out = await judge.ajudge_group("q", texts)
    assert all(len(s) <= 4 for s in script.seen)
    assert len(client.calls) == 6  # 2 orders × 3 windows
    assert order_of(out) == list(range(10))


async def test_a_group_that_cannot_fit_the_budget_fails_clearly() -> None:
    script = ListwiseScript({"x" * 500: 5, "y" * 500: 6})
    judge, client = judge_for(script, max_prompt_chars=1200)
    out = await judge.ajudge_group("q", ["x" * 500, "y" * 500])
    assert not client.calls
    assert all(getattr(o, "kind", None) == "context" for o in out)
    assert "max_prompt_chars=1200" in str(out[0])
    assert judge.stats.failures["context"] == 2


async def test_a_tight_budget_shrinks_thewindows() -> None:
    texts = [f"{i} " + "z" * 100 for i in range(6)]
    script = ListwiseScript({t: 10 - i for i, t in enumerate(texts)})
    judge, _ = judge_for(script)
    base = sum(len(m.content) for m in judge.render("q", None, []))
    narrow, _ = judge_for(ListwiseScript(script.quality), max_prompt_chars=base + 3 * 260)
    out = await narrow.ajudge_group("q", texts)
    assert order_of(out) == list(range(6))


# -- scores from probabilities ------------------------------------------------------------------


async def test_expected_scores_come_from_each_ids_score_token() -> None:
    def handler(request: ChatRequest) -> Any:
        items = shown(request)
        text = json.dumps(
            {"rationale": "r", "scores": [{"id": cid, "score": 5} for cid, _ in items]}
        )
        spread = {
            cid: ({"5": 0.5, "7": 0.5} if t == "a" else {"5": 0.8, "4": 0.2}) for cid, t in items
        }
        return with_logprobs(text, spread)

    client = FunctionClient(handler, capabilities=Capabilities(logprobs=True, max_top_logprobs=20))
    judge = ListwiseJudge(client, permutations=1)
    assert judge.scoring == "expected" and client.capabilities.prefill_choice is False
    out = await judge.ajudge_group("q", ["a", "b"])
    assert rewards(out) == pytest.approx([0.6, 0.48])
    assert client.calls[0].logprobs and client.calls[0].top_logprobs == 20
    assert judge.stats.expected_fallbacks == 0


async def test_letter_alphabet_maps_letters_to_values() -> None:
    def handler(request: ChatRequest) -> str:
        items = shown(request)
        letters = {"good": "K", "bad": "B"}
        return json.dumps(
            {"rationale": "r", "scores": [{"id": c, "score": letters[t]} for c, t in items]}
        )

    client = FunctionClient(handler)
    judge = ListwiseJudge(client, permutations=1, alphabet="letters")
    schema = judge.output_schema(["CAAA"])
    assert schema["properties"]["scores"]["items"]["properties"]["score"]["enum"][:3] == [
        "A",
        "B",
        "C",
    ]
    out = await judge.ajudge_group("q", ["good", "bad"])
    assert rewards(out) == pytest.approx([1.0, 0.1])
    assert "one of: A, B, C" in client.calls[0].messages[-1].content


# -- prompt layout, adapters ----------------------------------------------------------------------


async def test_orders_of_a_group_share_the_prompt_prefix() -> None:
    script = ListwiseScript(QUALITY)
    judge, client = judge_for(
        script,
        permutations=2,
        criteria=[Criterion(name="correct", description="Is it right?")],
    )
    await judge.ajudge_group("What is it?", TEXTS, reference="the reference")
    first, second = (content_text(c.messages[-1].content) for c in client.calls)
    assert client.calls[0].messages[0] == client.calls[1].messages[0]  # same system message
    shared = first[: first.index("CANDIDATES:")]
    assert second.startswith(shared)
    assert "What is it?" in shared and "the reference" in shared and "correct: Is it" in shared


async def test_trl_group_reward_function_logs_group_figures() -> None:
    quality = {f"p{p}-{i}": 9 - i for p in (1, 2) for i in range(4)}
    judge, client = judge_for(ListwiseScript(quality), permutations=3, name="lw")
    reward = judge.as_reward_func()
    assert reward.__name__ == "lw"
    logged: dict[str, float] = {}
    extra: dict[str, list[Any]] = {}
    prompts = ["p1"] * 4 + ["p2"] * 4
    completions = [f"p1-{i}" for i in range(4)] + [f"p2-{i}" for i in range(4)]
    rewards = await reward(
        prompts=prompts,
        completions=completions,
        log_metric=lambda k, v: logged.__setitem__(k, v),
        log_extra=lambda k, v: extra.__setitem__(k, v),
    )
    assert rewards == pytest.approx([0.9, 0.8, 0.7, 0.6] * 2)
    assert len(client.calls) == 6  # 2 groups × 3 orders
    assert logged["lw/requests_per_group"] == 3.0
    assert logged["lw/groups"] == 2.0
    assert logged["lw/order_sensitivity"] == 0.0
    assert logged["lw/failure_rate"] == 0.0
    assert extra["lw_rationale"] == ["scripted"] * 8


def test_single_response_judging_and_reward() -> None:
    judge, _ = judge_for(ListwiseScript({"only one": 6}))
    result = judge.judge("q", "only one")
    assert result.score == pytest.approx(0.6) and result.raw_scores == (6.0,)
    assert judge.reward("q", "only one") == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"permutations": 0}, "permutations"),
        ({"aggregate": "median"}, "aggregate"),
        ({"alphabet": "greek"}, "alphabet"),
        ({"chunk_size": 1}, "chunk_size"),
        ({"scale": "binary"}, "integer scale"),
        ({"max_prompt_chars": 0}, "max_prompt_chars"),
        ({"exact": True}, "exact=True"),
    ],
)
def test_bad_configuration_is_rejected(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        ListwiseJudge(FunctionClient(lambda r: "{}"), **options)


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_a_real_grpo_trainer_logs_the_group_figures(tmp_path: Any) -> None:
    import os

    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(var, "1")
    trl = pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    from support.tiny_model import log_capture, tiny_args, tiny_model_and_tokenizer

    model, tokenizer = tiny_model_and_tokenizer()

    def handler(request: ChatRequest) -> str:  # longer completions score higher
        items = shown(request)
        scores = [{"id": c, "score": min(10, len(t) // 3)} for c, t in items]
        return json.dumps({"rationale": "by length", "scores": scores})

    client = FunctionClient(handler)
    judge = ListwiseJudge(client, permutations=2, name="listwise")
    logged: list[dict[str, float]] = []

    dataset = datasets.Dataset.from_dict({"prompt": [f"Say something ({i})" for i in range(8)]})
    config = tiny_args(trl.GRPOConfig, tmp_path)
    trainer = trl.GRPOTrainer(
        model=model,
        reward_funcs=[judge.as_reward_func()],
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[log_capture(logged)],
    )
    trainer.train()
    assert trainer.state.global_step == 2
    keys = set().union(*logged)
    assert "rewards/listwise/mean" in keys, keys
    for key in ("listwise/requests_per_group", "listwise/failure_rate"):
        assert key in keys, keys
    assert client.calls and all(len(shown(c)) <= 4 for c in client.calls if shown(c))
