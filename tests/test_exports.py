from __future__ import annotations

import subprocess
import sys

import rftjudge


def test_all_is_sorted_and_complete() -> None:
    public = {name for name in vars(rftjudge) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(rftjudge, name)).__name__ == "module"}
    assert rftjudge.__all__ == sorted(rftjudge.__all__, key=str.casefold)
    assert set(rftjudge.__all__) == public - modules
    for name in rftjudge.__all__:
        assert getattr(rftjudge, name) is not None


def test_exception_tree_is_rooted_at_judge_error() -> None:
    for name in rftjudge.__all__:
        obj = getattr(rftjudge, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, rftjudge.JudgeError), name


def test_import_is_light() -> None:
    """Importing rftjudge must not pull optional or heavy packages (trainers, torch, the transport).

    (rich is left out: httpx itself imports it for its CLI when it is installed.)
    """
    code = (
        "import sys, rftjudge; heavy = [m for m in ('torch', 'trl', 'transformers', 'aiohttp', "
        "'numpy', 'yaml') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
