"""llama.cpp exact reads that continue the verdict's own tokens (``/apply-template`` +
``/v1/completions`` with a mixed prompt), their fallbacks to chat text, and the alignment rule."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any

import pytest

from rftjudge import ChatResponse, OpenAIClient, RubricJudge
from rftjudge._types import LazyLogprobs
from rftjudge.judges._distribution import tokens_before

from support.judges import RIGHT_AND_CLEAR as CRITERIA
from support.server import LoopbackServer, Reply, chat_reply

VERDICT = '{"rationale": "ok", "scores": {"correct": 4, "clear": 2}}'
# What the judge generated: a code fence the server strips from the content, then the verdict
# in tokens that are not the tokenizer's own split of the text ("r" "ationale").
PIECES = ["```", "json", "\n", '{"', "r", "ationale", '":', ' "', "ok", '",', ' "', "scores"]
PIECES += ['":', ' {"', "correct", '":', " 4", ",", ' "', "clear", '":', " 2", "}}"]
IDS = [100 + i for i in range(len(PIECES))]
BEFORE_CORRECT = IDS[: PIECES.index(" 4")]
BEFORE_CLEAR = IDS[: PIECES.index(" 2")]
READS = {len(BEFORE_CORRECT): {"4": 0.6, "3": 0.4}, len(BEFORE_CLEAR): {"2": 0.5, "1": 0.5}}


def _logprobs(pieces: list[str], ids: list[int] | None) -> dict[str, Any]:
    content = []
    for index, piece in enumerate(pieces):
        entry: dict[str, Any] = {"token": piece, "logprob": -0.1, "top_logprobs": []}
        if ids is not None:
            entry["id"] = ids[index]
        content.append(entry)
    return {"content": content}


def _choice_logprobs(probs: dict[str, float]) -> dict[str, Any]:
    top = [{"token": t, "logprob": math.log(p)} for t, p in probs.items()]
    best = max(probs, key=lambda k: probs[k])
    return {
        "content": [{"id": 1, "token": best, "logprob": math.log(probs[best]), "top_logprobs": top}]
    }


class FakeLlamaServer(LoopbackServer):
    """A verdict with token ids; a template endpoint; completions that check their prompt."""

    def __init__(
        self, *, ids: bool = True, template_status: int = 200, completions_status: int = 200
    ) -> None:
        self.ids = ids
        self.template_status = template_status
        self.completions_status = completions_status
        super().__init__(
            self._chat,
            routes={"/apply-template": self._template, "/v1/completions": self._complete},
        )

    def _chat(self, body: dict[str, Any]) -> Reply:
        if body["messages"][-1]["role"] == "assistant":  # an exact read as chat text
            prefix = body["messages"][-1]["content"]
            probs = READS[len(BEFORE_CLEAR)] if "clear" in prefix else READS[len(BEFORE_CORRECT)]
            return Reply(body=chat_reply("x", logprobs=_choice_logprobs(probs)))
        lp = _logprobs(PIECES, IDS if self.ids else None)
        return Reply(body=chat_reply(VERDICT, logprobs=lp))

    def _template(self, body: dict[str, Any]) -> Reply:
        if self.template_status != 200:
            return Reply(status=self.template_status, body={"error": {"message": "not found"}})
        return Reply(body={"prompt": "<rendered " + json.dumps(body["messages"]) + ">"})

    def _complete(self, body: dict[str, Any]) -> Reply:
        if self.completions_status != 200:
            return Reply(status=self.completions_status, body={"error": {"message": "bad prompt"}})
        rendered, *ids = body["prompt"]
        assert rendered.startswith("<rendered ") and ids == IDS[: len(ids)]
        reply = {
            "choices": [
                {
                    "text": "4",
                    "index": 0,
                    "logprobs": _choice_logprobs(READS[len(ids)]),
                    "finish_reason": "length",
                }
            ],
            "usage": {"prompt_tokens": 80, "completion_tokens": 1, "total_tokens": 81},
            "timings": {"prompt_n": 1, "cache_n": 79},
        }
        return Reply(body=reply)


def _judge(server: LoopbackServer, **client: Any) -> tuple[RubricJudge, OpenAIClient]:
    api = OpenAIClient("m", base_url=server.base_url, server="llamacpp", **client)
    return RubricJudge(api, CRITERIA), api


def test_reads_continue_the_verdicts_own_tokens_after_one_rendered_template() -> None:
    with FakeLlamaServer() as server:
        judge, client = _judge(server, slots=1)
        judgment = judge.judge("q", "an answer")
        client.close()
    assert judgment.scoring == "exact" and judgment.exact_fallbacks == 0
    assert judgment.criteria == pytest.approx({"correct": 3.6, "clear": 1.5})
    assert server.paths == [
        "/v1/chat/completions",
        "/apply-template",  # once for both reads of the verdict
        "/v1/completions",
        "/v1/completions",
    ]
    verdict, template, first, second = server.requests
    assert template["messages"] == verdict["messages"]
    # both reads continue the verdict's own ids (their arrival order is the network's)
    assert sorted([first["prompt"][1:], second["prompt"][1:]]) == [BEFORE_CORRECT, BEFORE_CLEAR]
    assert first["grammar"] == 'root ::= "1" | "2" | "3" | "4" | "5"'
    assert first["max_tokens"] == 1 and first["temperature"] == 0.0
    assert isinstance(first["logprobs"], int) and first["logprobs"] >= 5
    assert verdict["id_slot"] == first["id_slot"] == second["id_slot"] == 0
    assert judgment.usage.cached_input_tokens >= 2 * 79


def test_a_server_without_apply_template_gets_chat_text_reads_and_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with FakeLlamaServer(template_status=404) as server, caplog.at_level(logging.WARNING):
        judge, client = _judge(server)
        first = judge.judge("q", "an answer")
        second = judge.judge("q", "another answer")
        client.close()
    assert client.token_reads is False
    assert [j.criteria for j in (first, second)] == [
        pytest.approx({"correct": 3.6, "clear": 1.5})
    ] * 2
    assert server.paths.count("/apply-template") == 1  # asked once, then never again
    assert "/v1/completions" not in server.paths
    warnings = [r for r in caplog.records if "cannot continue token ids" in r.getMessage()]
    assert len(warnings) == 1


def test_a_server_without_token_prompts_gets_the_same_read_as_chat_text() -> None:
    with FakeLlamaServer(completions_status=404) as server:
        judge, client = _judge(server)
        judgment = judge.judge("q", "an answer")
        client.close()
    assert judgment.scoring == "exact" and judgment.exact_fallbacks == 0
    assert judgment.criteria == pytest.approx({"correct": 3.6, "clear": 1.5})
    assert client.token_reads is False
    chat_reads = [
        r
        for r, p in zip(server.requests, server.paths, strict=True)
        if p.endswith("chat/completions")
    ]
    assert len(chat_reads) == 3  # the verdict, then both reads again as chat text


def test_a_verdict_without_token_ids_is_read_as_chat_text() -> None:
    with FakeLlamaServer(ids=False) as server:
        judge, client = _judge(server)
        judgment = judge.judge("q", "an answer")
        client.close()
    assert judgment.criteria == pytest.approx({"correct": 3.6, "clear": 1.5})
    assert server.paths == ["/v1/chat/completions"] * 3
    assert client.token_reads is True  # nothing went wrong: there was nothing to continue


# -- where the tokens line up with the text --------------------------------------------------------


def _answer(pieces: list[str], text: str, ids: bool = True) -> ChatResponse:
    items = [{"token": p, "id": 10 + i} if ids else {"token": p} for i, p in enumerate(pieces)]
    lazy = LazyLogprobs(
        items,
        lambda i: None,  # type: ignore[arg-type, return-value]
        lambda i: str(i["token"]),
        lambda i: i.get("id"),
    )
    return ChatResponse(text=text, logprobs=lazy)


def test_tokens_before_a_value_keep_a_stripped_fence_and_skip_a_leading_space() -> None:
    text = '{"a": 3}'
    answer = _answer(["```", "json\n", '{"', "a", '":', " 3", "}"], text)
    assert tokens_before(answer, text.index("3")) == (10, 11, 12, 13, 14)


@pytest.mark.parametrize(
    ("pieces", "why"),
    [
        (['{"', "a", '":3', "}"], "the value's token also carries the colon"),
        (['{"', "b", '": ', "3", "}"], "the tokens spell another text"),
    ],
)
def test_tokens_that_do_not_line_up_give_none(pieces: list[str], why: str) -> None:
    text = '{"a": 3}'
    assert tokens_before(_answer(pieces, text), text.index("3")) is None, why


def test_no_ids_give_none() -> None:
    text = '{"a": 3}'
    answer = _answer(['{"', "a", '":', " 3", "}"], text, ids=False)
    assert tokens_before(answer, text.index("3")) is None
    assert tokens_before(ChatResponse(text=text), text.index("3")) is None


class SlowFirstTemplate(FakeLlamaServer):
    """The first conversation's template answers late, so the second's reads go first."""

    def __init__(self) -> None:
        super().__init__()
        self.templates = 0
        self.routes["/apply-template"] = self._slow_template

    async def _slow_template(self, body: dict[str, Any]) -> Reply:
        self.templates += 1
        if self.templates == 1:
            await asyncio.sleep(0.2)
        return self._template(body)


async def test_identical_judgments_on_one_slot_never_wait_on_each_others_reads() -> None:
    """Coalesced verdicts, one slot: a follow-up that waited on another conversation's
    identical read, which waited for this conversation's slot, would hang for ever."""
    with SlowFirstTemplate() as server:
        client = OpenAIClient("m", base_url=server.base_url, server="llamacpp", slots=1)
        judge = RubricJudge(client, CRITERIA)
        first, second = await asyncio.gather(judge.ajudge("q", "same"), judge.ajudge("q", "same"))
        await client.aclose()
    assert first.criteria == second.criteria == pytest.approx({"correct": 3.6, "clear": 1.5})
    assert server.paths.count("/v1/chat/completions") == 1  # the verdicts still coalesce
    assert server.paths.count("/v1/completions") == 4  # the reads never do


