"""A client dropped without aclose() releases its pool without aiohttp's warnings, from any loop.

Each case runs in a fresh interpreter with ResourceWarnings shown, the way a user's script prints
them ("Unclosed client session", "Unclosed connector", and asyncio's error log of the same), and
counts those lines on its stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
SRC = TESTS.parent / "src"

PRELUDE = """
import asyncio, gc, json, sys
sys.path.insert(0, {tests!r})
from support.server import LoopbackServer, Reply, chat_reply
from rftjudge import Criterion, OpenAIClient, RubricJudge

def verdict(payload):
    return Reply(body=chat_reply(json.dumps({{"rationale": "r", "scores": {{"quality": 5}}}})))

def make(server):
    client = OpenAIClient("m", base_url=server.base_url)
    return RubricJudge(client, criteria=[Criterion(name="quality", description="good?")])

server = LoopbackServer(verdict).__enter__()
"""

CASES = {
    # the sync API: the pool lives on rftjudge's portal loop, which keeps running
    "sync": """
judge = make(server)
assert judge.reward("q", "a") == 1.0
del judge
gc.collect()
assert make(server).reward("q", "b") == 1.0  # the portal carries on (and closes the first pool)
""",
    # dropped inside asyncio.run, while its loop runs
    "running_loop": """
async def main():
    judge = make(server)
    assert await judge.areward("q", "a") == 1.0
    del judge
    gc.collect()
    await asyncio.sleep(0)
asyncio.run(main())
gc.collect()
""",
    # dropped while its (hand-made) loop is idle, which is closed afterwards
    "idle_loop": """
loop = asyncio.new_event_loop()
judge = make(server)
assert loop.run_until_complete(judge.areward("q", "a")) == 1.0
del judge
gc.collect()
loop.run_until_complete(asyncio.sleep(0))
loop.close()
gc.collect()
""",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_dropped_client_prints_no_unclosed_warnings(case: str) -> None:
    script = PRELUDE.format(tests=str(TESTS)) + CASES[case] + "\nprint('done')\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    out = subprocess.run(
        [sys.executable, "-W", "default::ResourceWarning", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0 and out.stdout.strip() == "done", out.stderr[-2000:]
    unclosed = [
        line
        for line in out.stderr.splitlines()
        if "Unclosed client session" in line or "Unclosed connector" in line
    ]
    assert unclosed == [], out.stderr[-2000:]
