"""The README's main command keeps working: the GRPO examples run offline end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script", ["trl_grpo.py", "grpo_preference.py"])
def test_grpo_example_offline(tmp_path: Path, script: str) -> None:
    pytest.importorskip("trl")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / script),
            "--offline",
            "--output-dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=500,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "steps: 2" in out.stdout
    assert "failures={}" in out.stdout
