"""Throughput of rftjudge at the judge server's limit, against hand-written openai SDK and LiteLLM code.

Run from the repository root (needs ``pip install -e ".[bench]"``)::

    python benchmarks/throughput.py            # everything, ~3 minutes on 2 cores
    python benchmarks/throughput.py --quick    # one round, smaller storm runs
    python benchmarks/throughput.py --profile  # also cProfile one rftjudge run (top functions)
    python benchmarks/throughput.py --sections main,import --json out.json

A loopback OpenAI-compatible server (aiohttp, *its own process*, so its CPU is not the client's)
answers every chat completion after a fixed latency with a valid rubric verdict. Each contender
runs in its own subprocess; client CPU is ``resource.getrusage`` (user + sys, every thread) of that
process over the timed batch only (imports, setup and a warm-up batch that opens the connections
are outside it). Every figure is printed as a ratio against a baseline measured in the same run.

Contenders, all doing the whole judge path — render the rubric prompt, request a json_schema
verdict, parse and validate it with pydantic, compute the weighted score:

- ``rftjudge``: ``RubricJudge(OpenAIClient(...)).areward_batch(...)``;
- ``openai``: the official SDK by hand — ``AsyncOpenAI`` + ``asyncio.Semaphore`` + ``gather``;
- ``litellm``: the same with ``litellm.acompletion``.

Scenarios: (1, 2, 3) N=2000 at 50 ms and concurrency 64 for all three; (4) a 429 storm — the server
rejects 30 % of requests at random with ``retry-after-ms: 100`` — and an overload — it rejects
whatever exceeds 24 requests in flight — for rftjudge with and without AIMD, and the openai SDK;
(5) ``python -X importtime -c "import rftjudge"``; (6) N = 500, 2000, 8000 for rftjudge;
(7) HTTP/2 (h2c, hypercorn) against HTTP/1.1 on the same server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODEL = "test-judge"
CRITERIA = [
    ("correctness", "Is the answer factually right and complete?", 2.0),
    ("helpfulness", "Does it address what the user actually asked?", 1.0),
    ("tone", "Is it polite, concise and free of filler?", 1.0),
]
VERDICT = {
    "rationale": "Correct and concise.",
    "scores": {"correctness": 4, "helpfulness": 5, "tone": 3},
}
EXPECTED_REWARD = (2.0 * 0.75 + 1.0 * 1.0 + 1.0 * 0.5) / 4.0
# The judge's probabilities at each score position: the written value and two neighbours.
LP_SCORE_DIST = {4: {4: 0.6, 3: 0.25, 5: 0.1}, 5: {5: 0.7, 4: 0.2, 3: 0.05}, 3: {3: 0.5, 2: 0.3, 4: 0.15}}


def _expected_lp_reward() -> float:
    total = 0.0
    for name, _, weight in CRITERIA:
        dist = LP_SCORE_DIST[VERDICT["scores"][name]]  # type: ignore[index]
        mean = sum(v * p for v, p in dist.items()) / sum(dist.values())
        total += weight * (mean - 1) / 4
    return total / sum(w for _, _, w in CRITERIA)


EXPECTED_LP_REWARD = _expected_lp_reward()


def logprob_reply(top: int, verdict: dict[str, Any] = VERDICT) -> bytes:
    """A chat completion shaped like OpenAI's / vLLM's with ``logprobs: true, top_logprobs: top``.

    The verdict JSON is cut into word-sized tokens; each carries ``top`` alternatives (with
    ``bytes``, as OpenAI sends them). At a score position the alternatives are the neighbouring
    digits (:data:`LP_SCORE_DIST`) followed by junk, as servers report pre-grammar logprobs.
    """
    import math

    text = json.dumps(verdict)
    tokens = re.findall(r"\s?\w+|\s?[^\w\s]+|\s+", text)
    assert "".join(tokens) == text
    junk = [f"tok{i}" for i in range(top)]
    content = []
    for i, token in enumerate(tokens):
        alts: list[tuple[str, float]]
        value = token.strip()
        if value.isdigit() and tokens[i - 1].endswith(":"):
            dist = LP_SCORE_DIST[int(value)]
            alts = [(f" {v}", math.log(p)) for v, p in dist.items()]
        else:
            alts = [(token, -0.01)]
        alts += [(j, -8.0 - k * 0.1) for k, j in enumerate(junk)]
        alts = alts[:top]
        content.append(
            {
                "token": token,
                "logprob": dict(alts).get(token, -0.01),
                "bytes": list(token.encode()),
                "top_logprobs": [
                    {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in alts
                ],
            }
        )
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": {"content": content, "refusal": None},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 420, "completion_tokens": len(tokens), "total_tokens": 460},
        }
    ).encode()


# -- the loopback judge server (its own process) ---------------------------------------------


def serve(args: argparse.Namespace) -> None:
    """Answer chat completions after ``--latency`` seconds; optionally reject with 429."""
    from aiohttp import web

    rng = random.Random(1234)
    reply = json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": json.dumps(VERDICT)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 420, "completion_tokens": 40, "total_tokens": 460},
        }
    ).encode()
    rejection = json.dumps(
        {
            "error": {
                "message": "Rate limit reached",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
        }
    ).encode()
    state = {"mode": "ok", "reject": 0.0, "capacity": 0, "latency": args.latency}
    counts = {"requests": 0, "rejected": 0, "in_flight": 0, "max_in_flight": 0}
    with_logprobs: dict[int, bytes] = {}  # top_logprobs -> reply, built on first use

    async def chat(request: web.Request) -> web.Response:
        body = json.loads(await request.read())  # a real server parses the request too
        assert body["messages"] and body["response_format"]["type"] == "json_schema"
        counts["requests"] += 1
        if (state["mode"] == "storm" and rng.random() < state["reject"]) or (
            state["mode"] == "overload" and counts["in_flight"] >= state["capacity"]
        ):
            counts["rejected"] += 1
            return web.Response(
                status=429,
                body=rejection,
                content_type="application/json",
                headers={"retry-after-ms": "100", "retry-after": "1"},
            )
        counts["in_flight"] += 1
        counts["max_in_flight"] = max(counts["max_in_flight"], counts["in_flight"])
        try:
            await asyncio.sleep(state["latency"])
        finally:
            counts["in_flight"] -= 1
        if body.get("logprobs"):
            top = int(body.get("top_logprobs") or 0)
            if top not in with_logprobs:
                with_logprobs[top] = logprob_reply(top)
            return web.Response(body=with_logprobs[top], content_type="application/json")
        return web.Response(body=reply, content_type="application/json")

    async def control(request: web.Request) -> web.Response:
        update = await request.json()
        state.update(update)
        snapshot = dict(counts)
        counts.update(requests=0, rejected=0, max_in_flight=0)
        return web.json_response(snapshot)

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        app.router.add_post("/control", control)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(port, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def serve_h2(args: argparse.Namespace) -> None:
    """The same answers from hypercorn (speaks HTTP/1.1 and h2c with prior knowledge)."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    reply = json.dumps(
        {
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": json.dumps(VERDICT)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 420, "completion_tokens": 40},
        }
    ).encode()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while True:
            message = await receive()
            if not message.get("more_body"):
                break
        await asyncio.sleep(args.latency)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": reply})

    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.accesslog = None
    config.backlog = 4096
    config.keep_alive_max_requests = 1_000_000
    config.h2_max_concurrent_streams = 1000
    asyncio.run(hypercorn_serve(app, config))  # type: ignore[arg-type]


