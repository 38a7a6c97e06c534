"""The cohort reward server: whole GRPO groups judged once though each process holds only part.

Real HTTP on loopback: uvicorn serves the app in a thread; each "training process" is a thread with
its own event loop and its own reward function (its own call counter), or a real subprocess.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from rftjudge import FunctionClient, ListwiseJudge, PreferenceJudge
from rftjudge.integrations.cohort import (
    CohortBuffer,
    CohortItem,
    IncompleteGroupError,
    cohort_reward_func,
    create_cohort_app,
    group_key,
)

from support.asgi import running
from support.listwise import ListwiseScript

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
GROUPS = {
    "prompt one": [f"one-{i}" for i in range(8)],
    "prompt two": [f"two-{i}" for i in range(8)],
}
QUALITY = {t: 9 - i for texts in GROUPS.values() for i, t in enumerate(texts)}


def listwise(**options: Any) -> tuple[ListwiseJudge, FunctionClient, ListwiseScript]:
    script = ListwiseScript(QUALITY)
    client = FunctionClient(script)
    return ListwiseJudge(client, permutations=2, **options), client, script


def halves(rank: int) -> tuple[list[str], list[str]]:
    """Process ``rank``'s slice: half of every group (TRL splits groups across processes)."""
    prompts, completions = [], []
    for prompt, texts in GROUPS.items():
        for text in texts[rank::2]:
            prompts.append(prompt)
            completions.append(text)
    return prompts, completions


