"""Per-row rubrics on a deterministic fake judge: ranking quality, requests, tokens and client CPU.

    python benchmarks/rubrics.py            # 60 prompts x 6 responses, 5-30 items each
    python benchmarks/rubrics.py --prompts 100 --json out.json

**Data.** Each prompt gets a rubric of 5-30 items (essential / important / optional / pitfall, RaR's
default weights) and 6 responses. Item ``k`` of a prompt is "the response mentions ``R<k>``" (or,
for a pitfall, "makes mistake ``M<k>``"); a response of latent quality q mentions each requirement
with probability q and makes each mistake with probability 0.6 (1 - q). Its **known quality** is
the true explicit rubric score of what it actually contains (weights, pitfalls subtracting,
clipped) — the target every judge is compared with by Spearman, within each prompt (the order GRPO
uses) and over all rows.

**Fake judge** (a ``FunctionClient``; the same seeds every run). It reads the item lines and the
response from the rendered prompt and misreads each item with a probability that grows with how
many items one request shows it (0.08 + 0.004 per item shown — an *assumption* standing for
attention dilution on long rubrics, not a measurement of any model):

- **explicit**: scores each item 8-10 (met) or 1-3 (not met) on a 1-10 scale;
- **implicit**: one 1-10 score, the weighted fraction of what it read, rounded;
- **fixed rubric**: three judge-wide criteria (correct / complete / clear) and no row rubric: the
  judge only sees how many requirements and mistakes the response mentions, not which were asked.

So the Spearman figures show that the pipeline carries the signal (weights, pitfalls, chunks) under
this noise model; which aggregation wins on a real judge must be measured on that judge.

**Client CPU** is ``time.process_time`` over the judged batch minus the time spent inside the fake
judge's handler (measured around it): what rftjudge itself spends per judgment and per item. The
per-row schema micro-benchmark times what a row's rubric costs before any request: parsing, and the
verdict schema (cached by shape), against building a pydantic model per row.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rftjudge import ChatRequest, Criterion, FunctionClient, RubricJudge
from rftjudge.judges._criteria import Scale
from rftjudge.judges._rubric_ask import ShapeCache
from rftjudge.judges._rubric_items import CATEGORY_WEIGHTS, parse_rubric
from rftjudge.judges._rubric_rows import row_plan

CATEGORIES = ["essential", "important", "optional", "pitfall"]
LINE = re.compile(r"^- (\S+)(?: \[(\w+)\])? \(weight ([\d.]+)[^)]*\): (.*)$", re.M)
FENCE = r"<<<{0} \w+>>>\n(.*?)\n<<<END {0} \w+>>>"
SCALE = (1, 10)


def spearman(xs: list[float], ys: list[float]) -> float | None:
    def ranks(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=lambda i: values[i])
        out = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2
            i = j + 1
        return out

    rx, ry = ranks(xs), ranks(ys)
    if len(set(rx)) < 2 or len(set(ry)) < 2:
        return None
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    num = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    den = (sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5
    return num / den


def make_data(prompts: int, per_prompt: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for p in range(prompts):
        n = rng.randint(5, 30)
        items = []
        for k in range(n):
            category = rng.choices(CATEGORIES, weights=[3, 3, 2, 2])[0]
            marker = f"{'M' if category == 'pitfall' else 'R'}{p}x{k}"
            what = "makes the mistake" if category == "pitfall" else "covers the point"
            items.append({"description": f"{what} {marker}", "category": category, "m": marker})
        for r in range(per_prompt):
            q = (r + rng.random()) / per_prompt
            present = [
                it["m"]
                for it in items
                if rng.random() < (0.6 * (1 - q) if it["category"] == "pitfall" else q)
            ]
            truth = _true_score(items, set(present))
            response = "Answer: " + " ".join(present) + " " + "filler " * rng.randint(5, 40)
            rubric = [{k: v for k, v in it.items() if k != "m"} for it in items]
            rows.append(
                {
                    "prompt": f"Question {p}",
                    "response": response,
                    "rubric": rubric,
                    "truth": truth,
                    "group": p,
                    "items": n,
                }
            )
    return rows


def _true_score(items: list[dict[str, Any]], present: set[str]) -> float:
    positive = sum(CATEGORY_WEIGHTS[i["category"]] for i in items if i["category"] != "pitfall")
    gained = sum(
        CATEGORY_WEIGHTS[i["category"]]
        for i in items
        if i["category"] != "pitfall" and i["m"] in present
    )
    lost = sum(
        CATEGORY_WEIGHTS["pitfall"]
        for i in items
        if i["category"] == "pitfall" and i["m"] in present
    )
    value = (gained - lost) / positive if positive else 1 - lost / sum(0.9 for _ in items)
    return min(1.0, max(0.0, value))


def _noise(*parts: Any) -> float:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class FakeJudge:
    def __init__(self) -> None:
        self.handler_s = 0.0
        self.chars_in = 0
        self.chars_out = 0

    def __call__(self, request: ChatRequest) -> str:
        start = time.process_time()
        text = "\n".join(m.content for m in request.messages)
        answer = self._answer(request, text)
        self.chars_in += len(text)
        self.chars_out += len(answer)
        self.handler_s += time.process_time() - start
        return answer

    def _answer(self, request: ChatRequest, text: str) -> str:
        response = re.search(FENCE.format("RESPONSE"), text, re.S)
        said = set((response.group(1) if response else "").split())
        rubric = re.search(FENCE.format("RUBRIC"), text, re.S)
        props = request.output_schema["properties"]  # type: ignore[index]
        if rubric is None:  # fixed rubric: only counts of what was mentioned
            good = sum(w.startswith("R") for w in said)
            bad = sum(w.startswith("M") for w in said)
            base = (good - bad) / (good + bad + 3)
            scores = {}
            for name in props["scores"]["required"]:
                v = base + (_noise(text, name) - 0.5) * 0.6
                scores[name] = max(1, min(10, round(1 + 9 * (v + 1) / 2)))
            return json.dumps({"rationale": "generic", "scores": scores})
        lines = LINE.findall(rubric.group(1))
        flip = 0.08 + 0.004 * len(lines)
        read: dict[str, tuple[bool, float, bool]] = {}
        for ident, category, weight, description in lines:
            marker = description.split()[-1]
            hit = marker in said
            if _noise(text[:200], ident, marker) < flip:
                hit = not hit
            read[ident] = (hit, float(weight), category == "pitfall")
        if "score" in props:
            positive = sum(w for _, w, pit in read.values() if not pit) or 1.0
            value = sum(w * (1 if h else 0) * (-1 if pit else 1) for h, w, pit in read.values())
            frac = min(1.0, max(0.0, value / positive))
            return json.dumps(
                {"rationale": "overall", "score": max(1, min(10, round(1 + 9 * frac)))}
            )
        scores = {}
        for ident in props["scores"]["required"]:
            hit = read[ident][0]
            jitter = int(_noise(text[:100], ident, "j") * 3)
            scores[ident] = 8 + jitter if hit else 1 + jitter
        return json.dumps({"rationale": "items", "scores": scores})


def run_mode(rows: list[dict[str, Any]], mode: str, max_criteria: int | None) -> dict[str, Any]:
    fake = FakeJudge()
    client = FunctionClient(fake)
    if mode == "fixed":
        criteria = [
            Criterion(name=n, description=f"Is it {n}?") for n in ("correct", "complete", "clear")
        ]
        judge = RubricJudge(
            client, criteria=criteria, scale=SCALE, guard=False, max_input_chars=None
        )
        rubrics = None
    else:
        judge = RubricJudge(
            client,
            scale=SCALE,
            aggregate=mode,
            max_criteria=max_criteria,  # type: ignore[arg-type]
            guard=False,
            max_input_chars=None,
        )
        rubrics = [r["rubric"] for r in rows]
    prompts = [r["prompt"] for r in rows]
    responses = [r["response"] for r in rows]

    async def go() -> list[Any]:
        if rubrics is None:
            return await judge.ajudge_batch(prompts, responses)
        return await judge.ajudge_batch(prompts, responses, rubrics=rubrics)

    cpu = time.process_time()
    outcomes = asyncio.run(go())
    cpu = time.process_time() - cpu - fake.handler_s
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    scores = [None if isinstance(o, BaseException) else o.score for o in outcomes]
    truths = [r["truth"] for r in rows]
    within = []
    for group in sorted({r["group"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["group"] == group and scores[i] is not None]
        rho = spearman([scores[i] for i in idx], [truths[i] for i in idx])  # type: ignore[misc]
        if rho is not None:
            within.append(rho)
    ok = [i for i, s in enumerate(scores) if s is not None]
    items = sum(r["items"] for r in rows)
    return {
        "mode": mode if max_criteria is None else f"{mode}, max_criteria={max_criteria}",
        "spearman_within_prompt": statistics.fmean(within),
        "spearman_all": spearman([scores[i] for i in ok], [truths[i] for i in ok]),  # type: ignore[misc]
        "failures": len(failures),
        "requests_per_judgment": len(client.calls) / len(rows),
        "tokens_in_per_judgment": fake.chars_in / 4 / len(rows),
        "tokens_out_per_judgment": fake.chars_out / 4 / len(rows),
        "cpu_ms_per_judgment": 1000 * cpu / len(rows),
        "cpu_us_per_item": 1e6 * cpu / items,
    }


def schema_costs(rows: list[dict[str, Any]], repeat: int = 3) -> dict[str, float]:
    """µs per judgment for what a row's own rubric costs before any request."""
    from rftjudge.judges.rubric import _verdict_model

    rubrics = [r["rubric"] for r in rows]
    scale = Scale(low=1, high=10)
    out: dict[str, float] = {}

    def timed(label: str, fn: Any) -> None:
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        out[label] = 1e6 * best / len(rubrics)

    parsed = [parse_rubric(r) for r in rubrics]
    timed("parse rubric (first sight)", lambda: [parse_rubric(r) for r in rubrics])
    judge = RubricJudge(FunctionClient(lambda r: ""), scale=SCALE)
    [judge.rubric_of(r, None) for r in rubrics]
    timed(
        "parse rubric (cached, as in GRPO groups / epochs)",
        lambda: [judge.rubric_of(r, None) for r in rubrics],
    )
    timed(
        "verdict schema, new shape every row",
        lambda: [ShapeCache().explicit(p.items, scale) for p in parsed],
    )
    cache = ShapeCache()
    timed(
        "verdict schema, cached by shape", lambda: [cache.explicit(p.items, scale) for p in parsed]
    )
    settings = judge.row_settings
    cached = [judge.rubric_of(r, None) for r in rubrics]
    [row_plan(settings, p) for p in cached]
    timed(
        "verdict schema of a row as judged (memo on the cached rubric)",
        lambda: [row_plan(settings, p) for p in cached],
    )
    crit = [[Criterion(name=i.id, description=i.description) for i in p.items] for p in parsed]
    timed(
        "pydantic verdict model per row (not used; for scale)",
        lambda: [_verdict_model(c, scale) for c in crit],
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=60)
    parser.add_argument("--responses", type=int, default=6)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = make_data(args.prompts, args.responses)
    sizes = [r["items"] for r in rows[:: args.responses]]
    print(
        f"{args.prompts} prompts x {args.responses} responses, {min(sizes)}-{max(sizes)} items "
        f"(mean {statistics.fmean(sizes):.1f})"
    )
    results = [
        run_mode(rows, "explicit", None),
        run_mode(rows, "explicit", 8),
        run_mode(rows, "implicit", None),
        run_mode(rows, "fixed", None),
    ]
    head = list(results[0])
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in results:
        print(
            "| "
            + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values())
            + " |"
        )
    costs = schema_costs(rows)
    print("\n| per-row rubric step | µs per judgment |\n|---|---|")
    for label, value in costs.items():
        print(f"| {label} | {value:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"modes": results, "schema_us": costs}, indent=2))


if __name__ == "__main__":
    main()
