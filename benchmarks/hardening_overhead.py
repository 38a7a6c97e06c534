"""What issue 17's hardening costs per judgment on the hot path: guard, fence, verdict parsing.

Measures the CPU time of one whole judgment through ``RubricJudge.ajudge`` with an instant
in-process judge (no network: only rftjudge's own work is timed) and of its parts, for a 2,000-
and a 20,000-character response, with a structured-output verdict and a prompt-only one (prose and
a ``<think>`` block around the JSON). Each figure is the minimum over many repeats (the least
disturbed run), so a busy machine overstates nothing.

    python benchmarks/hardening_overhead.py                   # this checkout
    python benchmarks/hardening_overhead.py --against OLD/src # side by side with another source tree

With ``--against`` both trees run alternately in fresh processes, three rounds each, and the table
shows the best of the rounds for each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import timeit
from pathlib import Path

VERDICT = json.dumps(
    {"rationale": "The response is correct and complete. " * 5, "scores": {"quality": 4}}
)
PROSE = "<think>\nLet me check.\n</think>\nHere is my verdict:\n```json\n" + VERDICT + "\n```"


def measure() -> dict[str, float]:
    from pydantic import BaseModel

    from rftjudge import (
        ChatResponse,
        Criterion,
        FunctionClient,
        NonAnswerGuard,
        RubricJudge,
        Usage,
    )
    from rftjudge.parsing import parse_verdict
    from rftjudge.templates import fence

    class Scores(BaseModel):
        quality: int

    class Verdict(BaseModel):
        rationale: str
        scores: Scores

    guard = NonAnswerGuard()
    results: dict[str, float] = {}

    def best(name: str, fn: object, number: int) -> None:
        assert callable(fn)
        results[name] = min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e6

    for size in (2_000, 20_000):
        text = ("The answer is 4 because 2 + 2 = 4. " * (size // 30 + 1))[:size]
        best(f"guard {size // 1000}k", lambda t=text: guard.reason(t), 200)
        best(f"fence {size // 1000}k", lambda t=text: fence(t, "response"), 200)
    best("parse structured", lambda: parse_verdict(VERDICT, Verdict), 2000)
    best("parse prose+think", lambda: parse_verdict(PROSE, Verdict), 2000)

    for label, answer in (("structured", VERDICT), ("prose+think", PROSE)):
        client = FunctionClient(
            lambda request, a=answer: ChatResponse(a, finish_reason="stop", usage=Usage())
        )
        judge = RubricJudge(
            client, criteria=[Criterion(name="quality", description="Is it correct?")]
        )
        response = ("The answer is 4 because 2 + 2 = 4. " * 70)[:2_000]
        loop = asyncio.new_event_loop()

        def one(
            j: RubricJudge = judge, r: str = response, on: asyncio.AbstractEventLoop = loop
        ) -> None:
            on.run_until_complete(j.ajudge("What is 2 + 2?", r))

        best(f"judgment 2k, {label}", one, 300)
        loop.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", type=Path, help="another source tree (its src/ directory)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        print(json.dumps(measure()))
        return
    if args.against is None:
        for name, micros in measure().items():
            print(f"{name:28s} {micros:9.1f} µs")
        return
    here = Path(__file__).resolve().parents[1] / "src"
    trees = {"this": here, "against": args.against.resolve()}
    best: dict[str, dict[str, float]] = {k: {} for k in trees}
    for _ in range(3):
        for key, tree in trees.items():
            env = {**os.environ, "PYTHONPATH": str(tree)}
            out = subprocess.run(
                [sys.executable, __file__, "--json"], env=env, check=True, capture_output=True
            ).stdout
            for name, micros in json.loads(out).items():
                best[key][name] = min(micros, best[key].get(name, float("inf")))
    print(f"{'per call (µs, best of rounds)':28s} {'against':>9s} {'this':>9s} {'change':>9s}")
    for name, micros in best["this"].items():
        old = best["against"].get(name, float("nan"))
        print(f"{name:28s} {old:9.1f} {micros:9.1f} {micros - old:+9.1f}")


if __name__ == "__main__":
    main()
