"""OpenRLHF: a judge as a ``reward_func`` file or as a remote reward server.

OpenRLHF 0.11 takes ``--reward.remote_url`` (``--remote_rm_url`` up to 0.10.1) as either

- a ``.py`` file defining ``reward_func(queries, prompts, labels, **kwargs)``, called in a thread with
  one sample per call → :func:`make_reward_func` (see ``examples/openrlhf_reward.py``), or
- the URL of an HTTP server, POSTed ``{"query": [q], "prompts": [p], "labels": [l]}`` per sample
  (180 s timeout, 5 tries) → :func:`create_app` / :func:`serve` (``pip install "rftjudge[server]"``).

Both answer ``{"rewards": [...], "scores": [...], "extra_logs": {...}}``. ``query`` is the decoded
prompt + response *with special tokens*: the response is what follows the prompt string (see
:func:`response_of`), minus a trailing EOS token string when ``eos_token`` is given. ``labels`` are
the reference answers (``""`` when the dataset has no label column: judged without a reference).

On a shared network the server takes a token (``token=``, ``rftjudge serve openrlhf --token`` or
``$RFTJUDGE_SERVER_TOKEN``; OpenRLHF sends it as ``--reward.remote_url
http://HOST:PORT/get_reward?token=...``), caps what a request may make it read and hold, and gives
each request a fair share of the judge (see :mod:`rftjudge.integrations._serving`).

OpenRLHF cannot leave a sample out (a failed request is only logged and the sample gets no reward),
so a failed judgment becomes ``on_error`` — a number you choose, for the reward, the score and
every criterion — and ``extra_logs["judge_failed"]`` flags it. The server always answers: judgments
unfinished at ``deadline_s`` (default 120 s, well within OpenRLHF's 180 s) get ``on_error`` too.

Nothing here imports OpenRLHF; starlette and uvicorn are imported only by the server functions.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from .._errors import ConfigurationError
from .._sync import run_sync
from ..judges.base import OnError
from ._common import (
    ScoringJudge,
    criterion_names,
    criterion_values,
    judge_within,
    resolve_fallback,
    settle,
)
from ._rubrics import split_label
from ._serving import (
    FairShare,
    RequestRejected,
    ServerLimits,
    TokenGate,
    authorized,
    judge_slots,
    read_json,
    resolve_token,
    run_server,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse

__all__ = [
    "COMMON_EOS_TOKENS",
    "ServerLimits",
    "create_app",
    "make_reward_func",
    "response_of",
    "serve",
]

logger = logging.getLogger("rftjudge")

DEFAULT_DEADLINE_S = 120.0
_NEEDS_SERVER = (
    'the OpenRLHF reward server needs starlette and uvicorn: pip install "rftjudge[server]"'
)
COMMON_EOS_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "</s>", "<end_of_turn>")
"""EOS token strings ``rftjudge serve openrlhf`` strips when given no ``--eos-token``."""
_TAIL = 64  # characters of the prompt's end used to find it in a left-truncated query

PromptText = Callable[[str], str]


def response_of(query: str, prompt: str, eos_token: str | Sequence[str] | None = None) -> str:
    """The response part of an OpenRLHF ``query`` (decoded prompt + response + EOS).

    The prompt string is looked up at the start of the query, then anywhere in it (a BOS token
    may precede it), then by its last characters (OpenRLHF left-truncates long prompts); without a
    match the whole query is taken. Trailing EOS token strings (``eos_token``) are removed.
    """
    response = query
    if prompt:
        if query.startswith(prompt):
            response = query[len(prompt) :]
        elif (at := query.find(prompt)) >= 0:
            response = query[at + len(prompt) :]
        else:
            tail = prompt[-_TAIL:]
            at = query.find(tail)
            if at >= 0:
                response = query[at + len(tail) :]
            else:
                logger.warning(
                    "rftjudge: OpenRLHF query does not contain its prompt; judging it all"
                )
    tokens = [eos_token] if isinstance(eos_token, str) else list(eos_token or ())
    tokens = [t for t in tokens if t]
    stripped = True
    while stripped:
        stripped = False
        response = response.rstrip()
        for token in tokens:
            if response.endswith(token):
                response = response[: -len(token)]
                stripped = True
    return response


class _Scorer:
    """OpenRLHF's lists → judge → OpenRLHF's answer; shared by the file adapter and the server."""

    def __init__(
        self,
        judge: ScoringJudge,
        *,
        on_error: OnError | None,
        eos_token: str | Sequence[str] | None,
        deadline_s: float | None,
        prompt_text: PromptText | None,
    ) -> None:
        if deadline_s is not None and not deadline_s > 0:
            raise ConfigurationError(f"deadline_s must be > 0 seconds or None; got {deadline_s!r}")
        if prompt_text is not None and not callable(prompt_text):
            raise ConfigurationError("prompt_text must be a callable str -> str")
        self.judge = judge
        fallback = resolve_fallback(judge, on_error, where="OpenRLHF", allow_raise=False)
        assert fallback != "raise"
        self.fallback = float(fallback)
        self.eos_token = eos_token
        self.deadline_s = deadline_s
        self.prompt_text = prompt_text
        self.criteria = criterion_names(judge)
        if "judge_failed" in self.criteria:
            raise ConfigurationError('a criterion named "judge_failed" clashes with extra_logs')

    async def score(
        self,
        queries: Sequence[Any],
        prompts: Sequence[Any] | None,
        labels: Sequence[Any] | None,
        *,
        gate: Callable[[], contextlib.AbstractAsyncContextManager[None]] | None = None,
    ) -> dict[str, Any]:
        n = len(queries)
        prompt_list = _padded(prompts, n, "")
        label_list = _padded(labels, n, "")
        responses = [
            response_of(str(q), str(p or ""), self.eos_token)
            for q, p in zip(queries, prompt_list, strict=True)
        ]
        questions = [str(p or "") for p in prompt_list]
        if self.prompt_text is not None:
            questions = [self.prompt_text(q) for q in questions]
        references = [
            split_label(self.judge, label, i) or None for i, label in enumerate(label_list)
        ]
        outcomes = await judge_within(
            self.judge, questions, responses, references, timeout=self.deadline_s, gate=gate
        )
        rewards: list[float] = []
        extra: dict[str, list[float]] = {"judge_failed": []}
        extra.update({name: [] for name in self.criteria})
        for outcome in outcomes:
            value, failed = settle(self.judge, outcome, self.fallback)
            rewards.append(value)
            extra["judge_failed"].append(1.0 if failed else 0.0)
            for name, v in criterion_values(self.criteria, outcome, failed, value).items():
                extra[name].append(v)
        return {"rewards": rewards, "scores": list(rewards), "extra_logs": extra}

    def neutral(self, n: int) -> dict[str, Any]:
        """The answer when even the scoring above failed (a bug): every sample flagged."""
        extra = {"judge_failed": [1.0] * n, **{name: [self.fallback] * n for name in self.criteria}}
        return {"rewards": [self.fallback] * n, "scores": [self.fallback] * n, "extra_logs": extra}


def _padded(values: Sequence[Any] | None, n: int, pad: Any) -> list[Any]:
    items = list(values) if values is not None else []
    if len(items) != n:
        logger.warning("rftjudge: OpenRLHF sent %d values for %d queries", len(items), n)
    return (items + [pad] * n)[:n]


def make_reward_func(
    judge: ScoringJudge,
    *,
    on_error: OnError | None = None,
    eos_token: str | Sequence[str] | None = None,
    deadline_s: float | None = None,
    prompt_text: PromptText | None = None,
) -> Callable[..., dict[str, Any]]:
    """OpenRLHF's ``reward_func(queries, prompts, labels, **kwargs) -> dict`` for ``judge``.

    OpenRLHF calls it positionally in a worker thread; it blocks while the judge calls run on
    rftjudge's portal loop. ``on_error`` must end up a number (the judge's numeric ``on_error`` by
    default). ``eos_token``: the EOS token string(s) to strip from the end of each response.
    ``deadline_s``: an optional time limit per call. ``prompt_text``: maps the chat-templated prompt
    to the text the judge sees (default: as is).
    """
    scorer = _Scorer(
        judge,
        on_error=on_error,
        eos_token=eos_token,
        deadline_s=deadline_s,
        prompt_text=prompt_text,
    )

    def reward_func(
        queries: Sequence[Any],
        prompts: Sequence[Any] | None = None,
        labels: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        return run_sync(scorer.score(list(queries), prompts, labels))

    return reward_func


# -- the HTTP reward server -----------------------------------------------------------------------


def create_app(
    judge: ScoringJudge,
    *,
    on_error: OnError | None = None,
    eos_token: str | Sequence[str] | None = None,
    deadline_s: float = DEFAULT_DEADLINE_S,
    prompt_text: PromptText | None = None,
    token: str | None = None,
    limits: ServerLimits | None = None,
) -> Starlette:
    """An ASGI app speaking OpenRLHF's remote reward protocol.

    Routes: ``POST /get_reward`` and ``POST /`` (the protocol), ``GET /health`` (liveness, judge
    name and failure counters). Empty lists get empty lists back. A body that is not a JSON object
    with a ``query`` list gets HTTP 400; anything else gets rewards — judgments that fail or miss
    ``deadline_s`` get ``on_error`` and ``extra_logs["judge_failed"] = 1``.

    ``token`` (default ``$RFTJUDGE_SERVER_TOKEN``): required from every client (HTTP 401 without
    it; ``/health`` then says only ``ok``). ``limits``: :class:`ServerLimits` (413 for a body, list
    or string over its cap, 408 for a body that does not arrive in time).
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
    fair = FairShare(judge_slots(judge))
    requests = itertools.count()
    scorer = _Scorer(
        judge,
        on_error=on_error,
        eos_token=eos_token,
        deadline_s=deadline_s,
        prompt_text=prompt_text,
    )

    async def get_reward(request: Request) -> JSONResponse:
        try:
            body = await read_json(request.stream, limits)
            queries = body.get("query") if isinstance(body, dict) else None
            if not isinstance(queries, list):
                raise RequestRejected(
                    400,
                    'expected a JSON object {"query": [...], "prompts": [...], "labels": [...]}',
                )
            prompts, labels = body.get("prompts"), body.get("labels")
            for name, values in (("query", queries), ("prompts", prompts), ("labels", labels)):
                limits.check_list(values, name)
        except RequestRejected as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        peer, number = request.client.host if request.client else "", next(requests)
        try:
            answer = await scorer.score(
                queries,
                prompts if isinstance(prompts, list) else None,
                labels if isinstance(labels, list) else None,
                gate=lambda: fair.slot(peer, number),
            )
        except Exception:  # a bug must not cost OpenRLHF its rewards: answer, flagged
            logger.exception("rftjudge: OpenRLHF reward request failed")
            answer = scorer.neutral(len(queries))
        return JSONResponse(answer)

    async def health(request: Request) -> JSONResponse:
        if not authorized(request.scope, token):
            return JSONResponse({"status": "ok"})
        stats = getattr(judge, "stats", None)
        return JSONResponse(
            {
                "status": "ok",
                "judge": judge.name,
                "judgments": getattr(stats, "judgments", 0),
                "failures": dict(getattr(stats, "failures", {})),
            }
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        # The judge's connection pool for this server's event loop dies with the loop: close it.
        aclose = getattr(getattr(judge, "client", None), "aclose", None)
        if callable(aclose):
            await aclose()

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/get_reward", get_reward, methods=["POST"]),
            Route("/", get_reward, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ],
        middleware=[Middleware(TokenGate, token=token, limits=limits)],
    )


