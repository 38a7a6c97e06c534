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
