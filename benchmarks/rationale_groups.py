"""Where the listwise judge's rationale goes, on the real local judge: tokens and reward signal.

The companion of ``rationale.py`` (the rubric judge) for ``ListwiseJudge(rationale=...)``: the local
judge (``LocalJudgeServer``: llama.cpp's server through ``xllamacpp``, SmolLM2-135M, one slot) scores
whole GRPO groups of 8 from ``data/groups.jsonl`` (known quality order), one order per group
(``permutations=1``), expected scores from logprobs (no exact reads, so that every configuration
costs one request per group). Configurations interleaved group by group, each first in turn:
``before`` (default, maxLength 800), ``after``, ``none``. Per configuration: prompt and generated
tokens per group (the judge's usage), wall time per group, Spearman between reward and known
quality (mean over groups), failed groups. A 135M judge is close to noise on quality: the signal
column shows that a configuration does not break the method, not which judges better.

    python benchmarks/rationale_groups.py --groups 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from rationale import load_groups, spearman  # noqa: E402 - shared with rationale.py

CONFIGS = ("before", "after", "none")


async def run(groups: list[dict[str, Any]], max_tokens: int) -> dict[str, dict[str, Any]]:
    from rftjudge import ListwiseJudge
    from rftjudge.app.local import LocalJudgeServer, local_client

    out: dict[str, dict[str, Any]] = {
        name: {"wall": 0.0, "in": 0, "out": 0, "groups": 0, "failed": 0, "rho": []}
        for name in CONFIGS
    }
    with LocalJudgeServer(n_parallel=1, api_key="bench") as server:
        client = local_client(server.base_url, api_key=server.api_key, max_concurrency=1)
        judges = {
            name: ListwiseJudge(
                client,
                permutations=1,
                rationale=name,
                exact=False,
                max_tokens=max_tokens,
                max_reasks=0,
            )
            for name in CONFIGS
        }
        await judges["none"].ajudge_group("Say hi.", ["Hi.", "Hello."])  # warm the prefix cache
        for index, group in enumerate(groups):
            quality = [-float(r) for r in group["ranks"]]
            turn = index % len(CONFIGS)
            for name in CONFIGS[turn:] + CONFIGS[:turn]:
                judge = judges[name]
                before = judge.stats.usage
                started = time.perf_counter()
                results = await judge.ajudge_group(
                    group["prompt"], group["completions"], group["reference"]
                )
                row = out[name]
                row["wall"] += time.perf_counter() - started
                used = judge.stats.usage
                row["in"] += used.input_tokens - before.input_tokens
                row["out"] += used.output_tokens - before.output_tokens
                row["groups"] += 1
                if any(isinstance(r, BaseException) for r in results):
                    row["failed"] += 1
                else:
                    row["rho"].append(spearman([float(r) for r in results], quality))
                print(f"  {name}: {row['groups']} groups, {row['wall']:.0f} s", flush=True)
        await client.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=512)
    args = parser.parse_args()
    groups = load_groups(args.groups)
    print("load average at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    out = asyncio.run(run(groups, args.max_tokens))
    print("load average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    base = out["none"]["wall"] / max(1, out["none"]["groups"])
    print(f"\n{len(groups)} groups of 8, SmolLM2-135M, one slot, one order per group; per group:")
    print(
        "| rationale | prompt tokens | generated tokens | wall s | wall vs none "
        "| Spearman vs quality | failed groups |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in CONFIGS:
        r = out[name]
        n = max(1, r["groups"])
        rho = f"{statistics.fmean(r['rho']):+.2f}" if r["rho"] else "-"
        print(
            f"| {name} | {r['in'] / n:.0f} | {r['out'] / n:.0f} | {r['wall'] / n:.1f} "
            f"| {r['wall'] / n / base:.2f} | {rho} | {r['failed']} |"
        )


if __name__ == "__main__":
    main()
