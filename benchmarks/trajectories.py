"""Tokens a judge is sent per judged trajectory, with and without sharing the common prefix.

A deterministic fake judge (:class:`~rftjudge.FunctionClient`) answers every request; nothing leaves
the process. For trajectories of 5-50 steps (an assistant turn with a tool call and its result per
step, in TRL 1.16's message shapes), a GRPO group of ``--group`` completions that share their first
``--shared`` fraction of steps is judged:

- pointwise (``RubricJudge(view="full_trace")``): one request per completion;
- group mode (``ListwiseJudge(view="full_trace")``), the shared steps rendered once beside the prompt;
- group mode with the sharing turned off (every candidate rendered whole).

Tokens are the tokenizer-free estimate rftjudge budgets with (characters / 4, summed over every
request of the group, re-asks and permutations included), divided by the group size. Run:

    PYTHONPATH=src python benchmarks/trajectories.py [--group 8] [--shared 0.5] [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
from typing import Any
from unittest import mock

from rftjudge import ChatRequest, Criterion, FunctionClient, ListwiseJudge, RubricJudge
from rftjudge._content import content_size
from rftjudge.judges import _inputs

WORDS = [
    "search",
    "fetch",
    "result",
    "table",
    "value",
    "city",
    "report",
    "page",
    "answer",
    "step",
    "check",
    "source",
    "number",
]
CRITERIA = [Criterion(name="process", description="Did the agent use its tools well?")]


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _step(rng: random.Random, k: int) -> list[dict[str, Any]]:
    call = {"type": "function", "function": {"name": "search", "arguments": {"q": _words(rng, 4)}}}
    return [
        {"role": "assistant", "content": f"Step {k}: {_words(rng, 30)}", "tool_calls": [call]},
        {"role": "tool", "name": "search", "content": _words(rng, rng.randint(80, 200))},
    ]


def group_of(steps: int, size: int, shared: float, seed: int) -> list[list[dict[str, Any]]]:
    """``size`` trajectories of ``steps`` steps; the first ``shared`` fraction is the same in all."""
    common = int(steps * shared)
    prefix_rng = random.Random(f"{seed}-{steps}-prefix")
    prefix = [m for k in range(common) for m in _step(prefix_rng, k + 1)]
    group = []
    for member in range(size):
        rng = random.Random(f"{seed}-{steps}-{member}")
        own = [m for k in range(common, steps) for m in _step(rng, k + 1)]
        final = {"role": "assistant", "content": f"Final answer {member}: {_words(rng, 20)}"}
        group.append([*prefix, *own, final])
    return group


class Counting:
    """A fake judge that answers any rubric or listwise request validly and counts what it read."""

    def __init__(self) -> None:
        self.tokens = 0
        self.requests = 0

    def __call__(self, request: ChatRequest) -> str:
        self.requests += 1
        self.tokens += sum(content_size(m.content) for m in request.messages) // 4
        text = "\n".join(m.content for m in request.messages if isinstance(m.content, str))
        ids = re.findall(r"Candidate (C\w+):", text)
        if ids:
            return json.dumps({"rationale": "", "scores": [{"id": i, "score": 5} for i in ids]})
        return json.dumps({"rationale": "", "scores": {"process": 3}})


async def measure(steps: int, size: int, shared: float, seed: int) -> dict[str, float]:
    group = group_of(steps, size, shared, seed)
    prompt = "Find the population of the three largest cities and compare them."
    out: dict[str, float] = {}

    counter = Counting()
    rubric = RubricJudge(FunctionClient(counter), CRITERIA, view="full_trace", tool_budget=None)
    await rubric.ajudge_batch([prompt] * size, group)
    out["pointwise"] = counter.tokens / size

    counter = Counting()
    listwise = ListwiseJudge(FunctionClient(counter), view="full_trace", tool_budget=None)
    results = await listwise.ajudge_group(prompt, group)
    assert not any(isinstance(r, BaseException) for r in results), results
    out["group_shared"] = counter.tokens / size
    out["requests"] = counter.requests

    counter = Counting()
    listwise = ListwiseJudge(FunctionClient(counter), view="full_trace", tool_budget=None)
    with mock.patch.object(_inputs, "shared_prefix", lambda responses: 0):
        await listwise.ajudge_group(prompt, group)
    out["group_whole"] = counter.tokens / size
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--shared", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"group of {args.group}, first {args.shared:.0%} of steps shared; tokens per judgment")
    print(f"{'steps':>5} {'pointwise':>10} {'group whole':>12} {'group shared':>13} {'saved':>6}")
    for steps in (5, 10, 20, 50):
        row = await measure(steps, args.group, args.shared, args.seed)
        saved = 1 - row["group_shared"] / row["group_whole"]
        print(
            f"{steps:>5} {row['pointwise']:>10,.0f} {row['group_whole']:>12,.0f} "
            f"{row['group_shared']:>13,.0f} {saved:>6.0%}"
        )


if __name__ == "__main__":
    asyncio.run(main())