def control(base: str, **update: Any) -> dict[str, Any]:
    import urllib.request

    req = urllib.request.Request(
        base.replace("/v1", "/control"),
        data=json.dumps(update).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


# -- contenders (each in its own process) ----------------------------------------------------


def items(n: int, salt: str) -> tuple[list[str], list[str]]:
    prompts = [f"Question {i % 97}: what is {i % 13} + {i % 7}? Explain briefly." for i in range(n)]
    responses = [
        f"[{salt}] The answer is {i % 13 + i % 7}, because adding {i % 7} to {i % 13} gives it. ({i})"
        for i in range(n)
    ]
    return prompts, responses


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def wants_logprobs(args: argparse.Namespace) -> bool:
    """rftjudge asks for logprobs by default (scoring="auto"); the by-hand clients when told to."""
    return not args.no_logprobs if args.who == "rftjudge" else bool(args.logprobs)


def contender(args: argparse.Namespace) -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    run = {
        "rftjudge": setup_rftjudge,
        "openai": setup_openai,
        "litellm": setup_litellm,
        "aiohttp": setup_raw_aiohttp,
    }[args.who]

    async def main() -> dict[str, Any]:
        judge_batch, close = await run(args)
        warm_p, warm_r = items(args.concurrency, "warm")
        await judge_batch(warm_p, warm_r)
        prompts, responses = items(args.n, "timed")
        rss0 = rss_kib()
        profiler = None
        if args.profile_to:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        rewards = await judge_batch(prompts, responses)
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile_to)
        expected = EXPECTED_LP_REWARD if wants_logprobs(args) else EXPECTED_REWARD
        ok = sum(1 for r in rewards if r is not None and abs(r - expected) < 1e-9)
        extra = await close()
        return {
            "who": args.who,
            "n": args.n,
            "wall_s": wall,
            "cpu_s": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
            "ok": ok,
            "peak_rss_mib": r1.ru_maxrss / 1024,
            "rss_growth_mib": max(0, r1.ru_maxrss - rss0) / 1024,
            **extra,
        }

    print(json.dumps(asyncio.run(main())), flush=True)


