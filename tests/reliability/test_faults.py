"""Every provider fault, injected by a real loopback HTTP server, against the default transport.

Each fault has an expected outcome: retried within the budget (and then a real reward), or the item
abstains (``None``) / gets the neutral ``on_error`` value, counted under its kind. Never an
exception out of ``reward_batch`` / the TRL reward function (unless ``on_error="raise"``), never a
number outside [0, 1], never a stalled batch. docs/reliability.md tabulates these tests.

Retry waits run on a fake clock; only the timeout and deadline tests wait for real (fractions of a
second).
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from rftjudge import (
    ConfigurationError,
    Criterion,
    DeadlineExceededError,
    JudgeError,
    OpenAIClient,
    QuotaExceededError,
    RetryPolicy,
    RubricJudge,
    ServerError,
)
from rftjudge._sync import _PORTAL

from support.judges import fenced
from support.server import LoopbackServer, Reply

pytestmark = pytest.mark.integration

CRITERIA = [Criterion(name="quality", description="Is it good?")]
TIMEOUT = 0.25  # the client's per-attempt timeout in these tests
RETRIES = 2


def completion_body(
    content: str | None, *, finish: str = "stop", refusal: str | None = None
) -> Any:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if refusal is not None:
        message["refusal"] = refusal
    return {
        "id": "chatcmpl-fault",
        "model": "test-judge",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5},
    }


def verdict(scores: Any, **extra: Any) -> Reply:
    return Reply(body=completion_body(json.dumps({"rationale": "r", "scores": scores, **extra})))


OK = verdict({"quality": 4})  # reward 0.75 on the 1..5 scale


def error(status: int, message: str = "boom", code: str | None = None, **headers: str) -> Reply:
    body: dict[str, Any] = {"error": {"message": message, "type": "error"}}
    if code:
        body["error"]["code"] = code
    return Reply(status=status, body=body, headers=dict(headers))


def once(fault: Reply) -> Callable[[int], Reply]:
    """The fault on the first attempt, a good verdict afterwards."""
    return lambda attempt: fault if attempt == 1 else OK


def always(reply: Reply) -> Callable[[int], Reply]:
    return lambda attempt: reply


@dataclass(frozen=True)
class Fault:
    """One scripted fault: what the server answers on attempt n, and what must come of it."""

    script: Callable[[int], Reply]
    reward: float | None  # None: the item abstains
    kind: str | None  # the failure kind counted, or None
    requests: int  # HTTP requests the judge may make for it (retries + re-asks)


FAULTS: dict[str, Fault] = {
    "ok": Fault(always(OK), 0.75, None, 1),
    "429-retry-after": Fault(once(error(429, "slow down", **{"retry-after": "2"})), 0.75, None, 2),
    "429-retry-after-ms": Fault(
        once(error(429, "slow down", **{"retry-after-ms": "1500"})), 0.75, None, 2
    ),
    "429-no-header": Fault(once(error(429, "slow down")), 0.75, None, 2),
    "500": Fault(once(error(500)), 0.75, None, 2),
    "502": Fault(once(Reply(status=502, body="<html>Bad Gateway</html>")), 0.75, None, 2),
    "503": Fault(once(error(503, "loading model")), 0.75, None, 2),
    "529": Fault(once(error(529, "overloaded")), 0.75, None, 2),
    "connection-reset": Fault(once(Reply(reset=True)), 0.75, None, 2),
    "connection-dropped": Fault(once(Reply(drop=True)), 0.75, None, 2),
    "body-cut-short": Fault(
        once(Reply(body=completion_body("x" * 200), truncate=40)), 0.75, None, 2
    ),
    "200-invalid-json": Fault(once(Reply(body='{"id": "chatcmpl-1", "choi')), 0.75, None, 2),
    "200-not-a-completion": Fault(once(Reply(body={"choices": []})), 0.75, None, 2),
    "503-every-time": Fault(always(error(503)), None, "server", RETRIES + 1),
    "reset-every-time": Fault(always(Reply(reset=True)), None, "transport", RETRIES + 1),
    "read-timeout": Fault(always(Reply(delay=5.0, body=OK.body)), None, "timeout", RETRIES + 1),
    "slow-trickle": Fault(
        always(Reply(body=OK.body, trickle=0.05, chunk=4)), None, "timeout", RETRIES + 1
    ),
    "finish-length": Fault(
        always(Reply(body=completion_body('{"rationale": "the response is', finish="length"))),
        None,
        "truncated",
        2,
    ),
    "non-json-content": Fault(
        always(Reply(body=completion_body("I would rate this a 4 out of 5."))), None, "parse", 2
    ),
    "empty-content": Fault(always(Reply(body=completion_body(""))), None, "parse", 2),
    "null-content": Fault(always(Reply(body=completion_body(None))), None, "parse", 2),
    "refusal": Fault(
        always(Reply(body=completion_body(None, refusal="I can't help with that."))),
        None,
        "refusal",
        1,
    ),
    "content-filter": Fault(
        always(Reply(body=completion_body("", finish="content_filter"))), None, "refusal", 1
    ),
    "score-out-of-range": Fault(always(verdict({"quality": 9})), None, "parse", 2),
    "score-missing": Fault(always(verdict({})), None, "parse", 2),
    "scores-not-an-object": Fault(always(verdict([4])), None, "parse", 2),
    "score-wrong-type": Fault(always(verdict({"quality": "five"})), None, "parse", 2),
    "score-boolean": Fault(always(verdict({"quality": True})), None, "parse", 2),
    "score-fractional": Fault(always(verdict({"quality": 4.5})), None, "parse", 2),
    "extra-fields": Fault(
        always(verdict({"quality": 4, "bonus": 5}, confidence="high", score=99)), 0.75, None, 1
    ),
    "out-of-range-then-fixed": Fault(
        lambda n: verdict({"quality": 0}) if n == 1 else OK, 0.75, None, 2
    ),
    "400": Fault(always(error(400, "invalid request")), None, "bad_request", 1),
    "401": Fault(always(error(401, "invalid api key")), None, "authentication", 1),
    "403": Fault(always(error(403, "no access to model")), None, "authentication", 1),
    "404": Fault(always(error(404, "model not found")), None, "bad_request", 1),
    "422": Fault(always(error(422, "unprocessable")), None, "bad_request", 1),
    "quota-exhausted": Fault(
        always(error(429, "You exceeded your current quota", code="insufficient_quota")),
        None,
        "quota",
        1,
    ),
    "retry-after-too-long": Fault(
        always(error(429, "come back tomorrow", **{"retry-after": "86400"})), None, "rate_limit", 1
    ),
}


@dataclass
class FaultServer:
    """A handler that picks each item's fault from its judged response ``case:<name>``."""

    faults: dict[str, Fault]
    attempts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, payload: dict[str, Any]) -> Reply:
        user = "\n".join(m["content"] for m in payload["messages"] if m["role"] == "user")
        response = fenced(user, "RESPONSE") or ""
        name = response.removeprefix("case:")
        with self.lock:
            self.attempts[name] += 1
            attempt = self.attempts[name]
        return self.faults[name].script(attempt)