def run_ranks(url: str, ranks: int = 2, **options: Any) -> list[dict[str, Any]]:
    """Call one reward function per "process" (thread + event loop), all at once."""
    results: list[dict[str, Any]] = [{} for _ in range(ranks)]

    def rank_main(rank: int) -> None:
        func = cohort_reward_func(url, num_generations=8, timeout=30, **options)
        prompts, completions = halves(rank)
        logged: dict[str, float] = {}

        async def call() -> list[float | None]:
            return await func(
                prompts=prompts,
                completions=completions,
                log_metric=lambda k, v: logged.__setitem__(k, v),
            )

        rewards = asyncio.run(call())
        results[rank] = {"rewards": rewards, "completions": completions, "logged": logged}

    threads = [threading.Thread(target=rank_main, args=(r,)) for r in range(ranks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


# -- the buffer -----------------------------------------------------------------------------------


async def test_buffer_judges_a_group_once_when_its_parts_arrive_separately() -> None:
    judge, client, script = listwise()
    buffer = CohortBuffer(judge, deadline_s=30)
    texts = GROUPS["prompt one"]
    items = [CohortItem("k", 8, "prompt one", t) for t in texts]
    first, second = await asyncio.gather(buffer.submit(items[:3]), buffer.submit(items[3:]))
    assert len(client.calls) == 2  # one group, two orders: judged once
    assert sorted(t for _, t in script.seen[0]) == sorted(texts)
    rewards = [judge.reward_of(o) for o in [*first, *second]]
    assert rewards == pytest.approx([QUALITY[t] / 10 for t in texts])
    assert buffer.pending == 0 and buffer.groups_judged == 1


async def test_an_incomplete_group_abstains_at_the_deadline() -> None:
    judge, client, _ = listwise()
    buffer = CohortBuffer(judge, deadline_s=0.05)
    out = await buffer.submit([CohortItem("k", 8, "p", t) for t in GROUPS["prompt one"][:5]])
    assert all(isinstance(o, IncompleteGroupError) for o in out)
    assert out[0].kind == "incomplete_group"
    assert [judge.reward_of(o) for o in out] == [None] * 5
    assert not client.calls  # a fragment is never ranked
    assert judge.stats.failures["incomplete_group"] == 5 and buffer.groups_incomplete == 1


async def test_a_prompt_seen_twice_fills_two_groups() -> None:
    judge, client, _ = listwise()
    buffer = CohortBuffer(judge, group_size=2, deadline_s=30)
    out = await buffer.submit(
        [CohortItem("k", 2, "p", t) for t in ["one-0", "one-1", "one-2", "one-3"]]
    )
    assert len(client.calls) == 4  # two groups of 2, two orders each
    assert [judge.reward_of(o) for o in out] == pytest.approx([0.9, 0.8, 0.7, 0.6])


def test_group_keys_agree_across_processes_and_separate_steps() -> None:
    assert group_key("p", None, "", 3, 1) == group_key("p", None, "", 3, 1)
    assert group_key("p", None, "", 3, 1) != group_key("p", None, "", 3, 2)
    assert group_key("p", "ref", "", 3, 1) != group_key("p", None, "", 3, 1)


# -- over HTTP ------------------------------------------------------------------------------------


def test_two_processes_each_holding_half_of_every_group() -> None:
    judge, client, script = listwise()
    with running(create_cohort_app(judge, group_size=8, deadline_s=30)) as url:
        results = run_ranks(url)
        health = httpx.get(f"{url}/health", timeout=10).json()
    assert len(client.calls) == 4  # 2 groups × 2 orders: each group judged once, whole
    assert all(len(seen) == 8 for seen in script.seen)
    for result in results:
        assert result["rewards"] == pytest.approx([QUALITY[t] / 10 for t in result["completions"]])
        assert result["logged"]["cohort_judge/requests_per_group"] == 2.0
        assert result["logged"]["cohort_judge/failure_rate"] == 0.0
    assert health["groups_judged"] == 2 and health["pending_groups"] == 0


def test_pairwise_tournaments_work_through_the_cohort_server() -> None:
    def handler(request: Any) -> str:
        user = request.messages[-1].content
        a = re.search(r"<<<RESPONSE_A \w+>>>\n(.*?)\n<<<END", user, re.S)
        b = re.search(r"<<<RESPONSE_B \w+>>>\n(.*?)\n<<<END", user, re.S)
        assert a and b
        winner = "A" if QUALITY[a.group(1)] > QUALITY[b.group(1)] else "B"
        return json.dumps({"rationale": "r", "winner": winner})

    judge = PreferenceJudge(FunctionClient(handler), group_reward="bradley_terry")
    with running(create_cohort_app(judge, deadline_s=30)) as url:
        results = run_ranks(url)
    for result in results:
        got = dict(zip(result["completions"], result["rewards"], strict=True))
        for texts in GROUPS.values():
            mine = [t for t in texts if t in got]
            assert [got[t] for t in mine] == sorted((got[t] for t in mine), reverse=True)
        assert result["logged"]["cohort_judge/swap_consistency"] == 1.0


def test_a_missing_process_makes_its_groups_abstain() -> None:
    judge, client, _ = listwise()
    with running(create_cohort_app(judge, deadline_s=0.2)) as url:
        results = run_ranks(url, ranks=1)  # the other half never comes
    assert results[0]["rewards"] == [None] * 8
    assert results[0]["logged"]["cohort_judge/failure_rate"] == 1.0
    assert not client.calls


def test_bad_requests_get_a_400() -> None:
    judge, _, _ = listwise()
    with running(create_cohort_app(judge, group_size=8)) as url:
        not_json = httpx.post(f"{url}/cohort", content=b"nope", timeout=10)
        wrong_size = httpx.post(
            f"{url}/cohort",
            json={"items": [{"key": "k", "group_size": 4, "prompt": "p", "completion": "c"}]},
            timeout=10,
        )
    assert not_json.status_code == 400 and "items" in not_json.json()["error"]
    assert wrong_size.status_code == 400 and "groups of 8" in wrong_size.json()["error"]


async def test_an_unreachable_server_abstains_and_says_so() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there
    func = cohort_reward_func(f"http://127.0.0.1:{port}", num_generations=2, timeout=5)
    logged: dict[str, float] = {}
    out = await func(prompts=["p", "p"], completions=["a", "b"], log_metric=logged.__setitem__)
    assert out == [None, None] and logged == {"cohort_judge/failure_rate": 1.0}


def test_the_reward_function_rejects_bad_arguments() -> None:
    with pytest.raises(Exception, match="num_generations"):
        cohort_reward_func("http://127.0.0.1:1", num_generations=0)


def test_real_processes_share_one_cohort_server() -> None:
    judge, client, _ = listwise()
    code = textwrap.dedent(
        """
        import asyncio, json, sys
        from rftjudge.integrations.cohort import cohort_reward_func
        rank, url = int(sys.argv[1]), sys.argv[2]
        groups = json.loads(sys.argv[3])
        prompts, completions = [], []
        for prompt, texts in groups.items():
            for text in texts[rank::2]:
                prompts.append(prompt)
                completions.append(text)
        func = cohort_reward_func(url, num_generations=8, timeout=60)
        rewards = asyncio.run(func(prompts=prompts, completions=completions))
        print(json.dumps(dict(zip(completions, rewards))))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with running(create_cohort_app(judge, deadline_s=60)) as url:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, str(rank), url, json.dumps(GROUPS)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                text=True,
            )
            for rank in range(2)
        ]
        outputs = [p.communicate(timeout=90) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        for text, reward in json.loads(out).items():
            assert reward == pytest.approx(QUALITY[text] / 10)
    assert len(client.calls) == 4
