"""Every integration module imports without its trainer (or server stack) installed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rftjudge.integrations import openrlhf

from support.judges import scripted_judge

MODULES = ("trl", "verl", "openrlhf", "verifiers", "nova", "checks")
HEAVY = (
    "torch",
    "trl",
    "transformers",
    "verl",
    "openrlhf",
    "verifiers",
    "starlette",
    "uvicorn",
    "jsonschema",
    "numpy",
    "ray",
)


def test_integration_modules_import_nothing_heavy() -> None:
    imports = "; ".join(f"import rftjudge.integrations.{m}" for m in MODULES)
    code = f"import sys; {imports}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_server_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    judge, _ = scripted_judge(on_error=0.5)
    for name in ("starlette", "starlette.applications", "starlette.responses", "starlette.routing"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r'pip install "rftjudge\[server\]"'):
        openrlhf.create_app(judge)
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(ImportError, match=r"rftjudge\[server\]"):
        openrlhf._uvicorn()
