"""The shared budget in Redis: a real redis-server on a loopback port, real worker processes, an
instrumented loopback judge that counts concurrent requests.

- 8 processes share 32 slots: the server never sees more than 32 at once (and does see 32);
- 8 processes share a requests-per-second budget: no one-second window holds more than it;
- a process holding every slot is SIGKILLed: its leases expire and the others finish — while it
  lived, its refreshed leases kept the others out.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rftjudge import ChatRequest, ConfigurationError, OpenAIClient, RateLimits, TransportError
from rftjudge._limits import ConcurrencyLimiter
from rftjudge._types import Message
from rftjudge.clients._redis_limits import RedisRateLimiter, redact_url

from support.server import LoopbackServer, Reply, chat_reply

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server on a free loopback port, for this module's tests."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    redis = pytest.importorskip("redis")
    port = _free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    probe = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                assert proc.poll() is None, "redis-server exited at start"
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        probe.close()
        proc.terminate()
        proc.wait(10)


class Judge:
    """A loopback judge that records when each request arrived and how many ran at once."""

    def __init__(self, delay: float, hold_tag: str | None = None) -> None:
        self.delay = delay
        self.hold_tag = hold_tag
        self.arrivals: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    def __call__(self, payload: dict[str, Any]) -> Reply:
        text = payload["messages"][-1]["content"]
        with self.lock:
            self.arrivals.append((time.monotonic(), text))
        held = self.hold_tag is not None and text.startswith(self.hold_tag)
        return Reply(body=chat_reply('{"ok": true}'), delay=60.0 if held else self.delay)


WORKER = """
import asyncio, json, sys
from rftjudge import ChatRequest, OpenAIClient, RateLimits
from rftjudge._types import Message

async def main(cfg):
    client = OpenAIClient(
        "m",
        base_url=cfg["base_url"],
        max_concurrency=cfg["concurrency"],
        max_retries=0,
        timeout=120,
        limits=RateLimits(
            backend=cfg["redis"], key=cfg["key"], max_in_flight=cfg.get("max_in_flight"),
            requests_per_minute=cfg.get("rpm"), burst_s=cfg.get("burst_s", 1.0),
            lease_ttl=cfg.get("lease_ttl", 15.0),
        ),
    )
    def ask(text):
        return client.complete(ChatRequest(
            messages=(Message(role="user", content=text),), temperature=0.0))

    for i in range(cfg.get("warm", 0)):  # open the connection pool before the measured part
        await ask(f"warm {cfg['tag']} {i}")
    calls = [ask(f"{cfg['tag']} {i}") for i in range(cfg["n"])]
    print("started", flush=True)
    if cfg.get("gate"):  # start together, when the test says so
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    results = await asyncio.gather(*calls, return_exceptions=True)
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    await client.aclose()
    print(json.dumps({"ok": len(results) - len(errors), "errors": errors[:3]}), flush=True)

