"""Whole GRPO groups across processes: a cohort reward server and the TRL function that feeds it.

Under multi-GPU training each process scores only its own slice of the batch, and TRL does not
keep a GRPO group on one process: with 4 processes and 8 completions per prompt, each process may
hold 2 of a group's completions. A group judge (:class:`~rftjudge.ListwiseJudge`, a pairwise
tournament) called per process would rank 2-completion fragments, each on its own scale — the
rewards of one group would no longer be comparable. (NeMo Gym's pairwise judge solves this by
buffering; this is the same idea.)

The cohort server collects completions by group until the group is whole, judges it **once**, and
answers every process its share:

- :func:`cohort_reward_func` (in each training process) sends the process's completions with a group
  key — a digest of the prompt, the reference, the trainer step and the call's sequence number,
  identical in every process because they call their reward functions in lock step — and the
  group size (``num_generations``). It needs only httpx.
- :func:`create_cohort_app` / :func:`serve_cohort` (one process next to the job; ``pip install
  "rftjudge[server]"``): a :class:`CohortBuffer` holds each group until ``group_size`` completions
  with its key have arrived, from any number of requests, then calls ``judge.ajudge_group`` once
  and resolves every waiting request. A group still incomplete ``deadline_s`` after its first
  completion arrived (a process died, keys disagree) is not judged: each of its completions
  abstains with an :class:`IncompleteGroupError` (kind ``"incomplete_group"``), counted and logged
  — a fragment is never ranked as if it were the group.

Running it next to a multi-GPU TRL job::

    # judge_server.py — one process, anywhere the training processes can reach
    from rftjudge import ListwiseJudge, OpenAIClient
    from rftjudge.integrations.cohort import serve_cohort

    judge = ListwiseJudge(OpenAIClient("Qwen/Qwen3-8B", base_url="http://judge:8000/v1", server="vllm"))
    serve_cohort(judge, host="127.0.0.1", port=8765, group_size=8)

    # train.py — launched with `accelerate launch --num_processes 4 train.py`
    from rftjudge.integrations.cohort import cohort_reward_func
    reward = cohort_reward_func("http://127.0.0.1:8765", num_generations=8)
    trainer = GRPOTrainer(..., reward_funcs=[reward], args=GRPOConfig(num_generations=8, ...))

Start the server first (``python judge_server.py &``); every process uses the same URL. The
server has no authentication and spends judge tokens: keep it on loopback or a private network.
When the server cannot be reached, the function abstains for the whole batch (``None``), logs it
and reports ``failure_rate`` 1 — training goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from .._errors import ConfigurationError, DeadlineExceededError, JudgeError
from .._text import as_text, completion_text, reference_text, safe_name
from ..rewards import GroupJudge, RewardFunc

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse

__all__ = [
    "CohortBuffer",
    "CohortItem",
    "IncompleteGroupError",
    "cohort_reward_func",
    "create_cohort_app",
    "group_key",
    "serve_cohort",
]

logger = logging.getLogger("rftjudge")

DEFAULT_DEADLINE_S = 120.0
_NEEDS_SERVER = (
    'the cohort reward server needs starlette and uvicorn: pip install "rftjudge[server]"'
)


class IncompleteGroupError(DeadlineExceededError):
    """The group's other completions did not arrive before the deadline: nothing was judged."""

    @property
    def kind(self) -> str:
        return "incomplete_group"


@dataclass(frozen=True)
class CohortItem:
    """One completion sent to the cohort server, with the key and size of its group."""

    key: str
    group_size: int
    prompt: str
    completion: str
    reference: str | None = None


