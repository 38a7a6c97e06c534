"""The other forms of ``examples/verl_reward.py``'s judge, as veRL loads reward files: by path.

veRL's ``custom_reward_function.path`` / ``.name`` pick one module-level callable, so the forms that
the example does not expose (the plain function the ``remote`` manager needs, ``on_error="raise"``)
live here, built on the example's own judge (``JUDGE_BASE_URL`` etc. from the environment).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from rftjudge.integrations.verl import make_compute_score

_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "verl_reward.py"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rftjudge_example_verl_reward", _EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


judge = _load_example().judge
compute_score_sync = make_compute_score(judge, question_key="question", on_error=0.5, sync=True)
compute_score_raise = make_compute_score(judge, question_key="question", on_error="raise")
