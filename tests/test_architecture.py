"""The import graph keeps its layers: every arrow points down, and no two modules need each other.

The layers, lowest first (docs/architecture.md explains each):

    foundation    → text processing → transport → clients → rewards → judges → integrations → application

A module may import its own layer or any layer below it, never above. The graph is read from the
source (every ``import``, including imports inside functions and under ``TYPE_CHECKING``: a lazy
upward import is still an upward dependency). Cycles are refused too, except the one lazy
factory listed in ``ALLOWED_CYCLES`` (the in-process rate limiter builds the Redis one on demand).
"""

from __future__ import annotations

import ast
import fnmatch
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "rftjudge"

LAYERS: list[tuple[str, list[str]]] = [
    (
        "foundation",
        [
            "rftjudge._errors",
            "rftjudge._version",
            "rftjudge._deprecation",
            "rftjudge._datafile",
            "rftjudge._key_variables",
            "rftjudge._types",
            "rftjudge._sync",
            "rftjudge._limits",
            "rftjudge._affinity",
            "rftjudge._rebuild",
            "rftjudge._sinks",
            "rftjudge._jsonschema",
            "rftjudge._text",
            "rftjudge._content",
            "rftjudge.calibration",
            "rftjudge.pricing",
            "rftjudge.cache",
        ],
    ),
    (
        "text processing",
        ["rftjudge.parsing*", "rftjudge.templates*", "rftjudge.guards", "rftjudge.checks"],
    ),
    (
        "transport",
        [
            "rftjudge.clients._protocol",
            "rftjudge.clients._transport",
            "rftjudge.clients._retry",
            "rftjudge.clients._classify",
            "rftjudge.clients._options",
            "rftjudge.clients._schema",
            "rftjudge.clients._params",
            "rftjudge.clients._adapt",
            "rftjudge.clients._headers",
            "rftjudge.clients._secrets",
            "rftjudge.clients._sigv4",
            "rftjudge.clients._stats",
            "rftjudge.clients._ratelimit",
            "rftjudge.clients._ratelimit_headers",
            "rftjudge.clients._ratelimit_budget",
            "rftjudge.clients._redis_limits",
            "rftjudge.clients._redis_scripts",
            "rftjudge.clients._routing",
            "rftjudge.clients._slots",
            "rftjudge.clients._messages",
            "rftjudge.clients._prefill",
            "rftjudge.clients._cache_io",
        ],
    ),
    ("clients", ["rftjudge.clients", "rftjudge.clients.*"]),
    ("rewards", ["rftjudge.rewards", "rftjudge._reward_*"]),
    ("judges", ["rftjudge.judges", "rftjudge.judges.*", "rftjudge.compose", "rftjudge.graders*"]),
    ("integrations", ["rftjudge.integrations", "rftjudge.integrations.*"]),
    ("application", ["rftjudge.app", "rftjudge.app.*"]),
]

# The public facade re-exports every layer, and the deprecated aliases of moved modules point at
# their new homes in the application layer: both stand outside the layering.
OUTSIDE = {
    "rftjudge",
    "rftjudge.__main__",
    "rftjudge.cli",
    "rftjudge.config",
    "rftjudge.local",
    "rftjudge.report",
    "rftjudge.scoring",
    "rftjudge.integrations.ray",
}

ALLOWED_CYCLES = {frozenset({"rftjudge.clients._ratelimit", "rftjudge.clients._redis_limits"})}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target in modules:
                found.add(target)
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:
                    found.add(f"{target}.{alias.name}")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
    found.discard(name)
    return found


def _layer(name: str) -> int:
    for rank, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            return rank
    raise AssertionError(f"{name} belongs to no layer: add it to LAYERS in {__file__}")


MODULES = _modules()
GRAPH = {name: _imports(name, path, MODULES) for name, path in MODULES.items()}


def test_every_module_has_a_layer() -> None:
    for name in MODULES:
        if name not in OUTSIDE:
            _layer(name)


def test_no_import_points_up() -> None:
    upward = [
        f"{name} ({LAYERS[_layer(name)][0]}) imports {target} ({LAYERS[_layer(target)][0]})"
        for name, targets in GRAPH.items()
        if name not in OUTSIDE
        for target in sorted(targets)
        if target not in OUTSIDE and _layer(target) > _layer(name)
    ]
    assert upward == []


def test_nothing_imports_a_deprecated_alias() -> None:
    users = [
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        for target in targets
        if target in OUTSIDE and target != "rftjudge" and name not in OUTSIDE
    ]
    assert users == []


def test_no_two_modules_need_each_other() -> None:
    def reaches(start: str, goal: str) -> bool:
        seen, stack = set(), [start]
        while stack:
            node = stack.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                stack.extend(GRAPH.get(node, ()))
        return False

    cycles = {
        frozenset({a, b})
        for a, targets in GRAPH.items()
        for b in targets
        if a not in OUTSIDE and b not in OUTSIDE and b != "rftjudge" and reaches(b, a)
    }
    assert cycles - ALLOWED_CYCLES == set()


_IMPORT_EACH = """
import importlib.util, os, sys, traceback, types, warnings
import httpx, httpx_aiohttp, jinja2, pydantic, tenacity  # third-party, shared by every child
warnings.simplefilter("error", DeprecationWarning)
# The facade (rftjudge/__init__.py) imports every layer in a fixed order, which would hide a module
# that only imports because something else was imported first: stand in an empty package for it.
spec = importlib.util.find_spec("rftjudge")
stub = types.ModuleType("rftjudge")
stub.__path__ = list(spec.submodule_search_locations)
stub.__spec__ = spec
sys.modules["rftjudge"] = stub
failed = []
for name in sys.argv[1:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a child with no rftjudge module imported yet: ``name`` is imported first
        os.close(read)
        try:
            __import__(name)
            code = 0
        except BaseException:
            os.write(write, traceback.format_exc().strip().splitlines()[-1].encode())
            code = 1
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        message = pipe.read().decode()
    if os.waitpid(pid, 0)[1]:
        failed.append(name + ": " + message)
print("\\n".join(failed))
"""


@pytest.mark.timeout(300)  # ~90 processes: seconds on an idle machine, a minute under load
@pytest.mark.skipif(sys.platform == "win32", reason="uses os.fork")
def test_every_module_imports_on_its_own() -> None:
    """Each module imported first in a fresh process: an import-time cycle would fail here.

    Without the facade, each child imports only what that module needs. The children are forked
    after the third-party packages are imported, so each costs only rftjudge's own import time.
    """
    names = sorted(n for n in MODULES if n not in OUTSIDE and n != "rftjudge.__main__")
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, *names], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_deprecated_module_paths_still_work() -> None:
    import importlib
    import warnings

    from rftjudge.app import config

    sys.modules.pop("rftjudge.config", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = importlib.import_module("rftjudge.config")
    assert old is config
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