def serve(
    judge: ScoringJudge,
    host: str = "127.0.0.1",
    port: int = 5000,
    *,
    on_error: OnError | None = None,
    eos_token: str | Sequence[str] | None = None,
    deadline_s: float = DEFAULT_DEADLINE_S,
    prompt_text: PromptText | None = None,
    log_level: str = "info",
    token: str | None = None,
    limits: ServerLimits | None = None,
) -> None:
    """Serve :func:`create_app` with uvicorn until interrupted (the ``rftjudge serve openrlhf`` entry).

    Binds to loopback by default; for trainers on other machines pass ``host="0.0.0.0"`` and a
    ``token`` (or ``$RFTJUDGE_SERVER_TOKEN``): without one the server spends judge tokens for anyone
    who reaches it, and says so loudly at start.
    """
    token = resolve_token(token)
    limits = limits if limits is not None else ServerLimits()
    app = create_app(
        judge,
        on_error=on_error,
        eos_token=eos_token,
        deadline_s=deadline_s,
        prompt_text=prompt_text,
        token=token,
        limits=limits,
    )
    run_server(
        app,
        host=host,
        port=port,
        log_level=log_level,
        token=token,
        limits=limits,
        what="OpenRLHF reward server",
        uvicorn=_uvicorn(),
    )


def _uvicorn() -> Any:
    try:
        import uvicorn
    except ImportError as exc:
        raise ImportError(_NEEDS_SERVER) from exc
    return uvicorn
