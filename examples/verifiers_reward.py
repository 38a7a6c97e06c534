"""verifiers: an LLM rubric judge as a reward, for the v1 API (0.4) and the classic one (<= 0.3).

v1 — plug the reward function into any task from config (it gets ``task`` and ``trace``)::

    [env.taskset.task.rewards]
    judge = { fn = "examples/verifiers_reward.py:judge_reward", weight = 1.0 }

or use the judge plugin: put ``RftJudge = v1_judge_class(judge)`` in an installed module's
``__all__`` and plug it with ``taskset.task.judges = [{ id = "<that module>" }]``. In v1 a failed
judgment raises (verifiers' contract: a judge failure is not scored against the model).

classic (verifiers <= 0.3 only: 0.4 ships just ``verifiers.v1``, no ``Rubric``)::

    rubric = vf.Rubric(funcs=[classic_judge_reward], weights=[1.0])

where a failed judgment scores ``on_error`` (0.5 here).

Environment: ``JUDGE_MODEL`` (default gpt-4.1-mini), ``JUDGE_BASE_URL`` (any OpenAI-compatible
server; default api.openai.com with ``OPENAI_API_KEY``).
"""

from __future__ import annotations

import os

from rftjudge import Criterion, OpenAIClient, RubricJudge
from rftjudge.integrations.verifiers import classic_reward_func, v1_reward_func

judge = RubricJudge(
    OpenAIClient(
        os.environ.get("JUDGE_MODEL", "gpt-4.1-mini"),
        base_url=os.environ.get("JUDGE_BASE_URL"),
        max_concurrency=32,
    ),
    criteria=[
        Criterion(name="correctness", description="Does it agree with the reference?", weight=2.0),
        Criterion(name="clarity", description="Is it clear and concise?"),
    ],
    on_error=0.5,
)

judge_reward = v1_reward_func(judge, name="judge", answer_field="answer")
classic_judge_reward = classic_reward_func(judge, name="judge")