def make_judge(
    server: LoopbackServer, sleep: Any, *, timeout: float = TIMEOUT, **kwargs: Any
) -> RubricJudge:
    client = OpenAIClient(
        "test-judge",
        base_url=server.base_url,
        timeout=timeout,
        max_concurrency=64,
        retry_policy=RetryPolicy(max_retries=RETRIES, sleep=sleep),
    )
    return RubricJudge(client, criteria=CRITERIA, scale=(1, 5), **kwargs)


async def settle(judge: RubricJudge) -> None:
    await judge.client.aclose()  # type: ignore[attr-defined]


# -- one fault at a time -------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FAULTS))
async def test_fault_outcome(name: str, fake_sleep: Any) -> None:
    fault = FAULTS[name]
    handler = FaultServer({name: fault})
    with LoopbackServer(handler) as server:
        judge = make_judge(server, fake_sleep)
        rewards = await judge.areward_batch(["q"], [f"case:{name}"])
        await settle(judge)
    assert rewards == [fault.reward]
    assert handler.attempts[name] == fault.requests
    assert dict(judge.stats.failures) == ({fault.kind: 1} if fault.kind else {})


async def test_retry_after_is_honoured_and_backoff_used_without_it(fake_sleep: Any) -> None:
    names = ["429-retry-after", "429-retry-after-ms", "429-no-header"]
    delays: dict[str, list[float]] = {}
    for name in names:
        fake_sleep.delays.clear()
        with LoopbackServer(FaultServer({name: FAULTS[name]})) as server:
            judge = make_judge(server, fake_sleep)
            assert await judge.areward("q", f"case:{name}") == 0.75
            await settle(judge)
        delays[name] = list(fake_sleep.delays)
    assert delays["429-retry-after"] == [2.0]
    assert delays["429-retry-after-ms"] == [1.5]
    [backoff] = delays["429-no-header"]
    assert 0.5 * 0.75 <= backoff <= 0.5  # first backoff step, with jitter