asyncio.run(main(json.loads(sys.argv[1])))
"""


def _spawn(tmp_path: Path, **cfg: Any) -> subprocess.Popen[str]:
    script = tmp_path / "worker.py"
    if not script.exists():
        script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(
        [sys.executable, str(script), json.dumps(cfg)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _result(proc: subprocess.Popen[str], timeout: float = 60) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_eight_processes_never_exceed_the_shared_in_flight_bound(
    redis_url: str, tmp_path: Path
) -> None:
    judge = Judge(delay=0.1)
    with LoopbackServer(judge) as server:
        common = {"base_url": server.base_url, "redis": redis_url, "key": "inflight-test"}
        workers = [
            _spawn(tmp_path, **common, tag=f"w{w}", n=24, concurrency=16, max_in_flight=32)
            for w in range(8)
        ]
        results = [_result(w) for w in workers]
        assert [r["ok"] for r in results] == [24] * 8, results
        assert len(server.requests) == 8 * 24
        # 8 x 16 local slots would allow 128: the fleet-wide bound held, and was used.
        assert 24 <= server.max_in_flight <= 32, server.max_in_flight


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_eight_processes_share_one_requests_per_second_budget(
    redis_url: str, tmp_path: Path
) -> None:
    per_second, total = 100, 200
    judge = Judge(delay=0.01)
    with LoopbackServer(judge) as server:
        common = {"base_url": server.base_url, "redis": redis_url, "key": "rate-test"}
        workers = [
            _spawn(
                tmp_path,
                **common,
                tag=f"w{w}",
                n=total // 8,
                concurrency=32,
                rpm=per_second * 60,
                burst_s=0.1,
                gate=True,
                warm=2,
            )
            for w in range(8)
        ]
        for proc in workers:  # every process up before any sends: the window sees steady state
            assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        for proc in workers:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [_result(w) for w in workers]
        assert sum(r["ok"] for r in results) == total, results
        times = sorted(t for t, text in judge.arrivals if not text.startswith("warm"))
        # No one-second window holds more than the budget plus one burst (0.1 s of it), give or
        # take scheduling jitter of 8 processes on a small machine; 8 budgets would allow 800.
        busiest = max(sum(1 for u in times[i:] if u < t + 1.0) for i, t in enumerate(times))
        assert busiest <= (per_second + per_second * 0.1) * 1.15, busiest
        # ... and the processes did not each spend "their own" 100/s: 200 took about 2 s.
        assert times[-1] - times[0] >= (total - per_second * 0.1) / per_second * 0.9


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_sigkilled_holder_gives_its_slots_back_after_the_lease_ttl(
    redis_url: str, tmp_path: Path
) -> None:
    ttl = 1.0
    judge = Judge(delay=0.02, hold_tag="victim")
    with LoopbackServer(judge) as server:
        common = {
            "base_url": server.base_url,
            "redis": redis_url,
            "key": "kill-test",
            "max_in_flight": 32,
            "lease_ttl": ttl,
        }
        victim = _spawn(tmp_path, **common, tag="victim", n=32, concurrency=32)
        deadline = time.monotonic() + 30
        while server.in_flight < 32:  # the victim holds every slot, on requests that hang
            assert time.monotonic() < deadline and victim.poll() is None
            time.sleep(0.02)
        others = [_spawn(tmp_path, **common, tag=f"w{w}", n=10, concurrency=8) for w in range(3)]
        for proc in others:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "started"
        time.sleep(3 * ttl)  # three lease lifetimes: refreshed leases keep everyone else out
        assert all(not text.startswith("w") for _, text in judge.arrivals)
        killed_at = time.monotonic()
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        results = [_result(p) for p in others]
        assert [r["ok"] for r in results] == [10, 10, 10], results
        first = min(t for t, text in judge.arrivals if text.startswith("w"))
        assert killed_at < first < killed_at + ttl + 3.0
        assert server.max_in_flight <= 32


# -- the limiter in this process -----------------------------------------------------------------


@pytest.mark.integration
async def test_leases_are_counted_released_and_returned_on_cancel(redis_url: str) -> None:
    limits = RateLimits(backend=redis_url, key="unit-leases", max_in_flight=2, lease_ttl=5.0)
    limiter = RedisRateLimiter(limits, ConcurrencyLimiter(8))
    first, second = await limiter.acquire(), await limiter.acquire()
    assert limiter.held == 2
    waiting = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.2)
    assert not waiting.done()  # the fleet's two slots are taken
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    limiter.release(first)
    third = await asyncio.wait_for(limiter.acquire(), 5)  # woken by the release
    limiter.release(second)
    limiter.release(third)
    limiter.release(third)  # releasing twice is harmless
    await limiter.aclose()
    import redis.asyncio

    check = redis.asyncio.from_url(redis_url)
    assert await check.zcard("rftjudge:{unit-leases}:leases") == 0
    await check.aclose()


@pytest.mark.integration
async def test_token_budget_is_reserved_and_corrected(redis_url: str) -> None:
    limits = RateLimits(
        backend=redis_url, key="unit-tokens", tokens_per_minute=60_000, burst_s=1.0
    )  # 1000 tokens a second, a bucket of 1000
    limiter = RedisRateLimiter(limits, ConcurrencyLimiter(8))
    assert limiter.estimates_tokens
    permit = await limiter.acquire(900)
    limiter.correct(permit, 100)  # only 100 were spent: 800 go back
    limiter.release(permit)
    await asyncio.sleep(0.05)
    started = time.monotonic()
    second = await limiter.acquire(800)
    assert time.monotonic() - started < 0.3  # the correction made room at once
    limiter.release(second)
    started = time.monotonic()
    third = await limiter.acquire(500)  # now in debt: wait for it to refill
    assert time.monotonic() - started >= 0.2
    limiter.release(third)
    await limiter.aclose()


@pytest.mark.integration
async def test_client_with_a_shared_backend_judges_and_closes(redis_url: str) -> None:
    with LoopbackServer(Judge(delay=0.0)) as server:
        limits = RateLimits(backend=redis_url, key="unit-client", max_in_flight=4)
        client = OpenAIClient("m", base_url=server.base_url, limits=limits)
        calls = [
            client.complete(
                ChatRequest(messages=(Message(role="user", content=f"q{i}"),), temperature=0.0)
            )
            for i in range(12)
        ]
        assert len(await asyncio.gather(*calls)) == 12
        assert server.max_in_flight <= 4
        assert "redis://" not in repr(limits)
        await client.aclose()


@pytest.mark.integration
async def test_unreachable_backend_is_a_transport_error_without_the_password() -> None:
    pytest.importorskip("redis")
    url = f"redis://:s3cret@127.0.0.1:{_free_port()}/0"
    limits = RateLimits(backend=url, key="nowhere", max_in_flight=1)
    limiter = RedisRateLimiter(limits, ConcurrencyLimiter(1))
    with pytest.raises(TransportError) as info:
        await limiter.acquire()
    assert "s3cret" not in str(info.value) and "127.0.0.1" in str(info.value)
    assert "s3cret" not in repr(limiter) and "s3cret" not in repr(limits)
    await limiter.aclose()


def test_shared_backend_settings_are_validated() -> None:
    with pytest.raises(ConfigurationError, match="key"):
        RateLimits(backend="redis://localhost:6379/0")
    with pytest.raises(ConfigurationError, match="backend"):
        RateLimits(key="judge")
    with pytest.raises(ConfigurationError, match="backend"):
        RateLimits(max_in_flight=8)
    with pytest.raises(ConfigurationError, match="redis://"):
        RateLimits(backend="http://localhost:6379", key="judge")
    with pytest.raises(ConfigurationError, match="max_in_flight"):
        RateLimits(backend="redis://h", key="k", max_in_flight=0)
    with pytest.raises(ConfigurationError, match="lease_ttl"):
        RateLimits(backend="redis://h", key="k", lease_ttl=0)
    assert redact_url("redis://user:pw@host:6379/0") == "redis://user:***@host:6379/0"
    assert redact_url("redis://host:6379") == "redis://host:6379"


def test_missing_redis_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ImportError, match=r"rftjudge\[redis\]"):
        OpenAIClient(
            "m",
            base_url="http://localhost:1/v1",
            limits=RateLimits(backend="redis://localhost:6379/0", key="k"),
        )
