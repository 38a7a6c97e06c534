from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import rftjudge


def test_all_is_sorted_and_complete() -> None:
    for name in rftjudge.__all__:  # names load on first use: load them all
        getattr(rftjudge, name)
    public = {name for name in vars(rftjudge) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(rftjudge, name)).__name__ == "module"}
    assert rftjudge.__all__ == sorted(rftjudge.__all__, key=str.casefold)
    assert set(rftjudge.__all__) == public - modules
    for name in rftjudge.__all__:
        assert getattr(rftjudge, name) is not None


def test_lazy_names_are_the_names_type_checkers_see() -> None:
    """``_LAZY`` (what ``__getattr__`` imports) and the ``TYPE_CHECKING`` imports (what mypy and
    editors see) must name the same things from the same modules."""
    tree = ast.parse(Path(rftjudge.__file__).read_text())
    guarded = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "attr", None) == "TYPE_CHECKING"
    )
    seen = {
        alias.name: "." * node.level + (node.module or "")
        for node in guarded.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert seen == rftjudge._LAZY
    assert set(rftjudge.__all__) <= set(dir(rftjudge))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        rftjudge.Nope  # noqa: B018


def test_subpackages_are_attributes_after_a_bare_import() -> None:
    """``rftjudge.judges.ensemble.EnsembleJudge`` worked when the package imported its parts
    eagerly; with lazy names it must still work in a fresh process, whatever was imported first."""
    code = (
        "import rftjudge; print(rftjudge.judges.ensemble.EnsembleJudge.__name__, "
        "rftjudge.clients.OpenAIClient.__name__, rftjudge.rewards.__name__, "
        "callable(rftjudge.client), 'judges' in dir(rftjudge))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [
        "EnsembleJudge",
        "OpenAIClient",
        "rftjudge.rewards",
        "True",
        "True",
    ]


def test_exception_tree_is_rooted_at_judge_error() -> None:
    for name in rftjudge.__all__:
        obj = getattr(rftjudge, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, rftjudge.JudgeError), name


def test_import_is_light() -> None:
    """Importing rftjudge must not pull optional or heavy packages (trainers, torch, the transport);
    names load on first use, so not even pydantic, httpx or jinja2 until a name needs them."""
    code = (
        "import sys, rftjudge; heavy = [m for m in ('torch', 'trl', 'transformers', 'aiohttp', "
        "'numpy', 'yaml', 'pydantic', 'httpx', 'jinja2') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