def test_template_kwargs_of_the_judge_reach_the_rendered_prompt() -> None:
    with FakeLlamaServer() as server:
        client = OpenAIClient("m", base_url=server.base_url, server="llamacpp")
        judge = RubricJudge(
            client, CRITERIA, extra_body={"chat_template_kwargs": {"enable_thinking": False}}
        )
        judge.judge("q", "an answer")
        client.close()
    template = server.requests[server.paths.index("/apply-template")]
    assert template["chat_template_kwargs"] == {"enable_thinking": False}


def test_a_400_for_one_token_read_reads_it_as_text_and_keeps_token_reads() -> None:
    with FakeLlamaServer(completions_status=400) as server:
        judge, client = _judge(server)
        judgment = judge.judge("q", "an answer")
        client.close()
    assert judgment.criteria == pytest.approx({"correct": 3.6, "clear": 1.5})
    assert client.token_reads is True  # one request's problem, not the server's
    assert server.paths.count("/v1/completions") == 2


def test_tokens_before_take_the_last_copy_of_the_answer() -> None:
    """A thinking judge may draft the answer in its reasoning first: the ids must end in the
    answer it gave, not in the draft."""
    text = '{"a": 3}'
    pieces = ["<think>", '{"', "a", '":', " 3", "}", "</think>", '{"', "a", '":', " 3", "}"]
    assert tokens_before(_answer(pieces, text), text.index("3")) == tuple(range(10, 20))
