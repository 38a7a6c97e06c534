"""Reward Lambda for Amazon Nova / Bedrock reinforcement fine-tuning: checks + an LLM rubric judge.

Deploy with the handler ``handler.lambda_handler`` (see README.md in this folder for timeout,
concurrency, the neutral score and packaging). Configuration through environment variables:

- ``JUDGE_MODEL`` (default gpt-4.1-mini) and ``JUDGE_BASE_URL`` (any OpenAI-compatible endpoint;
  default api.openai.com with ``OPENAI_API_KEY``);
- ``JUDGE_DEADLINE_S`` (default 600): the longest one invocation spends judging — keep the Lambda
  timeout above it; the handler also stops 5 s before the Lambda's remaining time runs out;
- ``JUDGE_NEUTRAL`` (default 0.5): the score of a sample whose judgment failed or ran late;
- ``JUDGE_MAX_CONCURRENCY`` (default 32): judge requests in flight per Lambda instance.

Samples whose answer is empty, or not JSON of ``ANSWER_SCHEMA``, score 0.0 without a judge call.
"""

from __future__ import annotations

import logging
import os

from rftjudge import Criterion, OpenAIClient, RubricJudge
from rftjudge.integrations.nova import json_valid, make_lambda_handler, non_empty

logging.getLogger("rftjudge").setLevel(logging.INFO)

# The shape the policy is trained to answer in (a compliance review, as in AWS's case study).
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {
        "compliant": {"enum": ["Yes", "No", "Partially"]},
        "explanation": {"type": "string", "minLength": 1},
    },
    "required": ["compliant", "explanation"],
}

judge = RubricJudge(
    OpenAIClient(
        os.environ.get("JUDGE_MODEL", "gpt-4.1-mini"),
        base_url=os.environ.get("JUDGE_BASE_URL"),
        max_concurrency=int(os.environ.get("JUDGE_MAX_CONCURRENCY", "32")),
    ),
    criteria=[
        Criterion(name="correct_verdict", description="Is the verdict the reference's?"),
        Criterion(name="grounded", description="Is the explanation supported by the question?"),
        Criterion(name="concise", description="Is the explanation short and to the point?"),
    ],
    scale="pass_fail",  # binary criteria: AWS's recommendation for rubric judges
    name="judge",
)

lambda_handler = make_lambda_handler(
    judge,
    neutral=float(os.environ.get("JUDGE_NEUTRAL", "0.5")),
    deadline_s=float(os.environ.get("JUDGE_DEADLINE_S", "600")),
    checks=(non_empty(), json_valid(ANSWER_SCHEMA)),
)
