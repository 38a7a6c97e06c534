"""The default fast transport (aiohttp under httpx) against a real loopback HTTP server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from rftjudge import Criterion, OpenAIClient, RetryPolicy, RubricJudge

from support.server import LoopbackServer, Reply, chat_reply

pytestmark = pytest.mark.integration

CRITERIA = [Criterion(name="quality", description="good?")]


def _verdict(score: int) -> Reply:
    return Reply(body=chat_reply(json.dumps({"rationale": "r", "scores": {"quality": score}})))


def test_batch_over_real_sockets_respects_max_concurrency() -> None:
    def handler(payload: dict[str, Any]) -> Reply:
        reply = _verdict(5)
        reply.delay = 0.02
        return reply

    with LoopbackServer(handler) as server:
        judge = RubricJudge(
            OpenAIClient("m", base_url=server.base_url, max_concurrency=4), criteria=CRITERIA
        )
        rewards = judge.reward_batch(["q"] * 20, [f"a{i}" for i in range(20)])
        assert rewards == [1.0] * 20
        assert server.max_in_flight == 4
        judge.client.close()  # type: ignore[attr-defined]


def test_faults_over_real_sockets_are_retried(fake_sleep: Any) -> None:
    calls = {"n": 0}

    def handler(payload: dict[str, Any]) -> Reply:
        calls["n"] += 1
        if calls["n"] == 1:
            return Reply(drop=True)
        if calls["n"] == 2:
            return Reply(status=503, body={"error": {"message": "loading"}})
        if calls["n"] == 3:
            return Reply(status=200, body="not json")
        return _verdict(3)

    with LoopbackServer(handler) as server:
        client = OpenAIClient(
            "m", base_url=server.base_url, retry_policy=RetryPolicy(max_retries=4, sleep=fake_sleep)
        )
        judge = RubricJudge(client, criteria=CRITERIA, scale=(1, 5))
        assert judge.reward("q", "a") == 0.5
        assert calls["n"] == 4
        assert client.stats.retries == 3


def test_read_timeout_over_real_sockets(fake_sleep: Any) -> None:
    async def handler(payload: dict[str, Any]) -> Reply:
        await asyncio.sleep(2)
        return _verdict(5)

    with LoopbackServer(handler) as server:
        client = OpenAIClient(
            "m",
            base_url=server.base_url,
            timeout=0.2,
            retry_policy=RetryPolicy(max_retries=1, sleep=fake_sleep),
        )
        judge = RubricJudge(client, criteria=CRITERIA)
        assert judge.reward("q", "a") is None
        assert judge.stats.failures["timeout"] == 1


async def test_same_client_from_two_event_loops() -> None:
    """The sync API (portal loop) and the caller's own loop share one client and its limit."""
    with LoopbackServer(lambda p: _verdict(4)) as server:
        client = OpenAIClient("m", base_url=server.base_url, max_concurrency=2)
        judge = RubricJudge(client, criteria=CRITERIA)
        assert await judge.areward("q", "a") == 0.75
        assert judge.reward("q", "b") == 0.75
        await client.aclose()


@pytest.mark.parametrize(
    "call",
    [
        "j.reward('p', 'the answer is four')",  # the sync API: the portal closes its pools
        # asyncio.run() without aclose(): the pool is closed as the loop shuts down
        "__import__('asyncio').run(j.areward('p', 'the answer is four'))",
    ],
)
def test_a_script_leaves_no_unclosed_session_at_exit(tmp_path: Any, call: str) -> None:
    """A script that never closes its client exits without aiohttp's "Unclosed client session"."""
    import subprocess
    import sys
    from pathlib import Path

    tests_dir = Path(__file__).resolve().parents[1]
    script = tmp_path / "script.py"
    script.write_text(
        "import json, sys\n"
        f"sys.path.insert(0, {str(tests_dir)!r})\n"
        "from support.server import LoopbackServer, Reply, chat_reply\n"
        "from rftjudge import Criterion, OpenAIClient, RubricJudge\n"
        "body = chat_reply(json.dumps({'rationale': 'r', 'scores': {'q': 5}}))\n"
        "with LoopbackServer(lambda p: Reply(body=body)) as s:\n"
        "    j = RubricJudge(OpenAIClient('m', base_url=s.base_url),\n"
        "                    criteria=[Criterion(name='q', description='d')])\n"
        f"    print({call})\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1.0"
    assert "Unclosed" not in out.stderr, out.stderr