async def setup_rftjudge(args: argparse.Namespace) -> Any:
    import httpx

    from rftjudge import Criterion, OpenAIClient, RateLimits, RetryPolicy, RubricJudge

    http_client = None
    if args.http2:  # h2c with prior knowledge: the loopback server has no TLS to negotiate h2
        http_client = httpx.AsyncClient(
            http1=False,
            http2=True,
            limits=httpx.Limits(max_connections=args.concurrency),
            timeout=60,
        )
    client = OpenAIClient(
        MODEL,
        base_url=args.base_url,
        max_concurrency=args.concurrency,
        limits=RateLimits(adaptive=not args.no_adaptive),
        retry_policy=RetryPolicy(max_retries=12, backoff_max=2.0),
        http_client=http_client,
        logprobs=False if args.no_logprobs else None,
    )
    judge = RubricJudge(
        client,
        criteria=[Criterion(name=n, description=d, weight=w) for n, d, w in CRITERIA],
        scale=(1, 5),
    )

    async def close() -> dict[str, Any]:
        stats = client.stats
        await client.aclose()
        if http_client is not None:
            await http_client.aclose()
        return {"retries": stats.retries, "final_concurrency": client._limiter.limit}

    return judge.areward_batch, close


def _by_hand_parts() -> tuple[Any, dict[str, Any], str, str]:
    """What someone writing the judge by hand keeps: a pydantic model, the schema, the prompt text.

    The prompt is rftjudge's rendered rubric with placeholders, so both send the same bytes.
    """
    from pydantic import BaseModel, Field

    from rftjudge import Criterion, FunctionClient, RubricJudge

    class Scores(BaseModel):
        correctness: int = Field(ge=1, le=5)
        helpfulness: int = Field(ge=1, le=5)
        tone: int = Field(ge=1, le=5)

    class Verdict(BaseModel):
        rationale: str = ""
        scores: Scores

    template = RubricJudge(
        FunctionClient(lambda r: ""),
        criteria=[Criterion(name=n, description=d, weight=w) for n, d, w in CRITERIA],
    )
    system, user = template.render("@@PROMPT@@", "@@RESPONSE@@", None)
    return Verdict, template.output_schema, system.content, user.content


def _score(verdict: Any) -> float:
    weights = {n: w for n, _, w in CRITERIA}
    values = verdict.scores.model_dump()
    return sum(weights[k] * (v - 1) / 4 for k, v in values.items()) / sum(weights.values())


def _expected_score(tokens: Any) -> float:
    """By hand: the probability-weighted score at each digit written right after a JSON key."""
    weights = {n: w for n, _, w in CRITERIA}
    text, total = "", 0.0
    for token in tokens:
        key = re.search(r'"(\w+)":\s*$', text) if token.token.strip().isdigit() else None
        if key is not None and key.group(1) in weights:
            probs = {
                int(t.token.strip()): math.exp(t.logprob)
                for t in token.top_logprobs
                if t.token.strip() in ("1", "2", "3", "4", "5")
            }
            mean = sum(v * p for v, p in probs.items()) / sum(probs.values())
            total += weights[key.group(1)] * (mean - 1) / 4
        text += token.token
    return total / sum(weights.values())


