"""Many trainer processes, several judge replicas: per-process limits against one shared budget.

Run from the repository root (needs ``redis-server`` on PATH and ``pip install -e ".[redis]"``)::

    python benchmarks/scale_out.py                 # 3 rounds of every scenario, ~4 minutes
    python benchmarks/scale_out.py --rounds 1 --json out.json

Setup: 4 loopback judge replicas (one aiohttp process, four ports) that each answer after a fixed
latency and accept at most 16 requests at once — the 17th gets a 429 with ``retry-after-ms: 100``,
as an overloaded vLLM behind a queue limit or an API tier would. 8 client processes (GPU ranks)
each judge their own batch with ``RubricJudge(OpenAIClient(model, base_url=[4 replicas]))``; the
batches are skewed (0.5× to 1.5× the mean, as rollout lengths vary), start together on a signal,
and the wall time runs from that signal to the last process's end. Ideal: every replica busy at
16 from start to end, ``ceil(total / 64) × latency``.

Scenarios:

- **(a1) per-process, sized alone**: each process ``max_concurrency=64`` (what the replicas take
  together, as if it were the only process), AIMD on — the usual first configuration;
- **(a2) per-process, split**: ``max_concurrency=8`` (64 / 8 processes, the README's static split);
- **(b) shared budget**: ``limits=RateLimits(backend="redis://...", key=..., max_in_flight=64)``
  with ``max_concurrency=64``: the 64 slots are shared by all processes, 16 per replica (the URL
  list gives each replica its own key with an equal share).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from throughput import CRITERIA, EXPECTED_REWARD, MODEL, VERDICT, control, items  # noqa: E402

REPLICAS, CAPACITY, PROCESSES = 4, 16, 8
SCENARIOS = {
    "a1": ("(a1) per-process limits, each sized alone (64)", {"concurrency": 64}),
    "a2": ("(a2) per-process limits, split 64 / 8", {"concurrency": 8}),
    "b": ("(b) shared Redis budget of 64", {"concurrency": 64, "shared": 64}),
}


# -- the replicas (one process, four ports) ---------------------------------------------------


def serve(args: argparse.Namespace) -> None:
    from aiohttp import web

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
    busy = json.dumps({"error": {"message": "too many requests", "code": "busy"}}).encode()
    counts = [{"accepted": 0, "rejected": 0, "in_flight": 0, "max_in_flight": 0} for _ in range(4)]

    def chat(replica: int) -> Any:
        mine = counts[replica]

        async def handle(request: web.Request) -> web.Response:
            await request.read()
            if mine["in_flight"] >= args.capacity:
                mine["rejected"] += 1
                return web.Response(
                    status=429,
                    body=busy,
                    content_type="application/json",
                    headers={"retry-after-ms": "100"},
                )
            mine["accepted"] += 1
            mine["in_flight"] += 1
            mine["max_in_flight"] = max(mine["max_in_flight"], mine["in_flight"])
            try:
                await asyncio.sleep(args.latency)
            finally:
                mine["in_flight"] -= 1
            return web.Response(body=reply, content_type="application/json")

        return handle

    async def control_handler(request: web.Request) -> web.Response:
        await request.read()
        snapshot = [dict(c) for c in counts]
        for c in counts:
            c.update(accepted=0, rejected=0, max_in_flight=c["in_flight"])
        return web.json_response(snapshot)

    async def main() -> None:
        ports = []
        for replica in range(REPLICAS):
            app = web.Application()
            app.router.add_post("/v1/chat/completions", chat(replica))
            app.router.add_post("/control", control_handler)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
            await site.start()
            ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        print(json.dumps(ports), flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# -- one client process (a GPU rank) ----------------------------------------------------------


def client(args: argparse.Namespace) -> None:
    from rftjudge import Criterion, OpenAIClient, RateLimits, RetryPolicy, RubricJudge

    cfg = json.loads(args.config)
    limits = RateLimits()
    if cfg.get("shared"):
        limits = RateLimits(backend=cfg["redis"], key=cfg["key"], max_in_flight=cfg["shared"])
    judge_client = OpenAIClient(
        MODEL,
        base_url=cfg["urls"],
        max_concurrency=cfg["concurrency"],
        limits=limits,
        retry_policy=RetryPolicy(max_retries=20, backoff_max=2.0),
        timeout=120,
    )
    judge = RubricJudge(
        judge_client,
        criteria=[Criterion(name=n, description=d, weight=w) for n, d, w in CRITERIA],
        scale=(1, 5),
    )

    async def main() -> dict[str, Any]:
        warm_p, warm_r = items(REPLICAS, f"warm-{cfg['rank']}")
        await judge.areward_batch(warm_p, warm_r)  # open connections to every replica
        prompts, responses = items(cfg["n"], f"rank-{cfg['rank']}")
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        started = time.perf_counter()
        rewards = await judge.areward_batch(prompts, responses)
        wall = time.perf_counter() - started
        stats = judge_client.stats
        await judge_client.aclose()
        return {
            "wall_s": wall,
            "ok": sum(1 for r in rewards if r is not None and abs(r - EXPECTED_REWARD) < 1e-9),
            "failed": stats.failed,
            "rate_limited": stats.rate_limited,
            "retries": stats.retries,
        }

    print(json.dumps(asyncio.run(main())), flush=True)


# -- the driver -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH (apt-get install redis-server)")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def workloads(mean: int) -> list[int]:
    """Skewed batches: 0.5x .. 1.5x the mean, summing to PROCESSES x mean."""
    return [round(mean * (0.5 + rank / (PROCESSES - 1))) for rank in range(PROCESSES)]


def run_scenario(
    name: str, urls: list[str], redis_url: str, mean: int, latency: float
) -> dict[str, Any]:
    settings = SCENARIOS[name][1]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    key = f"bench-{uuid.uuid4().hex[:8]}"
    procs = []
    for rank, n in enumerate(workloads(mean)):
        cfg = {"rank": rank, "n": n, "urls": urls, "redis": redis_url, "key": key, **settings}
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "_client", "--config", json.dumps(cfg)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"client failed to start: {line!r}")
    control(urls[0])  # reset the replicas' counters after the warm-up
    started = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=900)
        results.append(json.loads(out.strip().splitlines()[-1]))
    wall = time.perf_counter() - started
    replicas = control(urls[0])
    total = sum(workloads(mean))
    ideal = math.ceil(total / (REPLICAS * CAPACITY)) * latency
    accepted = [r["accepted"] for r in replicas]
    return {
        "scenario": name,
        "wall_s": wall,
        "wall_over_ideal": wall / ideal,
        "ideal_s": ideal,
        "ok": sum(r["ok"] for r in results),
        "total": total,
        "failed": sum(r["failed"] for r in results),
        "rejected_429": sum(r["rejected"] for r in replicas),
        "accepted_per_replica": accepted,
        "replica_spread": (max(accepted) - min(accepted)) / statistics.mean(accepted),
        "max_in_flight_per_replica": [r["max_in_flight"] for r in replicas],
        "client_wall_s": [round(r["wall_s"], 2) for r in results],
    }


def drive(args: argparse.Namespace) -> None:
    server = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "_serve",
            "--latency",
            str(args.latency),
            "--capacity",
            str(CAPACITY),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    ports = json.loads(server.stdout.readline())
    urls = [f"http://127.0.0.1:{p}/v1" for p in ports]
    redis_proc, redis_url = start_redis()
    print(
        f"{os.cpu_count()} CPUs; load average at start: "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        flush=True,
    )
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SCENARIOS}
    try:
        for _ in range(args.rounds):  # interleaved, so drift hits every scenario alike
            for name in SCENARIOS:
                result = run_scenario(name, urls, redis_url, args.mean, args.latency)
                runs[name].append(result)
                print(json.dumps(result), flush=True)
    finally:
        server.terminate()
        redis_proc.terminate()
        server.wait(10)
        redis_proc.wait(10)
    total = sum(workloads(args.mean))
    ideal = math.ceil(total / (REPLICAS * CAPACITY)) * args.latency
    print(
        f"\n{PROCESSES} processes, {REPLICAS} replicas x {CAPACITY} concurrent, {total} judgments "
        f"(skewed 0.5x-1.5x per process), {args.latency * 1000:.0f} ms latency; ideal "
        f"{ideal:.2f} s; median of {args.rounds} (by wall time)\n"
    )
    print(
        "| scenario | wall / ideal | 429s received | requests per replica | replica spread "
        "| max in flight per replica | failed |"
    )
    print("|---|---|---|---|---|---|---|")
    summary = {}
    for name, results in runs.items():
        results.sort(key=lambda r: r["wall_s"])
        mid = results[len(results) // 2]
        summary[name] = mid
        print(
            f"| {SCENARIOS[name][0]} | {mid['wall_over_ideal']:.2f} | {mid['rejected_429']} | "
            f"{' / '.join(map(str, mid['accepted_per_replica']))} | "
            f"{mid['replica_spread'] * 100:.1f} % | "
            f"{' / '.join(map(str, mid['max_in_flight_per_replica']))} | {mid['failed']} |"
        )
    print("load average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    if args.json:
        Path(args.json).write_text(json.dumps({"median": summary, "runs": runs}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd")
    p_serve = sub.add_parser("_serve")
    p_serve.add_argument("--latency", type=float, required=True)
    p_serve.add_argument("--capacity", type=int, required=True)
    p_client = sub.add_parser("_client")
    p_client.add_argument("--config", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mean", type=int, default=250, help="judgments per process, on average")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per judgment")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    if args.cmd == "_serve":
        serve(args)
    elif args.cmd == "_client":
        client(args)
    else:
        drive(args)


if __name__ == "__main__":
    main()
