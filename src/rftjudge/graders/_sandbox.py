"""Run a ``python`` grader's ``grade(sample, item)`` in a separate, limited process.

Each call starts ``sys.executable -I`` (isolated mode: no user site, no ``PYTHON*`` variables) in a
fresh temporary directory, in its own session, with:

- a wall-clock ``timeout`` (default 120 s, OpenAI's limit): the whole process group is killed;
- ``RLIMIT_AS`` = ``memory_bytes`` (default 2 GiB, OpenAI's limit): a memory bomb gets MemoryError;
- ``RLIMIT_CPU`` = timeout + 1 s, ``RLIMIT_FSIZE`` = 1 GiB (OpenAI's disk limit), no core dumps;
- no network **only where the kernel lets us make a network namespace**: when ``unshare --net``
  works (as root) or ``unshare --user --map-root-user --net`` does (unprivileged user namespaces
  enabled) the process runs in an empty network namespace (only a down loopback). Elsewhere the network is NOT blocked: ``network="required"``
  makes that a load-time error instead of a logged warning. Nothing else (file system, other
  processes) is isolated: run untrusted grader code in a container, as OpenAI did.

The protocol cannot be broken by the grader: before the grader's module runs, the runner keeps a
private duplicate of stdout for the result and points file descriptor 1 at stderr, so ``print``
(even from C extensions) lands in the captured stderr. An exception, a non-numeric or non-finite
return value, a crash, a kill or a timeout is a ``python_grader_runtime_error`` with details.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from typing import Any, Literal

from .._errors import ConfigurationError

__all__ = ["DEFAULT_MEMORY_BYTES", "DEFAULT_TIMEOUT_S", "PythonResult", "Sandbox"]

logger = logging.getLogger("rftjudge")

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MEMORY_BYTES = 2 * 1024**3
_FILE_BYTES = 1024**3
_DETAILS_CLIP = 2000

Network = Literal["isolate", "required", "allow"]

# The limits are set by the child on itself, before any grader code runs (a preexec_fn is unsafe
# in the multithreaded processes trainers are).
_RUNNER = r"""
import json, os, resource, sys
cpu, fsize, memory = (int(a) for a in sys.argv[1:4])
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
if memory > 0:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
result_fd = os.dup(1)
os.dup2(2, 1)
sys.stdout = sys.stderr
payload = json.loads(sys.stdin.read())
namespace = {"__name__": "grader"}
exec(compile(payload["source"], "grader.py", "exec"), namespace)
grade = namespace.get("grade")
if not callable(grade):
    raise NameError("the grader source defines no function grade(sample, item)")
value = grade(payload["sample"], payload["item"])
if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise TypeError(f"grade() returned {type(value).__name__}, not a number")
with os.fdopen(result_fd, "w") as out:
    out.write(json.dumps({"score": float(value)}))
"""


@dataclass(frozen=True)
class PythonResult:
    """The score, or the error details (then ``score`` is None)."""

    score: float | None
    error: str | None = None
    stderr: str = ""


class Sandbox:
    """Runs grader sources under the limits in the module docstring."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        memory_bytes: int | None = DEFAULT_MEMORY_BYTES,
        network: Network = "isolate",
        max_workers: int | None = None,
        python: str | None = None,
    ) -> None:
        if not timeout > 0:
            raise ConfigurationError(f"python grader timeout must be > 0 seconds; got {timeout!r}")
        if network not in ("isolate", "required", "allow"):
            raise ConfigurationError(
                f'network must be "isolate", "required" or "allow"; got {network!r}'
            )
        self.timeout = float(timeout)
        self.memory_bytes = memory_bytes
        self.python = python or sys.executable
        self._prefix = _network_prefix() if network != "allow" else None
        self.network_isolated = self._prefix is not None
        if network == "required" and not self.network_isolated:
            raise ConfigurationError(
                "python graders: no network namespace can be made here (`unshare --net` needs "
                "root or unprivileged user namespaces); run in a container without network, or "
                'pass network="isolate" to accept graders with network access'
            )
        if network == "isolate" and not self.network_isolated:
            logger.warning(
                "rftjudge: python graders run WITH network access: `unshare --net` is not "
                "available here (see rftjudge.graders._sandbox)"
            )
        self._slots = threading.BoundedSemaphore(max_workers or os.cpu_count() or 1)

    async def run(self, source: str, sample: Any, item: Any) -> PythonResult:
        """``grade(sample, item)`` of ``source``, in a subprocess (a worker thread waits on it)."""
        payload = json.dumps(
            {"source": source, "sample": sample, "item": item}, ensure_ascii=False, default=str
        )
        return await asyncio.to_thread(self._run_blocking, payload)

    def _command(self) -> list[str]:
        cpu = math.ceil(self.timeout) + 1
        limits = [str(cpu), str(_FILE_BYTES), str(self.memory_bytes or 0)]
        command = [self.python, "-I", "-c", _RUNNER, *limits]
        return [*self._prefix, *command] if self._prefix is not None else command

    def _run_blocking(self, payload: str) -> PythonResult:
        with self._slots, tempfile.TemporaryDirectory(prefix="rftjudge-grader-") as workdir:
            process = subprocess.Popen(
                self._command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=workdir,
                env={"PATH": os.environ.get("PATH", ""), "HOME": workdir, "TMPDIR": workdir},
                start_new_session=True,
            )
            try:
                out, err = process.communicate(payload.encode(), timeout=self.timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                _, err = process.communicate()
                return PythonResult(
                    None, f"timed out after {self.timeout:g}s", _clip(err.decode(errors="replace"))
                )
        stderr = _clip(err.decode(errors="replace"))
        if process.returncode != 0:
            return PythonResult(None, _failure(process.returncode, stderr), stderr)
        try:
            score = float(json.loads(out)["score"])
        except (ValueError, KeyError, TypeError):
            return PythonResult(None, "the grader process returned no result", stderr)
        if not math.isfinite(score):
            return PythonResult(None, f"grade() returned {score}", stderr)
        return PythonResult(score, None, stderr)


def _failure(returncode: int, stderr: str) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return f"the grader process was killed by {name}"
    last = stderr.strip().splitlines()[-1:] or [f"exit status {returncode}"]
    return last[0][:_DETAILS_CLIP]


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _clip(text: str) -> str:
    return text if len(text) <= _DETAILS_CLIP else text[-_DETAILS_CLIP:]


_UNSHARE_FORMS = (
    ("unshare", "--net", "--"),  # root
    ("unshare", "--user", "--map-root-user", "--net", "--"),  # unprivileged user namespaces
)


def _network_prefix() -> tuple[str, ...] | None:
    """The ``unshare`` command line that gives a process an empty network namespace here, if any
    (probed once per Sandbox)."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return None
    for form in _UNSHARE_FORMS:
        try:
            done = subprocess.run([*form, "true"], capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return form
    return None