async def setup_openai(args: argparse.Namespace) -> Any:
    from openai import AsyncOpenAI

    verdict_model, schema, system, user = _by_hand_parts()
    client = AsyncOpenAI(base_url=args.base_url, api_key="sk-bench", max_retries=12)
    semaphore = asyncio.Semaphore(args.concurrency)
    response_format: Any = {
        "type": "json_schema",
        "json_schema": {"name": "verdict", "strict": True, "schema": schema},
    }

    extra: dict[str, Any] = {"logprobs": True, "top_logprobs": 20} if args.logprobs else {}

    async def one(prompt: str, response: str) -> float | None:
        messages: Any = [
            {"role": "system", "content": system},
            {
                "role": "user",
                "content": user.replace("@@PROMPT@@", prompt).replace("@@RESPONSE@@", response),
            },
        ]
        try:
            async with semaphore:
                out = await client.chat.completions.create(
                    model=MODEL,
                    messages=messages,
                    temperature=0.0,
                    max_tokens=1024,
                    response_format=response_format,
                    **extra,
                )
            choice = out.choices[0]
            verdict = verdict_model.model_validate_json(choice.message.content or "")
            if args.logprobs:
                return _expected_score(choice.logprobs.content)  # type: ignore[union-attr]
            return _score(verdict)
        except Exception:
            return None

    async def batch(prompts: list[str], responses: list[str]) -> list[float | None]:
        return await asyncio.gather(*(one(p, r) for p, r in zip(prompts, responses, strict=True)))

    async def close() -> dict[str, Any]:
        await client.close()
        return {}

    return batch, close


async def setup_raw_aiohttp(args: argparse.Namespace) -> Any:
    """The floor on this machine: bare aiohttp posting a prebuilt body, reading the JSON back.

    No judge at all (no prompt, no validation): what any client must at least spend here.
    """
    import aiohttp

    _, schema, system, user = _by_hand_parts()
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.concurrency))
    semaphore = asyncio.Semaphore(args.concurrency)
    url = args.base_url + "/chat/completions"
    extra: dict[str, Any] = {"logprobs": True, "top_logprobs": 20} if args.logprobs else {}
    expected = EXPECTED_LP_REWARD if args.logprobs else EXPECTED_REWARD
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "verdict", "strict": True, "schema": schema},
    }

    async def one(prompt: str, response: str) -> float | None:
        body = {
            "model": MODEL,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user.replace("@@PROMPT@@", prompt)},
            ],
            "response_format": response_format,
            **extra,
        }
        async with semaphore, session.post(url, json=body) as reply:
            await reply.json()
        return expected

    async def batch(prompts: list[str], responses: list[str]) -> list[float | None]:
        return await asyncio.gather(*(one(p, r) for p, r in zip(prompts, responses, strict=True)))

    async def close() -> dict[str, Any]:
        await session.close()
        return {}

    return batch, close


async def setup_litellm(args: argparse.Namespace) -> Any:
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    verdict_model, schema, system, user = _by_hand_parts()
    semaphore = asyncio.Semaphore(args.concurrency)
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "verdict", "strict": True, "schema": schema},
    }

    async def one(prompt: str, response: str) -> float | None:
        messages = [
            {"role": "system", "content": system},
            {
                "role": "user",
                "content": user.replace("@@PROMPT@@", prompt).replace("@@RESPONSE@@", response),
            },
        ]
        try:
            async with semaphore:
                out = await litellm.acompletion(
                    model=f"openai/{MODEL}",
                    api_base=args.base_url,
                    api_key="sk-bench",
                    messages=messages,
                    temperature=0.0,
                    max_tokens=1024,
                    response_format=response_format,
                    num_retries=12,
                )
            return _score(verdict_model.model_validate_json(out.choices[0].message.content or ""))
        except Exception:
            return None

    async def batch(prompts: list[str], responses: list[str]) -> list[float | None]:
        return await asyncio.gather(*(one(p, r) for p, r in zip(prompts, responses, strict=True)))

    async def close() -> dict[str, Any]:
        return {}

    return batch, close


