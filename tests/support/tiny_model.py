"""A tiny randomly initialised Llama and an in-process BPE tokenizer: real trainer runs on CPU.

Nothing is downloaded. The builder is the one ``examples/trl_grpo.py --offline`` uses, so the
tests exercise exactly what the README's main command runs; shared by the TRL integration tests.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trl_grpo.py"


def tiny_model_and_tokenizer() -> tuple[Any, Any]:
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    torch.manual_seed(0)
    spec = importlib.util.spec_from_file_location("rftjudge_example_trl_grpo", _EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tiny_policy()  # type: ignore[no-any-return]


# The short CPU run every trainer integration test makes (two steps, groups of 4).
TINY_RUN: dict[str, Any] = {
    "max_steps": 2,
    "per_device_train_batch_size": 4,
    "num_generations": 4,
    "max_completion_length": 12,
    "use_cpu": True,
    "report_to": "none",
    "save_strategy": "no",
    "logging_steps": 1,
}


def tiny_args(config_class: Any, tmp_path: Path, **overrides: Any) -> Any:
    """A trainer config (``trl.GRPOConfig``, ``trl.RLOOConfig``) for :data:`TINY_RUN`."""
    return config_class(output_dir=str(tmp_path / "out"), **{**TINY_RUN, **overrides})


def log_capture(logged: list[dict[str, float]]) -> Any:
    """A ``TrainerCallback`` appending every dict the trainer logs to ``logged``."""
    transformers: Any = pytest.importorskip("transformers")

    class Capture(transformers.TrainerCallback):  # type: ignore[misc]
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs:
                logged.append(dict(logs))

    return Capture()
