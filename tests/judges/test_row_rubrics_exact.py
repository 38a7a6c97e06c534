"""Per-row rubric items read exactly (prefill + constrained choice) over HTTP (respx)."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest
import respx

from rftjudge import OpenAIClient, RubricJudge

from support.payloads import BASE, CHAT, completion


def choice_reply(probs: dict[str, float]) -> dict[str, Any]:
    sampled = max(probs, key=lambda k: probs[k])
    top = [{"token": t, "logprob": math.log(p)} for t, p in probs.items()]
    content = [{"token": sampled, "logprob": math.log(probs[sampled]), "top_logprobs": top}]
    return completion(sampled, logprobs={"content": content})


async def test_each_chunk_is_read_exactly_and_a_chunk_reask_is_counted(
    api: respx.MockRouter,
) -> None:
    exact = {"a": {"4": 0.5, "5": 0.5}, "b": {"true": 0.25, "false": 0.75}, "c": {"1": 1.0}}
    asked: dict[str, int] = {}

    def reply(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        last = body["messages"][-1]
        if last["role"] == "assistant":  # an exact read: which id does the prefix end with?
            ident = last["content"].rstrip(": ").rsplit('"', 2)[-2]
            return httpx.Response(200, json=choice_reply(exact[ident]))
        schema = json.dumps(body)
        ids = ["c"] if '"c"' in schema and '"a"' not in schema else ["a", "b"]
        asked[ids[0]] = asked.get(ids[0], 0) + 1
        if ids == ["c"] and asked["c"] == 1:
            verdict = {"rationale": "r", "scores": {"a": 3}}  # wrong id: re-asked alone
        else:
            verdict = {
                "rationale": "r",
                "scores": {"a": 4, "b": True} if ids != ["c"] else {"c": 1},
            }
        return httpx.Response(200, json=completion(json.dumps(verdict)))

    api.post(CHAT).mock(side_effect=reply)
    judge = RubricJudge(OpenAIClient("m", base_url=BASE, server="vllm"), max_criteria=2)
    rubric = [
        {"id": "a", "description": "x"},
        {"id": "b", "description": "y", "type": "pass_fail"},
        {"id": "c", "description": "z", "category": "pitfall"},
    ]
    result = await judge.ajudge("q", "an answer", rubric=rubric)
    assert result.scoring == "exact" and result.exact_fallbacks == 0
    assert result.normalized == pytest.approx({"a": 0.875, "b": 0.25, "c": 0.0})
    assert result.score == pytest.approx((0.875 + 0.25) / 2)
    assert asked == {"a": 1, "c": 2} and result.chunk_reasks == 1