# -- the driver ------------------------------------------------------------------------------


def run_contender(who: str, base: str, n: int, concurrency: int, **flags: Any) -> dict[str, Any]:
    src = flags.pop("src", None) or str(ROOT / "src")  # another tree's rftjudge (a baseline)
    cmd = [
        sys.executable,
        __file__,
        "_run",
        who,
        "--base-url",
        base,
        "--n",
        str(n),
        "--concurrency",
        str(concurrency),
    ]
    for flag, value in flags.items():
        if value is True:
            cmd.append("--" + flag.replace("_", "-"))
        elif value:
            cmd += ["--" + flag.replace("_", "-"), str(value)]
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONPATH": src}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"{who} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def start_server(kind: str, latency: float) -> tuple[subprocess.Popen[str], str]:
    if kind == "h2":
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen(
            [sys.executable, __file__, "_serve_h2", "--latency", str(latency), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        return proc, f"http://127.0.0.1:{port}/v1"
    proc = subprocess.Popen(
        [sys.executable, __file__, "_serve", "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/v1"


def import_time(repeats: int) -> float:
    totals = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import rftjudge"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )
        line = [ln for ln in out.stderr.splitlines() if ln.rstrip().endswith("| rftjudge")][-1]
        totals.append(int(line.split("|")[1]) / 1e6)
    return statistics.median(totals)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import aiohttp
    import httpx

    versions = [
        f"Python {platform.python_version()}",
        f"httpx {httpx.__version__}",
        f"aiohttp {aiohttp.__version__}",
    ]
    for name in ("openai", "litellm", "httpx_aiohttp", "pydantic"):
        try:
            from importlib.metadata import version

            versions.append(f"{name} {version(name.replace('_', '-'))}")
        except Exception:
            pass
    return f"{os.cpu_count()} x {cpu}, {platform.system()} {platform.release()}; " + ", ".join(
        versions
    )


def median_run(who: str, base: str, n: int, c: int, rounds: int, **flags: Any) -> dict[str, Any]:
    runs = [run_contender(who, base, n, c, **flags) for _ in range(rounds)]
    runs.sort(key=lambda r: r["wall_s"])
    best = dict(runs[len(runs) // 2])
    best["cpu_s"] = statistics.median(r["cpu_s"] for r in runs)
    return best


def drive(args: argparse.Namespace) -> None:
    rounds = 1 if args.quick else args.rounds
    sections = set(args.sections.split(","))
    latency, c, n = 0.05, 64, 2000
    ideal = math.ceil(n / c) * latency
    results: dict[str, Any] = {"machine": machine(), "latency_s": latency, "concurrency": c}
    lines: list[str] = [
        f"machine: {results['machine']}",
        "load average at start (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        "",
    ]
    print("\n".join(lines), flush=True)

    def emit(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    server, base = start_server("h1", latency)
    try:
        if "main" in sections:
            results["main"] = section_main(base, n, c, rounds, ideal, emit)
        if "logprobs" in sections:
            results["logprobs"] = section_logprobs(
                base, n, c, rounds, ideal, emit, args.baseline_src
            )
        if "faults" in sections:
            results["faults"] = section_faults(base, n, c, 1000 if args.quick else n, emit)
        if "scaling" in sections:
            results["scaling"] = section_scaling(base, c, latency, rounds, emit)
        if args.profile:
            section_profile(base, n, c, emit)
            section_profile(base, n, c, emit, no_logprobs=True)
    finally:
        server.terminate()
        server.wait(10)
    if "http2" in sections:
        results["http2"] = section_http2(n, c, latency, rounds, ideal, emit)
    if "import" in sections:
        seconds = import_time(5)
        results["import_s"] = seconds
        emit(
            f"## import rftjudge: {seconds:.3f} s cumulative (-X importtime, median of 5); "
            f"{seconds / 0.3:.2f} of the 0.3 s target"
        )
    emit("load average at end (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def section_main(base: str, n: int, c: int, rounds: int, ideal: float, emit: Any) -> Any:
    """1-3: the three contenders, interleaved round by round so drift hits all of them alike."""
    per: dict[str, list[dict[str, Any]]] = {
        "rftjudge": [],
        "openai": [],
        "litellm": [],
        "aiohttp": [],
    }
    for _ in range(rounds):
        for who in per:
            control(base, mode="ok")
            # the bare-verdict workload: rftjudge without logprobs, like the by-hand clients
            per[who].append(run_contender(who, base, n, c, no_logprobs=who == "rftjudge"))
    main: dict[str, dict[str, Any]] = {}
    for who, runs in per.items():
        runs.sort(key=lambda r: r["wall_s"])
        main[who] = dict(runs[len(runs) // 2])
        main[who]["cpu_s"] = statistics.median(r["cpu_s"] for r in runs)
        assert main[who]["ok"] == n, (who, main[who])
    base_cpu = main["openai"]["cpu_s"] / n
    emit(f"## N={n}, 50 ms latency, concurrency {c} (ideal {ideal:.2f} s; median of {rounds})")
    emit(
        "| contender | wall / ideal | wall vs openai SDK | wall vs LiteLLM | wall vs bare aiohttp "
        "| client CPU per judgment | CPU vs openai SDK | CPU vs LiteLLM |"
    )
    emit("|---|---|---|---|---|---|---|---|")
    labels = {
        "rftjudge": "rftjudge",
        "openai": "openai SDK by hand",
        "litellm": "LiteLLM by hand",
        "aiohttp": "bare aiohttp, no judge (floor)",
    }
    for who, label in labels.items():
        r = main[who]
        cpu = r["cpu_s"] / n
        emit(
            f"| {label} | {r['wall_s'] / ideal:.2f} "
            f"| {r['wall_s'] / main['openai']['wall_s']:.2f} "
            f"| {r['wall_s'] / main['litellm']['wall_s']:.2f} "
            f"| {r['wall_s'] / main['aiohttp']['wall_s']:.2f} | {cpu * 1000:.3f} ms "
            f"| {cpu / base_cpu:.2f} | {cpu / (main['litellm']['cpu_s'] / n):.2f} |"
        )
    emit()
    return main


LOGPROB_CONTENDERS: dict[str, tuple[str, dict[str, Any], str]] = {
    "default": ("rftjudge", {}, "rftjudge default (scoring=auto: expected scores from logprobs)"),
    "sdk": ("openai", {"logprobs": True}, "openai SDK by hand, same requests (top-20 logprobs)"),
    "floor": ("aiohttp", {"logprobs": True}, "bare aiohttp, top-20 logprobs, no judge (floor)"),
    "nolp": ("rftjudge", {"no_logprobs": True}, "rftjudge logprobs=False (bare verdict)"),
    "nolp_floor": ("aiohttp", {}, "bare aiohttp, bare verdict, no judge (floor)"),
}


def section_logprobs(
    base: str, n: int, c: int, rounds: int, ideal: float, emit: Any, baseline_src: str = ""
) -> Any:
    """The default path: logprob-bearing replies (top-20 per generated token, OpenAI/vLLM shape).

    Each row's wall time is compared with the floor of its own workload (bare aiohttp posting the
    same body and reading the same reply), and its CPU with the openai SDK's on the same replies.
    """
    contenders = dict(LOGPROB_CONTENDERS)
    if baseline_src:  # the same two rftjudge rows from another tree, e.g. before a change
        contenders["base_default"] = ("rftjudge", {"src": baseline_src}, "  the same, --baseline-src")
        contenders["base_nolp"] = (
            "rftjudge",
            {"src": baseline_src, "no_logprobs": True},
            "  logprobs=False, --baseline-src",
        )
    per: dict[str, list[dict[str, Any]]] = {key: [] for key in contenders}
    for _ in range(rounds):
        for key, (who, flags, _) in contenders.items():
            control(base, mode="ok")
            per[key].append(run_contender(who, base, n, c, **dict(flags)))
    out: dict[str, dict[str, Any]] = {}
    for key, runs in per.items():
        runs.sort(key=lambda r: r["wall_s"])
        out[key] = dict(runs[len(runs) // 2])
        out[key]["cpu_s"] = statistics.median(r["cpu_s"] for r in runs)
        assert out[key]["ok"] == n, (key, out[key])
    size = len(logprob_reply(20))
    emit(
        f"## Default path: logprob-bearing replies ({size / 1024:.1f} KB, top-20 per token), "
        f"N={n}, concurrency {c} (ideal {ideal:.2f} s; median of {rounds})"
    )
    emit(
        "| contender | wall / ideal | wall / its floor | client CPU per judgment "
        "| CPU vs openai SDK | CPU above its floor |"
    )
    emit("|---|---|---|---|---|---|")
    sdk_cpu = out["sdk"]["cpu_s"] / n
    for key, (_, _, label) in contenders.items():
        r = out[key]
        floor = out["nolp_floor" if "nolp" in key else "floor"]
        cpu = r["cpu_s"] / n
        emit(
            f"| {label} | {r['wall_s'] / ideal:.2f} | {r['wall_s'] / floor['wall_s']:.2f} "
            f"| {cpu * 1000:.3f} ms | {cpu / sdk_cpu:.2f} "
            f"| {(cpu - floor['cpu_s'] / n) * 1000:.3f} ms |"
        )
    emit()
    return out


def section_faults(base: str, n: int, c: int, storm_n: int, emit: Any) -> Any:
    """4: a 30 % random 429 storm and an overload, against a no-fault run of the same size."""
    control(base, mode="ok")
    calm = run_contender("rftjudge", base, storm_n, c)
    calm_requests = control(base, mode="ok")["requests"]
    emit(
        f"## Faults, N={storm_n}, concurrency {c} (against the no-fault rftjudge run: "
        f"{calm['wall_s']:.2f} s, {calm_requests} requests)"
    )
    emit(
        "| scenario | contender | wall / no-fault | requests / no-fault | rejected (429) "
        "| max accepted in flight | final concurrency |"
    )
    emit("|---|---|---|---|---|---|---|")
    out = []
    for scenario, update in (
        ("storm: 30 % random 429", {"mode": "storm", "reject": 0.3}),
        ("overload: 429 beyond 24 in flight", {"mode": "overload", "capacity": 24}),
    ):
        for who, flags in (
            ("rftjudge", {}),
            ("rftjudge", {"no_adaptive": True}),
            ("openai", {}),
        ):
            control(base, mode="ok")
            control(base, **update)
            r = run_contender(who, base, storm_n, c, **flags)
            counts = control(base, mode="ok")
            label = who + (" (AIMD off)" if flags else (" (AIMD)" if who == "rftjudge" else " SDK"))
            emit(
                f"| {scenario} | {label} | {r['wall_s'] / calm['wall_s']:.2f} "
                f"| {counts['requests'] / calm_requests:.2f} | {counts['rejected']} "
                f"| {counts['max_in_flight']} | {r.get('final_concurrency', '-')} |"
            )
            out.append({"scenario": scenario, "who": label, **r, **counts})
    emit()
    return {"calm": calm, "calm_requests": calm_requests, "runs": out}


def section_scaling(base: str, c: int, latency: float, rounds: int, emit: Any) -> Any:
    """6: N = 500, 2000, 8000."""
    emit(f"## Scaling (rftjudge, concurrency {c}, 50 ms; median of {rounds})")
    emit(
        "| N | wall / ideal | CPU per judgment | CPU per judgment / N=500's "
        "| RSS growth | RSS growth per judgment / N=500's |"
    )
    emit("|---|---|---|---|---|---|")
    out = []
    first: dict[str, Any] | None = None
    for size in (500, 2000, 8000):
        control(base, mode="ok")
        r = median_run("rftjudge", base, size, c, rounds)
        ideal_n = math.ceil(size / c) * latency
        first = first or r
        per_item = r["rss_growth_mib"] / size
        first_item = first["rss_growth_mib"] / first["n"]
        emit(
            f"| {size} | {r['wall_s'] / ideal_n:.2f} | {r['cpu_s'] / size * 1000:.3f} ms "
            f"| {(r['cpu_s'] / size) / (first['cpu_s'] / first['n']):.2f} "
            f"| {r['rss_growth_mib']:.1f} MiB "
            f"| {per_item / first_item if first_item else float('nan'):.2f} |"
        )
        out.append(r)
    emit()
    return out


def section_profile(base: str, n: int, c: int, emit: Any, no_logprobs: bool = False) -> None:
    import io
    import pstats

    prof = str(HERE / "profile_rftjudge.prof")
    control(base, mode="ok")
    run_contender("rftjudge", base, n, c, profile_to=prof, no_logprobs=no_logprobs)
    what = "logprobs=False" if no_logprobs else "default, logprob-bearing replies"
    emit(f"## cProfile of one rftjudge run ({what}; top 25 by own time)")
    emit("```")
    stream = io.StringIO()
    pstats.Stats(prof, stream=stream).sort_stats("tottime").print_stats(25)
    emit("\n".join(ln for ln in stream.getvalue().splitlines()[6:] if ln.strip()))
    emit("```")
    emit()
    os.unlink(prof)


def section_http2(n: int, c: int, latency: float, rounds: int, ideal: float, emit: Any) -> Any:
    """7: HTTP/2 (h2c) vs HTTP/1.1 on one hypercorn server."""
    try:
        import h2  # noqa: F401
        import hypercorn  # noqa: F401
    except ImportError:
        emit("## HTTP/2: skipped (pip install hypercorn h2)")
        return None
    h2_server, h2_base = start_server("h2", latency)
    try:
        h1 = median_run("rftjudge", h2_base, n, c, rounds)
        h2r = median_run("rftjudge", h2_base, n, c, rounds, http2=True)
    finally:
        h2_server.terminate()
        h2_server.wait(10)
    emit(f"## HTTP/2 vs HTTP/1.1, rftjudge, hypercorn server, N={n}, concurrency {c}")
    emit(
        "| transport | wall / ideal | wall vs HTTP/1.1 | client CPU per judgment | CPU vs HTTP/1.1 |"
    )
    emit("|---|---|---|---|---|")
    for label, r in (("HTTP/1.1 (aiohttp, default)", h1), ("HTTP/2 h2c (httpx + h2)", h2r)):
        emit(
            f"| {label} | {r['wall_s'] / ideal:.2f} | {r['wall_s'] / h1['wall_s']:.2f} "
            f"| {r['cpu_s'] / n * 1000:.3f} ms | {r['cpu_s'] / h1['cpu_s']:.2f} |"
        )
    emit()
    return {"h1": h1, "h2": h2r}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd")
    p_serve = sub.add_parser("_serve")
    p_serve.add_argument("--latency", type=float, default=0.05)
    p_h2 = sub.add_parser("_serve_h2")
    p_h2.add_argument("--latency", type=float, default=0.05)
    p_h2.add_argument("--port", type=int, required=True)
    p_run = sub.add_parser("_run")
    p_run.add_argument("who", choices=["rftjudge", "openai", "litellm", "aiohttp"])
    p_run.add_argument("--base-url", required=True)
    p_run.add_argument("--n", type=int, default=2000)
    p_run.add_argument("--concurrency", type=int, default=64)
    p_run.add_argument("--no-adaptive", action="store_true")
    p_run.add_argument("--http2", action="store_true")
    p_run.add_argument("--no-logprobs", action="store_true", help="rftjudge: logprobs=False")
    p_run.add_argument("--logprobs", action="store_true", help="by hand: ask for top-20 logprobs")
    p_run.add_argument("--profile-to", default="")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--baseline-src",
        default="",
        help="logprobs section: also run rftjudge from this src/ folder (e.g. a checkout of main)",
    )
    parser.add_argument("--json", default="", help="also write every raw figure to this file")
    parser.add_argument(
        "--sections",
        default="main,logprobs,faults,scaling,http2,import",
        help="comma-separated subset of: main, logprobs, faults, scaling, http2, import",
    )
    args = parser.parse_args()
    if args.cmd == "_serve":
        serve(args)
    elif args.cmd == "_serve_h2":
        serve_h2(args)
    elif args.cmd == "_run":
        contender(args)
    else:
        drive(args)


if __name__ == "__main__":
    main()
