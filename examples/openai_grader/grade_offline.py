"""Run an OpenAI RFT grader config locally: the /graders/run shape for a few rows.

    # the score_model on any OpenAI-compatible server (vLLM, SGLang, llama.cpp, Ollama, OpenAI):
    python examples/openai_grader/grade_offline.py --base-url http://localhost:8000/v1 --model Qwen/Qwen3-8B

    # offline, anywhere (a rule-based stand-in for the grader model):
    python examples/openai_grader/grade_offline.py --offline

The same config, unchanged, is a TRL reward: ``reward_funcs=[grader.as_reward_func()]`` (see
docs/graders.md), and a data set run: ``rftjudge grade data.jsonl --openai-grader grader.json
--model gpt-4.1=vllm:Qwen/Qwen3-8B@http://localhost:8000/v1``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rftjudge import ChatRequest, FunctionClient, OpenAIClient
from rftjudge.graders import load_openai_grader

HERE = Path(__file__).resolve().parent


def stand_in(request: ChatRequest) -> str:
    """Answers in the score_model shape: 9 when the output's arithmetic matches the reference."""
    user = request.messages[-1].content
    reference = user.split("Reference answer: ")[1].split("\n")[0]
    output = user.split("Model output: ")[1]
    result = 9 if f"= {reference}" in output or f"is {reference}" in output else 2
    steps = [{"description": "check the arithmetic", "conclusion": f"scored {result}"}]
    return json.dumps({"steps": steps, "result": result})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--offline", action="store_true")
    parser.add_argument("--base-url")
    parser.add_argument("--model", default="Qwen/Qwen3-8B")
    args = parser.parse_args()
    client = (
        FunctionClient(stand_in)
        if args.offline or not args.base_url
        else OpenAIClient(args.model, base_url=args.base_url)
    )
    grader = load_openai_grader(HERE / "grader.json", models={"gpt-4.1": client})
    for line in (HERE / "data.jsonl").read_text().splitlines():
        row = json.loads(line)
        result = grader.run(row["response"], row)
        flags = [k for k, v in result["metadata"]["errors"].items() if v is True]
        print(f"{row['id']}: reward {result['reward']:.2f} {result['sub_rewards']} errors={flags}")


if __name__ == "__main__":
    main()
