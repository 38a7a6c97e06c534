"""Exact reads and the server's prefix cache, on the real local judge (llama.cpp's server).

An exact read continues the verdict just written (prefill + constrained choice). llama.cpp's server
keeps its prefix cache per slot: a read that lands in the slot holding its verdict evaluates a
handful of tokens; one that lands elsewhere evaluates the whole prompt again (~600 tokens, ~10 ms
each for SmolLM2-135M on one CPU thread). This runs the default rubric judge (two criteria,
``server="llamacpp"``) on GRPO groups of 8 from ``data/groups.jsonl`` under four configurations,
interleaved group by group, against one ``LocalJudgeServer`` (``--slots`` slots):

- ``exact, pinned slots, token reads`` — the default of ``local_client``: the client leases each
  verdict a slot (``id_slot``) that its reads use and nobody else does until they are done
  (``OpenAIClient(slots=)``), and each read continues the verdict's own token ids
  (``/apply-template`` + ``/v1/completions``, see ``rftjudge.clients._llamacpp``);
- ``exact, server picks slots, token reads`` — the same reads, the slot left to the server
  (``slots=None``): a queued verdict may take the slot between a verdict and its reads;
- ``exact, server picks slots, text reads`` — as before this change: the reads prefill the
  verdict as chat text, which the server tokenizes differently from what it generated;
- ``no exact reads`` — expected scores from the verdict's own top logprobs, one request.

Per configuration, from the server's own ``timings`` of every response: prompt tokens evaluated
and reused (``prompt_n``, ``cache_n``) for verdicts and for reads, the share of all prompt tokens
reused, generated tokens, and wall time per judgment. Reward signal: Spearman between reward and
the known quality order (a 135M judge is close to noise; the column shows that a configuration
does not break the method).

    python benchmarks/slot_cache.py --groups 4 --slots 2

The first configuration to judge a group pays for the group's shared prompt (its first verdicts
find only the instructions cached): ``--groups`` should be a multiple of the four configurations,
so that each goes first equally often.
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
from server_timings import sent_and_timings  # noqa: E402

CONFIGS = (
    "exact, pinned slots, token reads (default)",
    "exact, server picks slots, token reads",
    "exact, server picks slots, text reads (before)",
    "no exact reads",
)


async def run(groups: list[dict[str, Any]], slots: int, max_tokens: int) -> dict[str, Any]:
    import httpx

    from rftjudge import Criterion, RubricJudge
    from rftjudge.app.local import LocalJudgeServer, local_client

    criteria = [
        Criterion(name="correct", description="Does it answer the question correctly?", weight=2),
        Criterion(name="concise", description="Is it short and to the point?"),
    ]
    out: dict[str, dict[str, Any]] = {
        name: {"wall": 0.0, "n": 0, "failed": 0, "rho": [], "verdict": [0, 0, 0], "read": [0, 0]}
        for name in CONFIGS
    }
    current = [CONFIGS[0]]

    async def count(response: httpx.Response) -> None:
        found = await sent_and_timings(response)
        if found is None:
            return
        sent, timings = found
        row = out[current[0]]
        if "grammar" in sent:  # a choice request: an exact read
            row["read"][0] += int(timings.get("prompt_n") or 0)
            row["read"][1] += int(timings.get("cache_n") or 0)
        else:
            row["verdict"][0] += int(timings.get("prompt_n") or 0)
            row["verdict"][1] += int(timings.get("cache_n") or 0)
            row["verdict"][2] += int(timings.get("predicted_n") or 0)

    with LocalJudgeServer(n_parallel=slots, api_key="bench") as server:
        http = httpx.AsyncClient(
            headers=server.headers, timeout=600, event_hooks={"response": [count]}
        )

        def client_for(name: str) -> Any:
            client = local_client(
                server.base_url,
                api_key=server.api_key,
                http_client=http,
                max_concurrency=slots,
                slots=slots if "pinned" in name else None,
            )
            client.token_reads = "text reads" not in name
            return client

        clients = {name: client_for(name) for name in CONFIGS}
        judges = {
            name: RubricJudge(
                clients[name],
                criteria=criteria,
                scale=(1, 5),
                max_tokens=max_tokens,
                exact=name != "no exact reads",
            )
            for name in CONFIGS
        }
        current[0] = "warm-up"
        out["warm-up"] = {"verdict": [0, 0, 0], "read": [0, 0]}
        await judges["no exact reads"].areward("Say hi.", "Hi.")  # the shared prefix, cached
        for index, group in enumerate(groups):
            quality = [-float(r) for r in group["ranks"]]
            turn = index % len(CONFIGS)  # each configuration first in turn: no order advantage
            for name in CONFIGS[turn:] + CONFIGS[:turn]:
                judge = judges[name]
                current[0] = name
                started = time.perf_counter()
                rewards = await judge.areward_batch(
                    [group["prompt"]] * len(group["completions"]),
                    group["completions"],
                    [group["reference"]] * len(group["completions"]),
                )
                row = out[name]
                row["wall"] += time.perf_counter() - started
                row["n"] += len(rewards)
                row["failed"] += sum(r is None for r in rewards)
                if None not in rewards:
                    row["rho"].append(
                        spearman([float(r) for r in rewards if r is not None], quality)
                    )
                print(f"  {name}: {row['n']} judged, {row['wall']:.0f} s", flush=True)
        for client in clients.values():
            await client.aclose()
        await http.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--slots", type=int, default=2, help="the server's slots (n_parallel)")
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args()
    groups = load_groups(args.groups)
    print("load average at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    out = asyncio.run(run(groups, args.slots, args.max_tokens))
    print("load average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    base = out["no exact reads"]["wall"]
    print(
        f"\n{len(groups)} groups of 8, SmolLM2-135M on llama.cpp's server, {args.slots} slots, "
        "two criteria; per judgment:"
    )
    print(
        "| configuration | verdict prompt tokens evaluated / reused | read prompt tokens "
        "evaluated / reused (reused share) | all prompt tokens reused | generated | wall s "
        "| wall vs no reads | Spearman | failed |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in CONFIGS:
        r = out[name]
        n = max(1, r["n"])
        ev, re_ = r["read"]
        share = f"{re_ / (ev + re_):.1%}" if ev + re_ else "-"
        total = ev + re_ + r["verdict"][0] + r["verdict"][1]
        overall = f"{(re_ + r['verdict'][1]) / total:.1%}" if total else "-"
        rho = f"{statistics.fmean(r['rho']):+.2f}" if r["rho"] else "-"
        print(
            f"| {name} | {r['verdict'][0] / n:.0f} / {r['verdict'][1] / n:.0f} "
            f"| {ev / n:.0f} / {re_ / n:.0f} ({share}) | {overall} | {r['verdict'][2] / n:.1f} "
            f"| {r['wall'] / n:.2f} | {r['wall'] / base:.2f} | {rho} | {r['failed']} |"
        )


if __name__ == "__main__":
    main()