async def test_connection_errors_are_not_reported_as_timeouts(fake_sleep: Any) -> None:
    """httpx-aiohttp maps every connection error onto ConnectTimeout; the transport undoes that."""
    with LoopbackServer(FaultServer({"reset-every-time": FAULTS["reset-every-time"]})) as server:
        judge = make_judge(server, fake_sleep, on_error="raise")
        with pytest.raises(JudgeError) as caught:
            await judge.areward("q", "case:reset-every-time")
        await settle(judge)
    assert caught.value.kind == "transport"
    assert "timed out" not in str(caught.value)


async def test_connection_refused_is_a_transport_failure(fake_sleep: Any) -> None:
    with LoopbackServer(FaultServer({})) as server:
        url = server.base_url
    # the server is gone: nothing listens on that port any more
    client = OpenAIClient(
        "m", base_url=url, retry_policy=RetryPolicy(max_retries=1, sleep=fake_sleep)
    )
    judge = RubricJudge(client, criteria=CRITERIA)
    assert await judge.areward("q", "an answer") is None
    assert dict(judge.stats.failures) == {"transport": 1}
    assert client.stats.retries == 1
    await client.aclose()


@pytest.mark.parametrize("name", ["503-every-time", "reset-every-time", "finish-length", "401"])
async def test_neutral_value_and_raise(name: str, fake_sleep: Any) -> None:
    fault = FAULTS[name]
    with LoopbackServer(FaultServer({name: fault})) as server:
        neutral = make_judge(server, fake_sleep, on_error=0.5)
        assert await neutral.areward_batch(["q"], [f"case:{name}"]) == [0.5]
        raising = make_judge(server, fake_sleep, on_error="raise")
        with pytest.raises(JudgeError) as caught:
            await raising.areward_batch(["q"], [f"case:{name}"])
        await settle(neutral)
        await settle(raising)
    assert caught.value.kind == fault.kind


async def test_quota_error_carries_its_evidence(fake_sleep: Any) -> None:
    with LoopbackServer(FaultServer({"quota-exhausted": FAULTS["quota-exhausted"]})) as server:
        judge = make_judge(server, fake_sleep, on_error="raise")
        with pytest.raises(QuotaExceededError) as caught:
            await judge.areward("q", "case:quota-exhausted")
        await settle(judge)
    assert caught.value.status_code == 429 and caught.value.error_code == "insufficient_quota"


# -- a batch with every fault at once ------------------------------------------------------------

HANG = Fault(always(Reply(delay=30.0, body=OK.body)), None, "deadline", 1)
MIX = [*FAULTS, "master-key", "retry-after-30s"]
MIX_FAULTS = {
    **FAULTS,
    # within the 60 s cap, so the client waits — for real: only the batch deadline stops it
    "retry-after-30s": Fault(
        always(error(429, "slow down", **{"retry-after": "30"})), None, "deadline", 1
    ),
}
DEADLINE = 1.5  # > (RETRIES + 1) * TIMEOUT, so that read timeouts fail as timeouts first


