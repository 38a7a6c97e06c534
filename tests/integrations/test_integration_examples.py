"""The integration examples work as their trainers load them, against a loopback judge server."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from support.server import LoopbackServer, Reply, chat_reply

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def best_verdict(payload: dict[str, Any]) -> Reply:
    """Top marks on every criterion the request's output schema asks for."""
    schema = payload["response_format"]["json_schema"]["schema"]
    scores = {
        name: (True if spec.get("type") == "boolean" else max(spec["enum"]))
        for name, spec in schema["properties"]["scores"]["properties"].items()
    }
    first_user = next(m["content"] for m in payload["messages"] if m["role"] == "user")
    if "FAIL" in first_user.split("RESPONSE:")[-1]:  # also on the re-ask
        return Reply(body=chat_reply("no verdict"))
    return Reply(body=chat_reply(json.dumps({"rationale": "ok", "scores": scores})))


@pytest.fixture
def judge_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    with LoopbackServer(best_verdict) as server:
        monkeypatch.setenv("JUDGE_BASE_URL", server.base_url)
        monkeypatch.setenv("JUDGE_MODEL", "loopback-judge")
        yield server


def load_file(path: Path, name: str) -> ModuleType:
    """How veRL (load_extern_type) and OpenRLHF import a reward file: by path."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_verl_example(judge_server: LoopbackServer) -> None:
    module = load_file(EXAMPLES / "verl_reward.py", "custom_module")
    result = await module.compute_score(
        data_source="openai/gsm8k",
        solution_str="2+2 is 4. #### 4",
        ground_truth="4",
        extra_info={"question": "What is 2+2?", "num_turns": None, "rollout_reward_scores": {}},
    )
    assert result == {"score": 1.0, "judge_failed": 0.0, "correctness": 1.0, "clarity": 1.0}
    failed = await module.compute_score(
        data_source="x", solution_str="FAIL", ground_truth="4", extra_info={"question": "q"}
    )
    assert failed["score"] == 0.5 and failed["judge_failed"] == 1.0
    batch = await asyncio.to_thread(
        module.compute_score_batch,
        data_sources=["a", "b"],
        solution_strs=["4", "FAIL"],
        ground_truths=["4", "4"],
        extra_infos=[{"question": "q"}, {"question": "q"}],
    )
    assert [r["score"] for r in batch] == [1.0, 0.5]
    assert "What is 2+2?" in judge_server.requests[0]["messages"][-1]["content"]


async def test_openrlhf_example_as_a_reward_file(judge_server: LoopbackServer) -> None:
    module = load_file(EXAMPLES / "openrlhf_reward.py", "reward_func")
    prompt = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    result = await asyncio.to_thread(module.reward_func, [prompt + "4<|im_end|>"], [prompt], ["4"])
    assert result["rewards"] == [1.0] and result["extra_logs"]["judge_failed"] == [0.0]
    sent = judge_server.requests[-1]["messages"][-1]["content"]
    assert "<|im_end|>" not in sent.split("RESPONSE:")[-1]


@dataclass(frozen=True)
class Task:
    prompt_text: str = "What is 2+2?"
    answer: str = "4"


@dataclass
class Trace:
    last_reply: str = "4"
    transcript: str = ""
    info: dict[str, Any] = field(default_factory=dict)


async def test_verifiers_example(judge_server: LoopbackServer) -> None:
    module = load_file(EXAMPLES / "verifiers_reward.py", "verifiers_reward")
    assert await module.judge_reward(task=Task(), trace=Trace()) == 1.0
    classic = await module.classic_judge_reward(
        prompt=[{"role": "user", "content": "What is 2+2?"}],
        completion=[{"role": "assistant", "content": "FAIL"}],
        answer="4",
        state={},
        info={},
    )
    assert classic == 0.5


def test_nova_lambda_example(judge_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES / "nova_lambda"))
    monkeypatch.delitem(sys.modules, "handler", raising=False)
    module = load_file(EXAMPLES / "nova_lambda" / "handler.py", "handler")
    answer = '{"compliant": "No", "explanation": "There is no dedicated team."}'
    event = [
        {
            "id": "bedrock",
            "messages": [
                {"role": "user", "content": "Do you have a dedicated security team?"},
                {"role": "assistant", "content": answer},
            ],
            "metadata": {"reference_answer": {"compliant": "No"}},
        },
        {
            "id": "nova",
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": answer},
            ],
            "reference_answer": {"compliant": "No"},
        },
        {"id": "gated", "messages": [{"role": "assistant", "content": "not json"}]},
    ]

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    output = module.lambda_handler(event, Context())
    assert [r["aggregate_reward_score"] for r in output] == [1.0, 1.0, 0.0]
    names = {m["name"] for m in output[0]["metrics_list"]}
    assert {"judge", "correct_verdict", "grounded", "concise", "json_valid"} <= names
    assert len(judge_server.requests) == 2  # the gated sample cost nothing


def test_trl_rloo_example_offline(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "trl_rloo.py"), "--offline", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=280,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "steps: 2" in out.stdout
    assert "failures={}" in out.stdout
