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

Start the server first (``python judge_server.py &``); every process uses the same URL. Beyond
loopback, give the server and every process one token (``token=`` or ``$RFTJUDGE_SERVER_TOKEN``):
requests without it are refused, and the group keys become HMACs under it, so a third party can
neither reach the server nor predict (and fill) a group. A key already open for another prompt or
reference is refused, and requests are capped like the OpenRLHF server's
(:mod:`rftjudge.integrations._serving`), open groups included.
When the server cannot be reached, the function abstains for the whole batch (``None``), logs it
and reports ``failure_rate`` 1 — training goes on.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from .._errors import ConfigurationError, JudgeError
from .._text import as_text, completion_text, reference_text, safe_name
from ..rewards import GroupJudge, RewardFunc
from ._cohort_buffer import (
    DEFAULT_DEADLINE_S,
    CohortBuffer,
    CohortFullError,
    CohortItem,
    IncompleteGroupError,
)
from ._serving import (
    TOKEN_ENV,
    RequestRejected,
    ServerLimits,
    TokenGate,
    authorized,
    read_json,
    resolve_token,
    run_server,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse

__all__ = [
    "CohortBuffer",
    "CohortFullError",
    "CohortItem",
    "IncompleteGroupError",
    "ServerLimits",
    "cohort_reward_func",
    "create_cohort_app",
    "group_key",
    "serve_cohort",
]

logger = logging.getLogger("rftjudge")

_EXPECTED = 'expected {"items": [{"key", "group_size", "prompt", "completion", "reference"}, ...]}'
_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_NEEDS_SERVER = (
    'the cohort reward server needs starlette and uvicorn: pip install "rftjudge[server]"'
)


def group_key(prompt: str, reference: str | None, *parts: Any, secret: str | None = None) -> str:
    """The key every process computes alike for one group: a digest of its prompt, reference and
    ``parts`` (run id, trainer step, call number) — an HMAC under ``secret`` (the server token)
    when given, which no one without the secret can predict."""
    text = "\x00".join([prompt, reference or "", *(str(p) for p in parts)]).encode()
    if secret:
        return hmac.new(secret.encode(), text, hashlib.sha256).hexdigest()[:32]
    return hashlib.sha256(text).hexdigest()[:24]


# -- the HTTP server ------------------------------------------------------------------------------


def create_cohort_app(
    judge: GroupJudge,
    *,
    group_size: int | None = None,
    deadline_s: float = DEFAULT_DEADLINE_S,
    token: str | None = None,
    limits: ServerLimits | None = None,
) -> Starlette:
    """An ASGI app buffering completions by group and judging whole groups (see the module doc).

    ``POST /cohort`` takes ``{"items": [{"key", "group_size", "prompt", "completion",
    "reference"}...]}`` and answers, once every group of those items is settled, ``{"rewards":
    [float | null, ...], "failed": [bool, ...], "rationales": [...], "metrics": {...}}`` in item
    order (``null`` = abstain). ``GET /health``: liveness, pending and judged group counts.
    ``token`` (default ``$RFTJUDGE_SERVER_TOKEN``) and ``limits`` as for the OpenRLHF server.
    """
    try:
        from starlette.applications import Starlette
        from starlette.middleware import Middleware
        from starlette.responses import JSONResponse
        from starlette.routing import Route
    except ImportError as exc:
        raise ImportError(_NEEDS_SERVER) from exc
    token = resolve_token(token)
    limits = limits if limits is not None else ServerLimits()
    buffer = CohortBuffer(
        judge, group_size=group_size, deadline_s=deadline_s, max_open_groups=limits.max_open_groups
    )

    async def cohort(request: Request) -> JSONResponse:
        try:
            body = await read_json(request.stream, limits)
            raw_items = body["items"]
            limits.check_list(raw_items, "items")
            items = [_item(raw, limits) for raw in raw_items]
        except RequestRejected as exc:
            if exc.status != 400:
                return JSONResponse({"error": str(exc)}, status_code=exc.status)
            return JSONResponse({"error": f"{_EXPECTED}: {exc}"}, status_code=400)
        except Exception as exc:
            return JSONResponse({"error": f"{_EXPECTED}: {exc}"}, status_code=400)
        try:
            outcomes = await buffer.submit(items)
        except ConfigurationError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except CohortFullError as exc:
            alone = len({item.key for item in items}) > limits.max_open_groups
            return JSONResponse({"error": str(exc)}, status_code=413 if alone else 503)
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
        if not authorized(request.scope, token):
            return JSONResponse({"status": "ok"})
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
        middleware=[Middleware(TokenGate, token=token, limits=limits)],
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
    token: str | None = None,
    limits: ServerLimits | None = None,
) -> None:
    """Serve :func:`create_cohort_app` with uvicorn until interrupted (loopback by default; beyond
    it pass a ``token`` — or set ``$RFTJUDGE_SERVER_TOKEN`` — or get a loud warning)."""
    token = resolve_token(token)
    limits = limits if limits is not None else ServerLimits()
    app = create_cohort_app(
        judge, group_size=group_size, deadline_s=deadline_s, token=token, limits=limits
    )
    try:
        import uvicorn
    except ImportError as exc:
        raise ImportError(_NEEDS_SERVER) from exc
    run_server(
        app,
        host=host,
        port=port,
        log_level=log_level,
        token=token,
        limits=limits,
        what="cohort reward server",
        uvicorn=uvicorn,
    )


def _item(raw: Mapping[str, Any], limits: ServerLimits) -> CohortItem:
    key, prompt, completion = raw["key"], raw["prompt"], raw["completion"]
    if not all(isinstance(v, str) for v in (key, prompt, completion)):
        raise ValueError("key, prompt and completion must be strings")
    if not _KEY.fullmatch(key):
        raise ValueError("a key is 1 to 128 letters, digits, _ . : or -")
    reference = raw.get("reference")
    for text in (prompt, completion, reference):
        limits.check_text(text, "items")
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
    token: str | None = None,
) -> RewardFunc:
    """A TRL reward function sending this process's completions to a cohort server at ``url``.

    ``num_generations`` must equal GRPOConfig's; ``run_id`` separates runs sharing one server;
    ``timeout`` bounds the whole exchange (the server's deadline plus judging time). Per-step
    metrics from the server (``order_sensitivity``, ``swap_consistency``, ``requests_per_group``,
    ...) are logged through TRL's ``log_metric`` as ``<name>/<metric>``, rationales through
    ``log_extra``. ``token`` (default ``$RFTJUDGE_SERVER_TOKEN``): the server's token, sent as
    ``Authorization: Bearer`` and used as the HMAC secret of the group keys.
    """
    token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
    headers = {"authorization": f"Bearer {token}"} if token else {}
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
                    "key": group_key(prompt_text, ref, run_id, step, calls, secret=token),
                    "group_size": num_generations,
                    "prompt": prompt_text,
                    "completion": completion_text(completion),
                    "reference": ref,
                }
            )
        try:
            async with httpx.AsyncClient(
                timeout=timeout, transport=transport, headers=headers
            ) as http:
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
