"""The ``rftjudge`` command's errors: what a user can fix becomes one line, not a traceback.

``_friendly_errors`` turns the library's errors into click's one ``Error:`` line; ``_App`` (the
command group) does the same for anything else unless ``--debug`` asks for the traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from .._errors import JudgeError
from .scoring import OutputFailed


def _one_line(text: str, limit: int = 1000) -> str:
    """An error message as one line (a validation error or a server's answer can span many)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """Problems a user can fix become one clear line, not a traceback."""
    try:
        yield
    except (JudgeError, ImportError, OutputFailed) as exc:  # row failures are results, not here
        raise click.ClickException(_one_line(str(exc))) from None


class _UsageLine(click.ClickException):
    exit_code = 2  # click's code for a usage error


class _App(click.Group):
    """The command group; any other exception becomes one line too, unless ``--debug``.

    What a user can cause (a missing file, a full disk, a file that is not UTF-8, a Hub dataset
    that does not exist) ends as one ``Error:`` line and exit code 1; ``rftjudge --debug ...`` (or
    ``RFTJUDGE_DEBUG=1``) shows the traceback instead.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # one line instead of usage + hint + error; still exit 2
            command = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            raise _UsageLine(f"{exc.format_message()} (see `{command} --help`)") from None
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            if ctx.params.get("debug") or os.environ.get("RFTJUDGE_DEBUG"):
                raise
            what = "" if isinstance(exc, OSError) else f"{type(exc).__name__}: "
            raise click.ClickException(
                _one_line(f"{what}{exc}") + " (rerun as `rftjudge --debug ...` for the traceback)"
            ) from None
