"""Reading a judge config file (YAML, TOML, JSON) into a validated :class:`JudgeConfig`.

Every problem is a :class:`~rftjudge.ConfigurationError` naming the file, the field and what is
wrong, raised before any request is sent.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .._datafile import check_document, read_capped
from .._errors import ConfigurationError
from .._key_variables import key_variable_problem
from ._config_schema import _TYPE_FIELDS, JudgeConfig

__all__ = ["load_config", "parse_config", "with_rubric_column"]


def load_config(path: str | Path, *, rubric_column: str | None = None) -> JudgeConfig:
    """Read and validate a judge config file (``.yaml``/``.yml``, ``.toml`` or ``.json``).

    ``rubric_column``: see :func:`parse_config`.
    """
    file = Path(path)
    try:
        text = read_capped(file)
    except OSError as exc:
        raise ConfigurationError(f"{file}: cannot read the judge config ({exc.strerror})") from None
    try:
        data = _parse_text(file, text)
    except RecursionError:  # [[[[...]]]] thousands deep: the parsers recurse
        raise ConfigurationError(f"{file}: the judge config is nested too deeply") from None
    config = parse_config(data, source=str(file), rubric_column=rubric_column)
    if config.template is not None:
        config = config.model_copy(update={"template": _resolve_template(config.template, file)})
    return config


def parse_config(
    data: object, *, source: str = "<config>", rubric_column: str | None = None
) -> JudgeConfig:
    """Validate an already-parsed config mapping; errors name ``source``, the field and the problem.

    ``rubric_column`` (``rftjudge score --rubric-column``) replaces the file's: the judge reads
    per-row rubrics from that data column, and so needs no ``criteria`` (see
    :func:`with_rubric_column`).
    """
    if not isinstance(data, Mapping):
        raise ConfigurationError(
            f"{source}: a judge config must be a mapping of fields, got {type(data).__name__}"
        )
    check_document(data, source)
    try:
        config = JudgeConfig.model_validate(dict(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"field `{'.'.join(str(p) for p in err['loc']) or '(top level)'}`: "
            f"{_pydantic_message(err)}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"{source}: {problems}") from None
    if rubric_column is not None:
        config = with_rubric_column(config, rubric_column, source=source)
    _check_combination(config, source)
    return config


def with_rubric_column(
    config: JudgeConfig, column: str, *, source: str = "<config>"
) -> JudgeConfig:
    """``config`` reading per-row rubrics from the data column ``column`` — the one setting a
    command line gives on top of a judge file, since a data set names its own columns. Only a
    rubric judge reads rubrics: any other type is an error naming it."""
    if not isinstance(column, str) or not column.strip():
        raise ConfigurationError(f"the rubric column needs a name; got {column!r}")
    if config.type != "rubric":
        raise ConfigurationError(
            f"{source}: per-row rubrics (column {column!r}) need a rubric judge (type: rubric); "
            f"this is a {config.type} judge"
        )
    return config.model_copy(update={"rubric_column": column})


def _pydantic_message(err: Mapping[str, Any]) -> str:
    if err.get("type") == "extra_forbidden":
        fields = ", ".join(sorted(JudgeConfig.model_fields))
        return f"unknown field (known fields: {fields})"
    return str(err.get("msg", "invalid value"))


def _check_combination(config: JudgeConfig, source: str) -> None:
    given = config.model_fields_set
    if config.type == "rubric" and not config.criteria and "rubric_column" not in given:
        raise ConfigurationError(
            f"{source}: field `criteria`: a rubric judge needs at least one criterion "
            "(a list of {name, description, weight}), or `rubric_column` for per-row rubrics "
            "(on the command line: --rubric-column)"
        )
    own = set(_TYPE_FIELDS[config.type])
    others = {f for fields in _TYPE_FIELDS.values() for f in fields} - own
    wrong = sorted(f for f in others if f in given)
    if wrong:
        raise ConfigurationError(
            f"{source}: field `{wrong[0]}`: not a setting of a {config.type} judge"
        )
    if config.api_key_env is not None and config.uses_local_judge:
        raise ConfigurationError(
            f"{source}: field `api_key_env`: the local judge needs no key; set provider and "
            "model to use a hosted judge"
        )
    _check_key_variable(config, source)


def _check_key_variable(config: JudgeConfig, source: str) -> None:
    if config.api_key_env is not None:
        problem = key_variable_problem(config.api_key_env, config.provider)
        if problem is not None:
            raise ConfigurationError(f"{source}: field `api_key_env`: {problem}")


def _parse_text(file: Path, text: str) -> object:
    suffix = file.suffix.lower()
    if suffix in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped, unused-ignore]
        except ImportError:
            raise ImportError(
                'reading YAML judge configs needs PyYAML: pip install "rftjudge[cli]"'
            ) from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigurationError(f"{file}: {where}invalid YAML ({problem})") from None
    if suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            try:
                import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
            except ImportError:
                raise ImportError(
                    "reading TOML judge configs on Python 3.10 needs tomli: pip install tomli"
                ) from None
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{file}: invalid TOML ({exc})") from None
    if suffix == ".json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"{file}: invalid JSON ({exc})") from None
    raise ConfigurationError(
        f"{file}: unknown judge config format {suffix or '(no suffix)'!r}; "
        "use .yaml, .yml, .toml or .json"
    )


def _resolve_template(template: str, file: Path) -> str:
    """A template file named relative to the config file is found next to it."""
    if "\n" in template or not template.endswith(".j2"):
        return template
    candidate = Path(template)
    if not candidate.is_absolute() and (file.parent / candidate).is_file():
        return str((file.parent / candidate).resolve())
    return template
