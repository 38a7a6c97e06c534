"""veRL reward module: an LLM rubric judge as ``custom_reward_function``.

veRL imports this file in every reward worker and calls ``compute_score`` (a plain ``async def``,
which veRL 0.9's reward loop awaits). Each worker builds its own judge when it imports the module.

    # veRL 0.9 (Hydra overrides)
    python -m verl.trainer.main_ppo \
        reward.custom_reward_function.path=examples/verl_reward.py \
        reward.custom_reward_function.name=compute_score \
        reward.reward_manager.name=rate_limited \
        reward.max_concurrent=32 reward.max_rpm=3000 reward.timeout=120 \
        ...       # (prefix a key with + where your config does not declare it)

    # the same as YAML
    reward:
      custom_reward_function:
        path: examples/verl_reward.py
        name: compute_score
      reward_manager:
        name: rate_limited      # max_concurrent defaults to 1 there: raise it
      max_concurrent: 32
      max_rpm: 3000
      timeout: 120

The question is read from ``extra_info["question"]`` when the row has it (veRL's example
preprocessors store it; a row without it is judged without the question) and the reference from
``reward_model.ground_truth``. The legacy ``batch`` manager takes
``compute_score_batch`` instead. A failed judgment scores ``JUDGE_ON_ERROR`` (default 0.5) with
``judge_failed = 1`` in ``reward_extra_info``.

Environment: ``JUDGE_MODEL`` (default gpt-4.1-mini), ``JUDGE_BASE_URL`` (any OpenAI-compatible
server; default api.openai.com with ``OPENAI_API_KEY``), ``JUDGE_ON_ERROR``.
"""

from __future__ import annotations

import os

from rftjudge import Criterion, OpenAIClient, RubricJudge
from rftjudge.integrations.verl import make_batch_compute_score, make_compute_score

judge = RubricJudge(
    OpenAIClient(
        os.environ.get("JUDGE_MODEL", "gpt-4.1-mini"),
        base_url=os.environ.get("JUDGE_BASE_URL"),
        max_concurrency=32,
    ),
    criteria=[
        Criterion(name="correctness", description="Does it agree with the reference?", weight=2.0),
        Criterion(name="clarity", description="Is the reasoning clear and concise?"),
    ],
    scale=(1, 5),
)
on_error = float(os.environ.get("JUDGE_ON_ERROR", "0.5"))

compute_score = make_compute_score(judge, question_key="question", on_error=on_error)
compute_score_batch = make_batch_compute_score(judge, question_key="question", on_error=on_error)