@dataclass
class _Cohort:
    key: str
    size: int
    prompt: str
    reference: str | None
    completions: list[str] = field(default_factory=list)
    waiters: list[asyncio.Future[Any]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class CohortBuffer:
    """Collects completions by group key until each group is whole, then judges it once.

    ``submit`` may be called concurrently, by any number of callers, each with any part of any
    group; it returns one outcome per item (a reward source for ``judge.reward_of``, or the
    exception). A group is closed as soon as ``group_size`` completions share its key; further
    completions with the same key start a new group (a prompt sampled twice in a step).
    """

    def __init__(
        self,
        judge: GroupJudge,
        *,
        group_size: int | None = None,
        deadline_s: float = DEFAULT_DEADLINE_S,
    ) -> None:
        if group_size is not None and (not isinstance(group_size, int) or group_size < 1):
            raise ConfigurationError(f"group_size must be an int >= 1; got {group_size!r}")
        if not (isinstance(deadline_s, int | float) and deadline_s > 0):
            raise ConfigurationError(
                f"deadline_s must be a number of seconds > 0; got {deadline_s!r}"
            )
        if not callable(getattr(judge, "ajudge_group", None)):
            raise ConfigurationError(
                f"the cohort server needs a group judge (ajudge_group); got {type(judge).__name__}"
            )
        self.judge = judge
        self.group_size = group_size
        self.deadline_s = float(deadline_s)
        self.groups_judged = 0
        self.groups_incomplete = 0
        self._open: dict[str, _Cohort] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        """Groups waiting for completions."""
        return len(self._open)

    async def submit(self, items: Sequence[CohortItem]) -> list[Any]:
        """Outcomes for ``items``, in order, once every group they belong to is settled.

        Every item is checked before any joins a group: a bad request changes no group.
        """
        sizes = [self._size(item) for item in items]
        futures = [self._add(item, size) for item, size in zip(items, sizes, strict=True)]
        return list(await asyncio.gather(*futures))

    def _size(self, item: CohortItem) -> int:
        if self.group_size is not None and item.group_size not in (self.group_size, 0):
            raise ConfigurationError(
                f"group {item.key!r} sent with group_size={item.group_size}, but the server "
                f"judges groups of {self.group_size}"
            )
        size = self.group_size or item.group_size
        if not isinstance(size, int) or size < 1:
            raise ConfigurationError(f"group_size must be an int >= 1; got {size!r}")
        return size

    def _add(self, item: CohortItem, size: int) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        cohort = self._open.get(item.key)
        if cohort is None:
            cohort = _Cohort(item.key, size, item.prompt, item.reference)
            cohort.timer = loop.call_later(self.deadline_s, self._expire, cohort)
            self._open[item.key] = cohort
        future: asyncio.Future[Any] = loop.create_future()
        cohort.completions.append(item.completion)
        cohort.waiters.append(future)
        if cohort.reference is None and item.reference is not None:
            cohort.reference = item.reference
        if len(cohort.completions) >= cohort.size:
            del self._open[item.key]
            if cohort.timer is not None:
                cohort.timer.cancel()
            task = loop.create_task(self._judge(cohort))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return future

    async def _judge(self, cohort: _Cohort) -> None:
        try:
            outcomes: list[Any] = list(
                await self.judge.ajudge_group(cohort.prompt, cohort.completions, cohort.reference)
            )
        except Exception as exc:  # a configuration error or a bug: every caller gets it
            logger.exception("rftjudge: cohort %s could not be judged", cohort.key)
            outcomes = [exc] * len(cohort.waiters)
        self.groups_judged += 1
        for future, outcome in zip(cohort.waiters, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)

    def _expire(self, cohort: _Cohort) -> None:
        if self._open.get(cohort.key) is not cohort:
            return
        del self._open[cohort.key]
        self.groups_incomplete += 1
        stats = getattr(self.judge, "stats", None)
        failures = getattr(stats, "failures", None)
        if failures is not None:
            failures["incomplete_group"] += len(cohort.waiters)
        logger.warning(
            "rftjudge: cohort %s had %d of %d completions after %.1f s; its completions abstain",
            cohort.key,
            len(cohort.completions),
            cohort.size,
            self.deadline_s,
        )
        error = IncompleteGroupError(
            f"only {len(cohort.completions)} of the group's {cohort.size} completions arrived "
            f"within {self.deadline_s:g} s"
        )
        for future in cohort.waiters:
            if not future.done():
                future.set_result(error)

    async def aclose(self) -> None:
        """Abstain every waiting group and wait for the judging in progress."""
        for cohort in list(self._open.values()):
            if cohort.timer is not None:
                cohort.timer.cancel()
            self._expire(cohort)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def group_key(prompt: str, reference: str | None, *parts: Any) -> str:
    """The key every process computes alike for one group: a digest of its prompt, reference and
    ``parts`` (run id, trainer step, call number)."""
    text = "\x00".join([prompt, reference or "", *(str(p) for p in parts)])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


# -- the HTTP server ------------------------------------------------------------------------------


def create_cohort_app(
    judge: GroupJudge,
    *,
    group_size: int | None = None,
    deadline_s: float = DEFAULT_DEADLINE_S,
) -> Starlette:
    """An ASGI app buffering completions by group and judging whole groups (see the module doc).

    ``POST /cohort`` takes ``{"items": [{"key", "group_size", "prompt", "completion",
    "reference"}...]}`` and answers, once every group of those items is settled, ``{"rewards":
    [float | null, ...], "failed": [bool, ...], "rationales": [...], "metrics": {...}}`` in item
    order (``null`` = abstain). ``GET /health``: liveness, pending and judged group counts.
    """
    try:
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route
    except ImportError as exc:
        raise ImportError(_NEEDS_SERVER) from exc
    buffer = CohortBuffer(judge, group_size=group_size, deadline_s=deadline_s)

    async def cohort(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            items = [_item(raw) for raw in body["items"]]
        except Exception as exc:
            return JSONResponse(
                {
                    "error": f'expected {{"items": [{{"key", "group_size", "prompt", "completion", '
                    f'"reference"}}, ...]}}: {exc}'
                },
                status_code=400,
            )
        try:
            outcomes = await buffer.submit(items)
        except ConfigurationError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        rewards = [_reward(judge, o) for o in outcomes]
        return JSONResponse(
            {
                "rewards": rewards,
                "failed": [isinstance(o, BaseException) for o in outcomes],
                "rationales": [judge.rationale_of(o) for o in outcomes],
                "metrics": judge.metrics_of(outcomes) if outcomes else {},
            }
        )

    async def health(request: Request) -> JSONResponse:
        stats = getattr(judge, "stats", None)
        return JSONResponse(
            {
                "status": "ok",
                "judge": judge.name,
                "pending_groups": buffer.pending,
                "groups_judged": buffer.groups_judged,
                "groups_incomplete": buffer.groups_incomplete,
                "failures": dict(getattr(stats, "failures", {})),
            }
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await buffer.aclose()  # waiting groups abstain; judging in progress finishes

    app = Starlette(
        routes=[
            Route("/cohort", cohort, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.buffer = buffer
    return app


def serve_cohort(
    judge: GroupJudge,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    group_size: int | None = None,
    deadline_s: float = DEFAULT_DEADLINE_S,
    log_level: str = "info",
) -> None:
    """Serve :func:`create_cohort_app` with uvicorn until interrupted (loopback by default)."""
    app = create_cohort_app(judge, group_size=group_size, deadline_s=deadline_s)
    try:
        import uvicorn
    except ImportError as exc:
        raise ImportError(_NEEDS_SERVER) from exc
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def _item(raw: Mapping[str, Any]) -> CohortItem:
    key, prompt, completion = raw["key"], raw["prompt"], raw["completion"]
    if not all(isinstance(v, str) for v in (key, prompt, completion)):
        raise ValueError("key, prompt and completion must be strings")
    reference = raw.get("reference")
    size = raw.get("group_size", 0)
    if isinstance(size, bool) or not isinstance(size, int):
        raise ValueError("group_size must be an int")
    return CohortItem(key, size, prompt, completion, None if reference is None else str(reference))


def _reward(judge: GroupJudge, outcome: Any) -> float | None:
    try:
        value = judge.reward_of(outcome)
    except JudgeError:  # on_error="raise" cannot cross HTTP: the caller sees an abstention
        return None
    return None if value is None else float(value)


# -- the TRL side ---------------------------------------------------------------------------------


def cohort_reward_func(
    url: str,
    *,
    num_generations: int,
    name: str = "cohort_judge",
    reference_column: str = "reference",
    run_id: str = "",
    timeout: float = 600.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> RewardFunc:
    """A TRL reward function sending this process's completions to a cohort server at ``url``.

    ``num_generations`` must equal GRPOConfig's; ``run_id`` separates runs sharing one server;
    ``timeout`` bounds the whole exchange (the server's deadline plus judging time). Per-step
    metrics from the server (``order_sensitivity``, ``swap_consistency``, ``requests_per_group``,
    ...) are logged through TRL's ``log_metric`` as ``<name>/<metric>``, rationales through
    ``log_extra``.
    """
    if isinstance(num_generations, bool) or not isinstance(num_generations, int):
        raise ConfigurationError(f"num_generations must be an int >= 1; got {num_generations!r}")
    if num_generations < 1:
        raise ConfigurationError(f"num_generations must be an int >= 1; got {num_generations!r}")
    endpoint = url.rstrip("/") + "/cohort"
    func_name = safe_name(name, "cohort_judge")
    calls = 0

    async def reward_func(
        prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        nonlocal calls
        calls += 1  # every process calls in lock step: the same number names the same batch
        if len(prompts) != len(completions):
            raise ConfigurationError(
                f"{func_name}: got {len(prompts)} prompts but {len(completions)} completions"
            )
        references = kwargs.get(reference_column)
        state = kwargs.get("trainer_state")
        step = getattr(state, "global_step", "")
        items = []
        for index, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
            prompt_text = as_text(prompt, what="prompt")
            ref = reference_text(references[index]) if references is not None else None
            items.append(
                {
                    "key": group_key(prompt_text, ref, run_id, step, calls),
                    "group_size": num_generations,
                    "prompt": prompt_text,
                    "completion": completion_text(completion),
                    "reference": ref,
                }
            )
        try:
            async with httpx.AsyncClient(timeout=timeout, transport=transport) as http:
                response = await http.post(endpoint, json={"items": items})
            response.raise_for_status()
            answer = response.json()
            rewards = [None if r is None else float(r) for r in answer["rewards"]]
            if len(rewards) != len(items):
                raise ValueError(f"{len(rewards)} rewards for {len(items)} completions")
        except Exception as exc:  # the server is down or broken: abstain, loudly
            logger.error("rftjudge: %s: the cohort server failed (%s): abstaining", func_name, exc)
            _log(kwargs, func_name, {"failure_rate": 1.0}, None)
            return [None] * len(items)
        _log(kwargs, func_name, answer.get("metrics") or {}, answer.get("rationales"))
        return rewards

    reward_func.__name__ = func_name
    reward_func.__qualname__ = func_name
    reward_func.__doc__ = f"rftjudge cohort reward function {func_name!r} (TRL signature)."
    return reward_func


def _log(
    kwargs: Mapping[str, Any],
    name: str,
    metrics: Mapping[str, Any],
    rationales: Sequence[str] | None,
) -> None:
    log_metric: Callable[[str, float], None] | None = kwargs.get("log_metric")
    log_extra: Callable[[str, list[Any]], None] | None = kwargs.get("log_extra")
    if callable(log_metric):
        for key, value in metrics.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                log_metric(f"{name}/{key}", float(value))
    if callable(log_extra) and rationales is not None:
        log_extra(f"{name}_rationale", list(rationales))
