"""The OpenRLHF reward server over real HTTP on loopback (uvicorn + starlette)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from rftjudge import OpenAIClient, RubricJudge
from rftjudge.integrations.openrlhf import create_app

from support.asgi import running
from support.judges import BAD, CRITERIA, GOOD, scripted_judge
from support.server import LoopbackServer, Reply, chat_reply

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
EOS = "<|im_end|>"


def payload(responses: list[str], labels: list[str] | None = None) -> dict[str, Any]:
    """OpenRLHF's request: one per sample in 0.11.2; shards of several up to 0.11.0."""
    return {
        "query": [PROMPT + r + EOS for r in responses],
        "prompts": [PROMPT] * len(responses),
        "labels": labels if labels is not None else ["4"] * len(responses),
    }


def test_get_reward_and_root_route_answer_the_openrlhf_format() -> None:
    judge, script = scripted_judge(on_error=0.5)
    with running(create_app(judge, eos_token=EOS)) as url:
        one = httpx.post(f"{url}/get_reward", json=payload(["The answer is 4."]), timeout=30)
        many = httpx.post(f"{url}/", json=payload(["4", "1", "FAIL"]), timeout=30)
    assert one.status_code == 200
    assert one.json() == {
        "rewards": [GOOD],
        "scores": [GOOD],
        "extra_logs": {"judge_failed": [0.0], "correctness": [1.0], "tone": [0.5]},
    }
    assert script.seen[0]["response"] == "The answer is 4."
    body = many.json()
    assert body["rewards"] == [GOOD, BAD, 0.5]
    assert body["scores"] == body["rewards"]
    assert body["extra_logs"]["judge_failed"] == [0.0, 0.0, 1.0]


def test_empty_lists_health_and_bad_bodies() -> None:
    judge, _ = scripted_judge(on_error=0.5)
    with running(create_app(judge)) as url:
        empty = httpx.post(f"{url}/get_reward", json={"query": [], "prompts": [], "labels": []})
        health = httpx.get(f"{url}/health")
        not_json = httpx.post(f"{url}/get_reward", content=b"{nope")
        no_query = httpx.post(f"{url}/get_reward", json={"prompts": []})
        only_query = httpx.post(f"{url}/get_reward", json={"query": ["4"]})
        get = httpx.get(f"{url}/get_reward")
    assert empty.status_code == 200
    assert empty.json()["rewards"] == [] and empty.json()["scores"] == []
    assert health.json()["status"] == "ok" and health.json()["judge"] == "judge"
    assert not_json.status_code == 400 and no_query.status_code == 400
    assert only_query.status_code == 200 and only_query.json()["rewards"] == [GOOD]
    assert get.status_code == 405


def test_deadline_answers_in_time_with_the_neutral_value() -> None:
    judge, script = scripted_judge(on_error=0.5)
    with running(create_app(judge, deadline_s=0.5)) as url:
        started = time.monotonic()
        response = httpx.post(f"{url}/get_reward", json=payload(["4", "HANG"]), timeout=30)
        elapsed = time.monotonic() - started
    assert elapsed < 5
    assert response.json()["rewards"] == [GOOD, 0.5]
    assert response.json()["extra_logs"]["judge_failed"] == [0.0, 1.0]
    assert script.hung == 1


def test_http_judge_behind_the_server() -> None:
    """The whole path: OpenRLHF → our server → an OpenAI-compatible judge server."""

    def handler(request: dict[str, Any]) -> Reply:
        verdict = {"rationale": "ok", "scores": {"correctness": 5, "tone": 5}}
        return Reply(body=chat_reply(json.dumps(verdict)))

    with LoopbackServer(handler) as judge_server:
        judge = RubricJudge(
            OpenAIClient("judge", base_url=judge_server.base_url, max_concurrency=4),
            criteria=CRITERIA,
            on_error=0.5,
        )
        with running(create_app(judge, eos_token=EOS)) as url:
            response = httpx.post(
                f"{url}/get_reward", json=payload(["4", "4.", "four"]), timeout=30
            )
        assert response.json()["rewards"] == [1.0, 1.0, 1.0]
        assert len(judge_server.requests) == 3


def test_serve_is_the_entry_point(tmp_path: Path) -> None:
    """``serve()`` as the CLI calls it, in its own process, on a free port."""
    pytest.importorskip("uvicorn")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = tmp_path / "serve_judge.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json
            from rftjudge import Criterion, FunctionClient, RubricJudge
            from rftjudge.integrations.openrlhf import serve

            verdict = json.dumps({{"rationale": "r", "scores": {{"q": 4}}}})
            judge = RubricJudge(FunctionClient(lambda request: verdict),
                                criteria=[Criterion(name="q", description="quality")],
                                on_error=0.5)
            serve(judge, "127.0.0.1", {port}, eos_token="</s>", log_level="warning")
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.1)
        answer = httpx.post(
            f"{url}/get_reward",
            json={"query": ["Q: hi A: hello</s>"], "prompts": ["Q: hi A:"], "labels": [""]},
            timeout=30,
        ).json()
        assert answer["rewards"] == [0.75]
        assert answer["extra_logs"] == {"judge_failed": [0.0], "q": [0.75]}
    finally:
        proc.terminate()
        proc.wait(10)
