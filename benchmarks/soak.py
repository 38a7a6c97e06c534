"""Memory over a long run: does the client's resident memory stay flat at the judge server's limit?

A reward function runs for days; a few hundred bytes kept per judgment is gigabytes by the end. This
soak judges batches of 512 against the loopback fake judge of ``throughput.py`` (its own process,
20 ms per answer, 5 % of requests rejected with a 429 and retried), every 4th batch on a fresh
``asyncio.run`` loop (as a script calling the sync API from new loops would), and samples the
process's RSS (``/proc/self/statm``) after every batch.

Run from the repository root::

    python benchmarks/soak.py --minutes 30          # the figure in benchmarks/README.md
    python benchmarks/soak.py --minutes 3 --json out.json

The verdict compares the RSS at the end with the RSS after warm-up (the first 10 % of the run, at
least 2 batches: pools, caches and the latency window fill there): flat means within 10 %.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import throughput  # noqa: E402 - the loopback fake judge and its items

BATCH = 512


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--faults", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--fresh-every", type=int, default=4, help="a fresh loop every Nth batch")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from rftjudge import Criterion, OpenAIClient, RateLimits, RetryPolicy, RubricJudge

    proc, base = throughput.start_server("h1", args.latency)
    try:
        throughput.control(base, mode="storm", reject=args.faults)
        client = OpenAIClient(
            throughput.MODEL,
            base_url=base,
            max_concurrency=args.concurrency,
            limits=RateLimits(adaptive=False),
            retry_policy=RetryPolicy(max_retries=8, backoff_max=0.2),
            logprobs=False,
        )
        judge = RubricJudge(
            client,
            criteria=[Criterion(name=n, description=d, weight=w) for n, d, w in throughput.CRITERIA],
        )
        samples: list[tuple[float, float, int]] = []  # (seconds, RSS MiB, judgments so far)
        failed = judged = batch = 0
        start = time.monotonic()
        deadline = start + args.minutes * 60

        async def one(salt: str) -> list[float | None]:
            prompts, responses = throughput.items(BATCH, salt)
            return await judge.areward_batch(prompts, responses)

        loop = asyncio.new_event_loop()
        while time.monotonic() < deadline:
            salt = f"b{batch}"
            if args.fresh_every and batch % args.fresh_every == args.fresh_every - 1:
                # a fresh loop, closed after the batch
                rewards = asyncio.run(one(salt))
            else:
                rewards = loop.run_until_complete(one(salt))
            batch += 1
            judged += len(rewards)
            failed += sum(r is None for r in rewards)
            samples.append((time.monotonic() - start, rss_mib(), judged))
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    finally:
        proc.kill()

    warm = samples[max(1, len(samples) // 10)]
    end = samples[-1]
    growth = (end[1] - warm[1]) / warm[1]
    per_judgment = (end[1] - warm[1]) * 2**20 / max(1, end[2] - warm[2])
    result: dict[str, Any] = {
        "minutes": args.minutes,
        "batches": batch,
        "judgments": judged,
        "failed": failed,
        "rss_after_warmup_mib": round(warm[1], 1),
        "rss_end_mib": round(end[1], 1),
        "rss_max_mib": round(max(s[1] for s in samples), 1),
        "growth": round(growth, 4),
        "bytes_per_judgment_after_warmup": round(per_judgment, 1),
        "flat": abs(growth) <= 0.10,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps({**result, "samples": samples}, indent=1))


if __name__ == "__main__":
    main()
