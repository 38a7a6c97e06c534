"""Exact score distributions: prefill + constrained choice, request shapes per server family."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import httpx
import pytest
import respx

from rftjudge import (
    Capabilities,
    ChatRequest,
    ChatResponse,
    ConfigurationError,
    Criterion,
    FunctionClient,
    ListwiseJudge,
    Message,
    OpenAIClient,
    PreferenceJudge,
    RubricJudge,
    TokenLogprob,
    Usage,
)
from rftjudge._content import content_text
from rftjudge.clients._prefill import choice_fields, choice_schema, choices_of
from rftjudge.judges._exact import letter_labels

from support.judges import rewards
from support.listwise import shown as listwise_shown
from support.payloads import BASE, CHAT, completion

CRITERIA = [
    Criterion(name="correct", description="Is it right?"),
    Criterion(name="clear", description="Is it clear?"),
]
VERDICT = json.dumps({"rationale": "looks fine", "scores": {"correct": 4, "clear": 2}})


def choice_reply(probs: dict[str, float], sampled: str | None = None) -> dict[str, Any]:
    """An OpenAI-shaped answer to a choice request: one token, its top logprobs."""
    sampled = sampled or max(probs, key=lambda k: probs[k])
    top = [{"token": t, "logprob": math.log(p)} for t, p in probs.items()]
    logprobs = {
        "content": [{"token": sampled, "logprob": math.log(probs[sampled]), "top_logprobs": top}]
    }
    return completion(sampled, logprobs=logprobs)


def is_choice(body: dict[str, Any]) -> bool:
    role: str = body["messages"][-1]["role"]
    return role == "assistant"


# -- capabilities --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        (None, False),
        ("openai", False),
        ("ollama", False),
        ("llama-cpp-python", False),
        ("vllm", True),
        ("sglang", True),
        ("llamacpp", True),
    ],
)
def test_prefill_choice_capability_follows_the_server(server: Any, expected: bool) -> None:
    client = OpenAIClient("m", base_url=BASE, server=server)
    assert client.capabilities.prefill_choice is expected
    assert Capabilities().prefill_choice is False


def test_prefill_choice_options_are_checked() -> None:
    assert OpenAIClient("m", base_url=BASE, server="vllm", prefill_choice=False).capabilities == (
        Capabilities(logprobs=True, max_top_logprobs=20, images=True)
    )
    # without logprobs there is no distribution to read
    assert not OpenAIClient(
        "m", base_url=BASE, server="vllm", logprobs=False
    ).capabilities.prefill_choice
    with pytest.raises(ConfigurationError, match="prefill_choice=True needs"):
        OpenAIClient("m", base_url=BASE, prefill_choice=True)
    with pytest.raises(ConfigurationError, match="server must be one of"):
        OpenAIClient("m", base_url=BASE, server="tgi")  # type: ignore[arg-type]


# -- request shapes per server family ------------------------------------------------------------


def choice_request(choices: list[str]) -> ChatRequest:
    return ChatRequest(
        messages=(Message("user", "grade it"), Message("assistant", '{"score": ')),
        output_schema=choice_schema(choices),
        schema_name="choice",
        temperature=0.0,
        max_tokens=1,
        logprobs=True,
        top_logprobs=20,
    )


def test_request_shapes_per_server_family() -> None:
    request = choice_request(["A", "B", "tie"])
    assert choices_of(request) == ("A", "B", "tie")
    shapes = {
        server: OpenAIClient("m", base_url=BASE, server=server).build_request(request)[2]
        for server in ("vllm", "sglang", "llamacpp")
    }
    for body in shapes.values():
        assert body["messages"][-1] == {"role": "assistant", "content": '{"score": '}
        assert body["logprobs"] is True and body["top_logprobs"] == 20
        assert body["max_tokens"] == 1 and body["temperature"] == 0.0
        assert "response_format" not in body  # the choice constraint replaces the schema
    assert shapes["vllm"]["continue_final_message"] is True
    assert shapes["vllm"]["add_generation_prompt"] is False
    assert shapes["vllm"]["structured_outputs"] == {"choice": ["A", "B", "tie"]}
    assert shapes["sglang"]["continue_final_message"] is True
    assert shapes["sglang"]["regex"] == "(A|B|tie)"
    assert "add_generation_prompt" not in shapes["sglang"]
    assert shapes["llamacpp"]["grammar"] == 'root ::= "A" | "B" | "tie"'
    assert "continue_final_message" not in shapes["llamacpp"]  # llama-server prefills by itself


def test_choices_are_escaped_for_regex_and_grammar() -> None:
    request = choice_request(['a"b', "1.5", "x|y"])
    assert choice_fields("sglang", request, ['a"b', "1.5", "x|y"])["regex"] == r'(a"b|1\.5|x\|y)'
    assert choice_fields("llamacpp", request, ['a"b'])["grammar"] == r'root ::= "a\"b"'


def test_choice_requests_need_a_prefill_server_and_a_prefix() -> None:
    request = choice_request(["A"])
    with pytest.raises(ConfigurationError, match="cannot continue a prefilled"):
        OpenAIClient("m", base_url=BASE).build_request(request)
    no_prefix = ChatRequest(
        messages=(Message("user", "x"),), output_schema=choice_schema(["A"]), schema_name="choice"
    )
    with pytest.raises(ConfigurationError, match="must end with the assistant prefix"):
        OpenAIClient("m", base_url=BASE, server="vllm").build_request(no_prefix)
    ordinary = ChatRequest(messages=(Message("user", "x"),), output_schema={"type": "object"})
    assert choices_of(ordinary) is None


# -- rubric ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("server", ["vllm", "sglang", "llamacpp"])
async def test_rubric_reads_each_criterion_exactly(api: respx.MockRouter, server: Any) -> None:
    bodies: list[dict[str, Any]] = []
    exact = {"correct": {"4": 0.5, "5": 0.5}, "clear": {"2": 0.75, "1": 0.25}}

    def reply(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        if not is_choice(body):
            return httpx.Response(200, json=completion(VERDICT))
        prefix = body["messages"][-1]["content"]
        name = "correct" if prefix.endswith('"correct": ') else "clear"
        return httpx.Response(200, json=choice_reply(exact[name]))

    api.post(CHAT).mock(side_effect=reply)
    judge = RubricJudge(OpenAIClient("m", base_url=BASE, server=server), criteria=CRITERIA)
    result = await judge.ajudge("q", "an answer")
    assert result.scoring == "exact" and result.exact_fallbacks == 0
    assert result.expected == pytest.approx({"correct": 4.5, "clear": 1.75})
    assert result.score == pytest.approx(((4.5 - 1) / 4 + (1.75 - 1) / 4) / 2)
    assert result.usage.requests == 3  # the verdict and one read per criterion
    verdict, *reads = bodies
    prefixes = sorted(b["messages"][-1]["content"] for b in reads)
    assert prefixes == sorted(
        VERDICT[: VERDICT.index(k) + len(k) + 3] for k in ("correct", "clear")
    )
    for body in reads:  # the reads continue the verdict's own conversation
        assert body["messages"][:-1] == verdict["messages"]
        assert body["max_tokens"] == 1
    assert judge.metrics_of([result])["exact_fallback_rate"] == 0.0


async def test_rubric_two_token_scores_are_resolved(api: respx.MockRouter) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if not is_choice(body):
            return httpx.Response(
                200, json=completion(json.dumps({"rationale": "r", "scores": {"correct": 10}}))
            )
        assert body["max_tokens"] == 2  # "10" may take two tokens
        logprobs = {
            "content": [
                {
                    "token": "1",
                    "logprob": math.log(0.6),
                    "top_logprobs": [
                        {"token": "1", "logprob": math.log(0.6)},
                        {"token": "9", "logprob": math.log(0.4)},
                    ],
                },
                {
                    "token": "0",
                    "logprob": math.log(0.5),
                    "top_logprobs": [
                        {"token": "0", "logprob": math.log(0.5)},
                        {"token": "<|eot|>", "logprob": math.log(0.5)},
                    ],
                },
            ]
        }
        return httpx.Response(200, json=completion("10", logprobs=logprobs))

    api.post(CHAT).mock(side_effect=reply)
    judge = RubricJudge(
        OpenAIClient("m", base_url=BASE, server="vllm"), criteria=CRITERIA[:1], scale=(1, 10)
    )
    result = await judge.ajudge("q", "an answer")
    # P(10) = 0.6·0.5, P(1) = 0.6·0.5, P(9) = 0.4
    assert result.expected == pytest.approx({"correct": 0.3 * 10 + 0.3 * 1 + 0.4 * 9})


async def test_rubric_counts_and_logs_a_fallback(
    api: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    in_band = {
        "content": [
            {"token": VERDICT[: VERDICT.index("4")], "logprob": 0.0, "top_logprobs": []},
            {
                "token": "4",
                "logprob": math.log(0.5),
                "top_logprobs": [
                    {"token": "4", "logprob": math.log(0.5)},
                    {"token": "3", "logprob": math.log(0.5)},
                ],
            },
            {"token": VERDICT[VERDICT.index("4") + 1 :], "logprob": 0.0, "top_logprobs": []},
        ]
    }

    def reply(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if not is_choice(body):
            return httpx.Response(200, json=completion(VERDICT, logprobs=in_band))
        if body["messages"][-1]["content"].endswith('"correct": '):
            return httpx.Response(200, json=completion("4"))  # no logprobs: unreadable
        return httpx.Response(500, json={"error": {"message": "boom"}})

    api.post(CHAT).mock(side_effect=reply)
    client = OpenAIClient("m", base_url=BASE, server="vllm", max_retries=0)
    judge = RubricJudge(client, criteria=CRITERIA)
    with caplog.at_level(logging.DEBUG, logger="rftjudge"):
        result = await judge.ajudge("q", "an answer")
    assert result.exact_fallbacks == 2
    assert result.expected == pytest.approx({"correct": 3.5, "clear": 2.0})  # in-band, sampled
    assert judge.exact.fallbacks == 2 and judge.exact.reads == 2
    assert judge.stats.expected_fallbacks == 1  # "clear" ended on the sampled value
    assert judge.metrics_of([result])["exact_fallback_rate"] == 1.0
    assert any("exact distribution unavailable" in r.getMessage() for r in caplog.records)
    assert any(r.levelno == logging.WARNING for r in caplog.records)


def test_default_behaviour_without_the_capability_is_unchanged() -> None:
    client = FunctionClient(lambda r: VERDICT, capabilities=Capabilities(logprobs=True))
    judge = RubricJudge(client, criteria=CRITERIA)
    assert not judge.exact.enabled
    result = judge.judge("q", "an answer")
    assert len(client.calls) == 1 and result.scoring != "exact"
    with pytest.raises(ConfigurationError, match="prefill_choice"):
        RubricJudge(client, criteria=CRITERIA, exact=True)
    with pytest.raises(ConfigurationError, match='scoring="expected"'):
        RubricJudge(client, criteria=CRITERIA, scoring="sampled", exact=True)


# -- pairwise and listwise ------------------------------------------------------------------------


def prefill_client(handler: Any) -> FunctionClient:
    return FunctionClient(
        handler, capabilities=Capabilities(logprobs=True, max_top_logprobs=20, prefill_choice=True)
    )


def choice_response(probs: dict[str, float]) -> ChatResponse:
    top = tuple((t, math.log(p)) for t, p in probs.items())
    sampled = max(probs, key=lambda k: probs[k])
    return ChatResponse(
        text=sampled,
        finish_reason="stop",
        logprobs=(TokenLogprob(sampled, math.log(probs[sampled]), top),),
        usage=Usage(requests=1),
    )


async def test_preference_reads_label_probabilities_exactly() -> None:
    def handler(request: ChatRequest) -> Any:
        if request.messages[-1].role == "assistant":
            assert choices_of(request) == ("A", "B", "tie")
            assert content_text(request.messages[-1].content).endswith('"winner": "')
            first_is_x = "<<<RESPONSE_A" in request.messages[-2].content and (
                request.messages[-2].content.index("\nx\n")
                < request.messages[-2].content.index("\ny\n")
            )
            return choice_response(
                {"A": 0.7, "B": 0.2, "tie": 0.1} if first_is_x else {"A": 0.4, "B": 0.5, "tie": 0.1}
            )
        return json.dumps({"rationale": "r", "winner": "A"})

    client = prefill_client(handler)
    judge = PreferenceJudge(client)
    assert judge.exact.enabled
    result = await judge.acompare("q", "x", "y")
    assert len(client.calls) == 4  # two orders, a read for each
    assert result.from_logprobs
    assert result.prob_a == pytest.approx(((0.7 + 0.05) + (0.5 + 0.05)) / 2)


async def test_listwise_reads_each_ids_score_exactly() -> None:
    exact = {"good": {"8": 0.5, "9": 0.5}, "poor": {"2": 1.0}}
    answers: dict[str, str] = {}

    def handler(request: ChatRequest) -> Any:
        if request.messages[-1].role == "assistant":
            prefix = content_text(request.messages[-1].content)
            cid = prefix.rsplit('"id": "', 1)[1].split('"', 1)[0]
            return choice_response(exact[answers[cid]])
        items = listwise_shown(request)
        answers.update(dict(items))
        scores = [{"id": c, "score": 8 if t == "good" else 2} for c, t in items]
        return json.dumps({"rationale": "r", "scores": scores})

    client = prefill_client(handler)
    judge = ListwiseJudge(client, permutations=1)
    out = await judge.ajudge_group("q", ["good", "poor"])
    assert rewards(out) == pytest.approx([0.85, 0.2])
    assert len(client.calls) == 3  # one answer, one read per completion
    metrics = judge.metrics_of(out)
    assert metrics["exact_fallback_rate"] == 0.0 and metrics["requests_per_group"] == 3.0


def test_letter_labels_are_single_characters() -> None:
    labels = letter_labels(list(range(1, 21)))
    assert list(labels)[:3] == ["A", "B", "C"] and labels["T"] == 20
    with pytest.raises(ConfigurationError):
        letter_labels(list(range(30)))
