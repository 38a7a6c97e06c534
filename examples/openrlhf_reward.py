"""OpenRLHF reward: an LLM rubric judge, as a ``reward_func`` file or as a remote reward server.

As a file (OpenRLHF loads ``reward_func`` from it and calls it in a thread, one sample per call)::

    python -m openrlhf.cli.train_ppo_ray ... \
        --reward.remote_url examples/openrlhf_reward.py --data.label_key answer

As a server (``pip install "rftjudge[server]"``; routes ``POST /get_reward``, ``POST /``,
``GET /health``)::

    python examples/openrlhf_reward.py --host 0.0.0.0 --port 5000
    python -m openrlhf.cli.train_ppo_ray ... --reward.remote_url http://HOST:5000/get_reward

(OpenRLHF <= 0.10.1 spells the flag ``--remote_rm_url``.) The server answers every request within
``--deadline`` seconds (default 120, under OpenRLHF's 180 s timeout); judgments that fail or run late
score ``JUDGE_ON_ERROR`` (default 0.5), flagged in ``extra_logs["judge_failed"]``.

Environment: ``JUDGE_MODEL`` (default gpt-4.1-mini), ``JUDGE_BASE_URL`` (any OpenAI-compatible
server), ``JUDGE_ON_ERROR``, ``POLICY_EOS`` (the policy's EOS token string, stripped from responses;
default ``<|im_end|>``, Qwen's).
"""

from __future__ import annotations

import argparse
import os

from rftjudge import Criterion, OpenAIClient, RubricJudge
from rftjudge.integrations.openrlhf import make_reward_func, serve

judge = RubricJudge(
    OpenAIClient(
        os.environ.get("JUDGE_MODEL", "gpt-4.1-mini"),
        base_url=os.environ.get("JUDGE_BASE_URL"),
        max_concurrency=64,
    ),
    criteria=[
        Criterion(name="correctness", description="Does it agree with the reference?", weight=2.0),
        Criterion(name="helpfulness", description="Does it address the request?"),
    ],
    on_error=float(os.environ.get("JUDGE_ON_ERROR", "0.5")),
)
EOS = os.environ.get("POLICY_EOS", "<|im_end|>")

reward_func = make_reward_func(judge, eos_token=EOS)


def main() -> None:
    parser = argparse.ArgumentParser(description="rftjudge reward server for OpenRLHF")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds per request")
    args = parser.parse_args()
    serve(judge, args.host, args.port, eos_token=EOS, deadline_s=args.deadline)


if __name__ == "__main__":
    main()
