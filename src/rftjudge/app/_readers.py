"""Data set readers for the ``rftjudge`` commands: rows as dicts, and no row lost or invented.

A row that cannot be read — a JSONL line that is not a JSON object, a CSV row whose field count
differs from the header's — is not skipped (the rows after it would shift onto other indices,
and a resumed run would pair records with the wrong rows) and not fatal (one bad line among a
million would stop a run before anything is judged). It is yielded as a :class:`BadRow` at its own
index; :mod:`rftjudge.app.scoring` turns it into an error record naming the line.

A path that does not exist is an error naming it; the Hugging Face Hub is asked only for an
explicit ``hf:NAME`` (a typo must not become 25 seconds of Hub retries).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError

__all__ = ["BadRow", "read_rows"]


class BadRow(dict[str, Any]):
    """A row that could not be read: empty as a dict, with ``problem`` naming its line and
    ``text`` (the raw line, so that fixing it changes the row's input hash)."""

    def __init__(self, problem: str, text: str) -> None:
        super().__init__()
        self.problem = problem
        self.text = text


def read_rows(source: str | Path, *, split: str | None = None) -> Iterator[dict[str, Any]]:
    """Rows of a data set as dicts, streamed where the format allows (see the module docstring).

    ``hf:NAME`` is a Hugging Face Hub dataset (needs ``datasets``); anything else is a local path:
    a file (.jsonl/.ndjson, .json, .csv, .tsv, .parquet) or a folder written by ``save_to_disk``.
    """
    text = str(source)
    if text.startswith("hf:"):
        if not text.removeprefix("hf:").strip():
            raise ConfigurationError("hf: needs a dataset name, e.g. hf:org/name")
        return _read_hub_dataset(text.removeprefix("hf:"), split)
    path = Path(source)
    if path.is_dir():
        return _read_saved_dataset(path, split)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".ndjson"):
            return _read_jsonl(path)
        if suffix == ".json":
            return _read_json(path)
        if suffix in (".csv", ".tsv"):
            return _read_csv(path, "\t" if suffix == ".tsv" else ",")
        if suffix == ".parquet":
            return _read_parquet(path)
        raise ConfigurationError(
            f"{path}: unknown data format {suffix!r}; use .jsonl, .json, .csv, .tsv or .parquet"
        )
    if path.exists():
        raise ConfigurationError(f"{path}: not a data file or folder")
    hint = f" (a Hugging Face Hub dataset is written hf:{text})" if _looks_like_hub(text) else ""
    raise ConfigurationError(f"{text}: no such file or directory{hint}")


def _looks_like_hub(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and "." not in parts[1]


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:  # UnicodeDecodeError included
                yield BadRow(f"{path.name}: line {number}: invalid JSON ({exc})", _raw(line))
                continue
            if not isinstance(row, dict):
                problem = f"{path.name}: line {number}: expected a JSON object"
                yield BadRow(f"{problem}, got {type(row).__name__}", _raw(line))
                continue
            yield row


def _raw(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").rstrip("\r\n")


def _read_json(path: Path) -> Iterator[dict[str, Any]]:
    try:
        rows = json.loads(path.read_bytes())
    except ValueError as exc:
        raise ConfigurationError(f"{path}: invalid JSON ({exc})") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ConfigurationError(f"{path}: expected a JSON list of objects")
    yield from rows


def _read_csv(path: Path, delimiter: str) -> Iterator[dict[str, Any]]:
    """Like ``csv.DictReader``, except that a row with too many or too few fields becomes a
    :class:`BadRow` (DictReader would pad it with None or key the extras under None, and the
    row would be judged with its columns shifted)."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            yield from _csv_rows(path, csv.reader(handle, delimiter=delimiter), delimiter)
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"{path}: not UTF-8 text ({exc})") from None


def _csv_rows(path: Path, reader: Any, delimiter: str) -> Iterator[dict[str, Any]]:
    try:
        header = next(reader, None)
        while header == []:
            header = next(reader, None)
        if header is None:
            return
        number = 0
        for fields in reader:
            if not fields:
                continue  # a blank line, as DictReader skips it
            number += 1
            if len(fields) != len(header):
                line = reader.line_num
                problem = (
                    f"{path.name}: row {number} (line {line}): {len(fields)} fields where the "
                    f"header has {len(header)}"
                )
                yield BadRow(problem, delimiter.join(fields))
                continue
            yield dict(zip(header, fields, strict=True))
    except csv.Error as exc:  # the parser cannot go on (e.g. a field over the size limit)
        raise ConfigurationError(f"{path}: line {reader.line_num}: {exc}") from None


def _read_parquet(path: Path) -> Iterator[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        raise ImportError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow") from None
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        yield from batch.to_pylist()


def _datasets_module(what: str) -> Any:
    try:
        import datasets  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        raise ImportError(f"{what} needs the datasets package: pip install datasets") from None
    return datasets


def _read_saved_dataset(path: Path, split: str | None) -> Iterator[dict[str, Any]]:
    datasets = _datasets_module(f"{path}: reading a saved Hugging Face dataset")
    data = datasets.load_from_disk(str(path))
    yield from _pick_split(data, split, str(path))


def _read_hub_dataset(name: str, split: str | None) -> Iterator[dict[str, Any]]:
    datasets = _datasets_module(f"hf:{name}: loading a dataset from the Hugging Face Hub")
    data = datasets.load_dataset(name, split=split or "train")
    yield from _pick_split(data, None, name)


def _pick_split(data: Any, split: str | None, name: str) -> Iterator[dict[str, Any]]:
    if isinstance(data, Mapping):  # a DatasetDict: one split of it
        splits = list(data.keys())
        chosen = split or ("train" if "train" in splits else None)
        if chosen is None or chosen not in splits:
            raise ConfigurationError(
                f"{name}: choose a split with --split (splits: {', '.join(splits)})"
            )
        data = data[chosen]
    for row in data:
        yield dict(row)
