"""rftjudge reward functions called by TRL 1.16's own ``GRPOTrainer._calculate_rewards``.

A real ``GRPOTrainer`` run with a vision-language model needs a VLM checkpoint and its processor
(none can be downloaded here, and a randomly initialised one still needs the processor's files), and
a tool-calling run needs a tokenizer with a ``response_schema`` for ``parse_response``. So the trainer
method that calls reward functions runs unbound, on a stand-in trainer holding only what it reads
(reward functions and names, device, state, args, the async loop): the call, the kwargs it builds
from the dataset columns, the ``None`` → NaN conversion and the gather are TRL's code. The inputs are
what ``_generate_and_score_completions`` hands it: prompts passed through
``prepare_multimodal_messages`` with the dataset's images, and completions as its tool loop leaves
them.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from rftjudge import Capabilities, ChatRequest, Criterion, FunctionClient, RubricJudge
from rftjudge._content import ImagePart, content_text

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CRITERIA = [Criterion(name="process", description="Did the agent use its tools well?")]


def _stand_in_trainer(reward_funcs: list[Any]) -> tuple[Any, asyncio.AbstractEventLoop]:
    torch = pytest.importorskip("torch")
    from accelerate import PartialState

    PartialState(cpu=True)  # TRL's warning for an all-None row logs through accelerate
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    trainer = SimpleNamespace(
        accelerator=SimpleNamespace(device=torch.device("cpu"), is_main_process=True),
        reward_funcs=reward_funcs,
        reward_processing_classes=[None] * len(reward_funcs),
        reward_func_names=[f.__name__ for f in reward_funcs],
        state=SimpleNamespace(global_step=0),
        args=SimpleNamespace(report_to=[]),
        environments=None,
        async_loop=loop,
        _log_completion_extra=lambda column, values: None,
        _log_metric=lambda name, value: None,
    )
    return trainer, loop


def _call(
    trainer: Any, inputs: list[dict[str, Any]], prompts: list[Any], completions: list[Any]
) -> list[float]:
    from trl.trainer.grpo_trainer import GRPOTrainer

    ids = [[1, 2, 3] for _ in completions]
    rewards = GRPOTrainer._calculate_rewards(trainer, inputs, prompts, completions, ids)
    return [float(v) for v in rewards[:, 0]]


def _tool_completion(temp: str, arguments: Any = None) -> list[dict[str, Any]]:
    call = {
        "type": "function",
        "function": {"name": "weather", "arguments": arguments or {"city": "Paris"}},
    }
    return [
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "name": "weather", "content": str({"temp_c": temp})},
        {"role": "assistant", "content": f"It is {temp} °C."},
    ]


def test_tool_call_completions_reach_the_judge_through_trls_reward_call() -> None:
    pytest.importorskip("trl")
    seen: list[ChatRequest] = []

    def answer(request: ChatRequest) -> str:
        seen.append(request)
        return json.dumps({"rationale": "", "scores": {"process": 5}})

    judge = RubricJudge(FunctionClient(answer), CRITERIA, view="full_trace")
    trainer, loop = _stand_in_trainer([judge.as_reward_func()])
    try:
        prompts = [[{"role": "user", "content": "Weather in Paris?"}]] * 3
        completions = [
            _tool_completion("22"),
            _tool_completion("25"),
            _tool_completion("x", arguments='{"city": '),  # malformed tool-call JSON
        ]
        inputs = [{"prompt": p, "reference": "mild"} for p in prompts]
        rewards = _call(trainer, inputs, prompts, completions)
    finally:
        loop.call_soon_threadsafe(loop.stop)
    assert rewards[:2] == [1.0, 1.0] and math.isnan(rewards[2])  # abstained, not a 0
    text = "\n".join(content_text(m.content) for m in seen[0].messages)
    assert 'weather({"city": "Paris"})' in text and "'temp_c': '22'" in text
    assert judge.stats.failures["trajectory"] == 1


def test_a_vlm_dataset_image_reaches_the_judge_through_trls_reward_call() -> None:
    pytest.importorskip("trl")
    image_module = pytest.importorskip("PIL.Image")
    from trl.data_utils import prepare_multimodal_messages

    seen: list[ChatRequest] = []

    def answer(request: ChatRequest) -> str:
        seen.append(request)
        return json.dumps({"rationale": "", "scores": {"process": 3}})

    client = FunctionClient(answer, capabilities=Capabilities(images=True))
    judge = RubricJudge(client, CRITERIA)
    trainer, loop = _stand_in_trainer([judge.as_reward_func()])
    picture = image_module.new("RGB", (16, 16), "green")
    raw = [{"role": "user", "content": "What colour is the square?"}]
    inputs = [{"prompt": raw, "image": picture}] * 2
    # what _generate_and_score_completions does with a dataset's image column
    prompts = [prepare_multimodal_messages(raw, images=[picture]) for _ in inputs]
    completions = [[{"role": "assistant", "content": "Green."}]] * 2
    try:
        rewards = _call(trainer, inputs, prompts, completions)
    finally:
        loop.call_soon_threadsafe(loop.stop)
    assert rewards == [0.5, 0.5]
    parts = seen[0].messages[-1].content
    assert not isinstance(parts, str)
    assert sum(isinstance(p, ImagePart) for p in parts) == 1