class HybridSleep:
    """The fake clock, except that waits of 10 s and more (a server's Retry-After) are real."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if seconds >= 10:
            await asyncio.sleep(seconds)


def mix_inputs() -> tuple[list[str], list[str]]:
    responses = [":" if name == "master-key" else f"case:{name}" for name in MIX]
    return ["the question"] * len(responses), responses


def expected_mix() -> tuple[list[float | None], Counter[str]]:
    rewards: list[float | None] = []
    kinds: Counter[str] = Counter()
    for name in MIX:
        if name == "master-key":
            rewards.append(0.0)  # the guard fails it: no judge call, not a failure
            continue
        fault = MIX_FAULTS[name]
        rewards.append(fault.reward)
        if fault.kind:
            kinds[fault.kind] += 1
    return rewards, kinds


async def test_mixed_fault_batch_one_result_per_input_in_order() -> None:
    fake_sleep = HybridSleep()
    handler = FaultServer(MIX_FAULTS)
    prompts, responses = mix_inputs()
    expected, kinds = expected_mix()
    with LoopbackServer(handler) as server:
        judge = make_judge(server, fake_sleep, batch_deadline=DEADLINE)
        started = time.monotonic()
        rewards = await judge.areward_batch(prompts, responses)
        elapsed = time.monotonic() - started
        await settle(judge)
        assert await _eventually(lambda: server.disconnects >= 2 * (RETRIES + 1))
    assert len(rewards) == len(MIX)
    assert rewards == expected
    assert all(r is None or (math.isfinite(r) and 0.0 <= r <= 1.0) for r in rewards)
    assert judge.stats.failures == kinds
    assert judge.stats.guarded == {"no_content": 1}
    assert elapsed < DEADLINE + 1.0  # the hanging item did not stall the batch
    assert "master-key" not in handler.attempts  # the guard made no judge call


async def test_mixed_fault_batch_through_the_trl_reward_function() -> None:
    """What TRL sees: one float|None per completion, failure counts per kind via log_metric."""
    fake_sleep = HybridSleep()
    handler = FaultServer(MIX_FAULTS)
    prompts, responses = mix_inputs()
    expected, kinds = expected_mix()
    logged: dict[str, float] = {}
    with LoopbackServer(handler) as server:
        judge = make_judge(server, fake_sleep, batch_deadline=DEADLINE, name="judge")
        reward_func = judge.as_reward_func()
        rewards = await reward_func(
            prompts=prompts,
            completions=responses,
            log_metric=lambda key, value: logged.__setitem__(key, value),
        )
        await settle(judge)
    assert rewards == expected
    for kind, count in kinds.items():
        assert logged[f"judge/failures/{kind}"] == count
    assert logged["judge/failure_rate"] == pytest.approx(sum(kinds.values()) / len(MIX))
    assert logged["judge/guard_rate"] == pytest.approx(1 / len(MIX))
    assert all(k.startswith("judge/") for k in logged)


async def test_failure_series_continue_with_zeros(fake_sleep: Any) -> None:
    """TRL averages each logged metric over the steps it was logged in: a kind seen once must be
    logged (as 0) in later batches too, or its series would never come down."""
    logged: dict[str, float] = {}

    def log(key: str, value: float) -> None:
        logged[key] = value

    with LoopbackServer(FaultServer(FAULTS)) as server:
        judge = make_judge(server, fake_sleep, name="judge")
        reward_func = judge.as_reward_func()
        await reward_func(prompts=["q"], completions=["case:401"], log_metric=log)
        assert logged["judge/failures/authentication"] == 1
        await reward_func(prompts=["q"], completions=["case:ok"], log_metric=log)
        await settle(judge)
    assert logged["judge/failures/authentication"] == 0
    assert logged["judge/failure_rate"] == 0


# -- deadlines -----------------------------------------------------------------------------------


async def test_deadline_cancels_and_awaits_unfinished_items(fake_sleep: Any) -> None:
    """Only the deadline can end the hung item: the client's timeout (30 s) is far beyond it, so
    there is exactly one attempt to cancel whatever the machine's load (a per-attempt timeout
    close to the deadline made the number of attempts, and of disconnects, a race); the deadline
    leaves the loopback "ok" item seconds to finish."""
    faults = {"ok": FAULTS["ok"], "hang": HANG}
    with LoopbackServer(FaultServer(faults)) as server:
        judge = make_judge(server, fake_sleep, on_error="raise", timeout=30.0)
        before = asyncio.all_tasks()
        started = time.monotonic()
        outcomes = await judge.ajudge_batch(
            ["q"] * 3, ["case:ok", "case:hang", "case:hang"], deadline=2.0
        )
        elapsed = time.monotonic() - started
        assert 2.0 <= elapsed < 25.0  # ended by the deadline, not by the 30 s hang
        assert asyncio.all_tasks() == before  # nothing left running in the background
        assert await _eventually(lambda: server.disconnects == 1)  # the hung request was closed
        assert server.disconnects == 1 and len(server.requests) == 2  # one attempt each
        with pytest.raises(DeadlineExceededError, match=r"deadline of 0\.2s"):
            await judge.areward_batch(["q"], ["case:hang"], deadline=0.2)
        await settle(judge)
    assert not isinstance(outcomes[0], BaseException) and outcomes[0].score == 0.75
    assert isinstance(outcomes[1], DeadlineExceededError) and outcomes[1].kind == "deadline"
    assert outcomes[2] is outcomes[1]  # identical items share one judgment
    assert judge.stats.failures["deadline"] == 2


async def test_judge_default_deadline_and_per_call_override(fake_sleep: Any) -> None:
    calls = {"n": 0}

    async def slow(payload: dict[str, Any]) -> Reply:
        calls["n"] += 1
        await asyncio.sleep(0.4)
        return OK

    with LoopbackServer(slow) as server:
        judge = make_judge(server, fake_sleep, timeout=5.0, batch_deadline=0.1)
        assert await judge.areward_batch(["q"], ["a"]) == [None]
        assert await judge.areward_batch(["q"], ["b"], deadline=math.inf) == [0.75]
        assert judge.reward_batch(["q"], ["c"], deadline=2.0) == [0.75]
        await settle(judge)
    assert judge.stats.failures == {"deadline": 1}


# -- cancellation --------------------------------------------------------------------------------


async def test_cancelling_a_batch_closes_its_connections_and_leaves_no_tasks(
    fake_sleep: Any,
) -> None:
    faults = {f"hang{i}": HANG for i in range(4)}
    with LoopbackServer(FaultServer(faults)) as server:
        judge = make_judge(server, fake_sleep, timeout=30.0)
        before = asyncio.all_tasks()
        task = asyncio.ensure_future(
            judge.areward_batch(["q"] * 4, [f"case:{name}" for name in faults])
        )
        assert await _eventually(lambda: server.in_flight == 4)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert asyncio.all_tasks() == before
        assert await _eventually(lambda: server.disconnects == 4)
        assert judge.stats.failures == {}  # a cancelled batch is not a judge failure
        await settle(judge)


def test_keyboard_interrupt_in_a_sync_batch_cancels_the_work(fake_sleep: Any) -> None:
    """Ctrl-C while ``reward_batch`` waits: the portal's tasks are cancelled and unwound first."""
    faults = {f"hang{i}": HANG for i in range(3)}
    with LoopbackServer(FaultServer(faults)) as server:
        judge = make_judge(server, fake_sleep, timeout=30.0)
        baseline = _portal_tasks()
        main = threading.main_thread().ident
        assert main == threading.get_ident()

        def interrupt_when_in_flight() -> None:
            for _ in range(1000):
                if server.in_flight == 3:
                    break
                time.sleep(0.005)
            assert main is not None
            signal.pthread_kill(main, signal.SIGINT)

        threading.Thread(target=interrupt_when_in_flight, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            judge.reward_batch(["q"] * 3, [f"case:{name}" for name in faults])
        # the cancelled work has unwound by the time the interrupt reaches us
        assert _portal_tasks() == baseline
        deadline = time.monotonic() + 5
        while server.disconnects < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.disconnects == 3
        judge.client.close()  # type: ignore[attr-defined]


def _portal_tasks() -> int:
    async def count() -> int:
        return len(asyncio.all_tasks()) - 1  # minus this one

    loop = _PORTAL.loop()
    return asyncio.run_coroutine_threadsafe(count(), loop).result(5)


async def test_a_bug_in_one_item_cancels_its_siblings(fake_sleep: Any) -> None:
    """A configuration error (bad input) is raised, but only after the other calls are stopped."""
    with LoopbackServer(FaultServer({"hang": HANG})) as server:
        judge = make_judge(server, fake_sleep, timeout=30.0)
        before = asyncio.all_tasks()
        with pytest.raises(ConfigurationError, match="response: expected a string"):
            await judge.areward_batch(["q", "q"], ["case:hang", [object()]])
        assert asyncio.all_tasks() == before
        assert await _eventually(lambda: server.in_flight == 0)
        await settle(judge)


def test_server_error_classes_are_retried_by_status() -> None:
    """529 (overloaded) and any 5xx are ServerErrors (retried); the table above relies on it."""
    client = OpenAIClient("m", base_url="http://127.0.0.1:9/v1")
    for status in (500, 502, 503, 504, 529):
        assert isinstance(client.error_from_response(status, None, "", {}), ServerError)


async def _eventually(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()
