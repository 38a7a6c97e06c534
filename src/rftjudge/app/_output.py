"""The resumable results file of :mod:`rftjudge.app.scoring`: nothing paid for is lost.

- Records are written as ASCII JSON (``ensure_ascii=True``), one line each, with ``os.write`` on
  an ``O_APPEND`` descriptor (no buffer that a failed flush could half-write later). A kill can
  still cut the last line, but never inside a multi-byte character.
- Reading decodes each line on its own, as bytes: a cut line, a line of invalid UTF-8 (a file
  written by another tool, or before this rule) or a foreign line is skipped, and its row is judged
  again — resuming never needs hand-editing.
- A write that fails (a full disk, a lost mount) stops the run with :class:`OutputFailed`: every
  record written before stays in the file, and rerunning the same command resumes.
- :func:`rewrite` (``--sorted``) replaces the file atomically and keeps its permission bits.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = ["Appender", "OutputFailed", "encode", "latest_results", "rewrite"]

Record = dict[str, Any]


class OutputFailed(Exception):
    """Writing the results failed (``cause``: the ``OSError``): the run stopped, and every record
    written before is kept."""

    def __init__(self, path: Path, cause: OSError) -> None:
        self.path = path
        self.cause = cause
        super().__init__(
            f"stopped: cannot write {path}: {cause.strerror or cause}; the results written "
            "before are kept: make room and run the same command again to resume"
        )


def encode(record: Record) -> bytes:
    """One output line: ASCII JSON, so that a cut line never splits a character."""
    return (json.dumps(record, ensure_ascii=True, default=str) + "\n").encode("ascii")


def latest_results(out: Path) -> dict[int, Record]:
    """The newest record per row index in an output file (unreadable lines are ignored: a kill can
    leave a half-written last line, which its rerun simply replaces)."""
    results: dict[int, Record] = {}
    if not out.exists():
        return results
    with out.open("rb") as lines:
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:  # invalid JSON, or invalid UTF-8 (UnicodeDecodeError)
                continue
            if isinstance(record, dict) and isinstance(record.get("index"), int):
                results[record["index"]] = record
    return results


class Appender:
    """Append-and-sync writer; starts on a fresh line if a kill left the last one unfinished.

    Used as ``with Appender(path) as append: append(record)``; ``append`` raises
    :class:`OutputFailed` when the record cannot be written.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1

    def __enter__(self) -> Callable[[Record], None]:
        needs_newline = False
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb") as existing:
                existing.seek(-1, os.SEEK_END)
                needs_newline = existing.read(1) != b"\n"
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            if needs_newline:
                self._write(b"\n")
        except OSError as exc:
            self.__exit__()
            raise OutputFailed(self.path, exc) from exc
        return self.append

    def append(self, record: Record) -> None:
        try:
            self._write(encode(record))
        except OSError as exc:
            raise OutputFailed(self.path, exc) from exc

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def __exit__(self, *exc: object) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


def rewrite(out: Path, records: Iterable[Record]) -> None:
    """Replace ``out`` by ``records`` atomically (a temporary file, then ``os.replace``), keeping
    ``out``'s permission bits (``mkstemp`` would leave 0600)."""
    mode = stat.S_IMODE(out.stat().st_mode) if out.exists() else None
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=out.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            for record in records:
                handle.write(encode(record))
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, out)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputFailed(out, exc) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
