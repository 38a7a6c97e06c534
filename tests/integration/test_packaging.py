"""The wheel bundles prompts/ and works from a fresh virtual environment."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_bundles_templates_and_renders_in_fresh_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = dist.glob("rftjudge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "rftjudge/prompts/rubric.j2" in names
    assert "rftjudge/py.typed" in names

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    # The fresh venv alone: a PYTHONPATH set for the suite (a source tree first) would shadow it.
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(wheel)],
        check=True,
        capture_output=True,
        text=True,
        env=clean,
    )
    code = (
        "import rftjudge, pathlib;"
        "from rftjudge import RubricJudge, Criterion, OpenAIClient;"
        "j = RubricJudge(OpenAIClient('m', base_url='http://127.0.0.1:9/v1'),"
        " criteria=[Criterion(name='q', description='quality')]);"
        "msgs = j.render('P', 'R', None);"
        "assert 'site-packages' in rftjudge.__file__;"
        "print(msgs[-1].content.splitlines()[0])"
    )
    out = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, cwd=tmp_path, env=clean
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "CRITERIA:"  # the bundled rubric.j2, from the wheel
