"""OpenAI grader configs as validated models: the JSON a team already has, accepted unchanged.

Fields follow openai-python's ``openai/types/graders/*.py`` (2.54) and the graders guide; where the
two disagree both spellings are accepted:

- ``string_check.operation``: the types say ``eq | ne | like | ilike``, the guide also ``neq``;
- ``text_similarity.pass_threshold`` and ``score_model.pass_threshold``: in the guide (and the
  Evals types), not in the grader types — optional here;
- ``multi.graders``: the types declare one grader, the guide's examples a dict of named graders;
- ``sampling_params.max_completions_tokens`` (the types' spelling) or ``max_completion_tokens``
  (Chat Completions' spelling).

Unknown fields are rejected, naming the field, as ``/graders/validate`` does: a typo in a grader
that runs for days must not silently become a default.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from .._errors import ConfigurationError

__all__ = [
    "AnyGrader",
    "GraderConfig",
    "LabelModelGrader",
    "MultiGrader",
    "PythonGrader",
    "SamplingParams",
    "ScoreModelGrader",
    "StringCheckGrader",
    "TextSimilarityGrader",
    "parse_grader",
]

SIMILARITY_METRICS = (
    "cosine",
    "fuzzy_match",
    "bleu",
    "gleu",
    "meteor",
    "rouge_1",
    "rouge_2",
    "rouge_3",
    "rouge_4",
    "rouge_5",
    "rouge_l",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _GraderBase(_Strict):
    name: str = ""
    # Evals' testing criteria carry an id; it means nothing to a grader run.
    id: str | None = Field(default=None, exclude=True)


class StringCheckGrader(_GraderBase):
    type: Literal["string_check"]
    input: str
    reference: str
    operation: Literal["eq", "ne", "neq", "like", "ilike"]


class TextSimilarityGrader(_GraderBase):
    type: Literal["text_similarity"]
    input: str
    reference: str
    evaluation_metric: Literal[
        "cosine",
        "fuzzy_match",
        "bleu",
        "gleu",
        "meteor",
        "rouge_1",
        "rouge_2",
        "rouge_3",
        "rouge_4",
        "rouge_5",
        "rouge_l",
    ]
    pass_threshold: float | None = None


class SamplingParams(_Strict):
    seed: int | None = None
    top_p: float | None = None
    temperature: float | None = None
    max_completions_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    reasoning_effort: str | None = None

    @property
    def max_tokens(self) -> int | None:
        return self.max_completions_tokens or self.max_completion_tokens


class InputMessage(_Strict):
    """One templated message: content is a string, one content part, or a list of parts."""

    role: Literal["user", "assistant", "system", "developer"]
    content: str | dict[str, Any] | list[str | dict[str, Any]]
    type: Literal["message"] | None = None

    @model_validator(mode="after")
    def _known_parts(self) -> InputMessage:
        parts = self.content if isinstance(self.content, list) else [self.content]
        for part in parts:
            if isinstance(part, str):
                continue
            kind = part.get("type")
            if kind not in ("input_text", "output_text", "input_image", "input_audio"):
                raise ValueError(
                    f"content part type {kind!r} is not one of input_text, output_text, "
                    "input_image, input_audio"
                )
            if kind in ("input_text", "output_text") and not isinstance(part.get("text"), str):
                raise ValueError(f"a {kind} content part needs a string 'text'")
        return self


class ScoreModelGrader(_GraderBase):
    type: Literal["score_model"]
    input: list[InputMessage] = Field(min_length=1)
    model: str
    range: tuple[float, float] | None = None
    pass_threshold: float | None = None
    sampling_params: SamplingParams | None = None

    @model_validator(mode="after")
    def _ordered_range(self) -> ScoreModelGrader:
        low, high = self.score_range
        if not low < high:
            raise ValueError(
                f"range must be [low, high] with low < high; got {list(self.range or ())}"
            )
        return self

    @property
    def score_range(self) -> tuple[float, float]:
        return self.range if self.range is not None else (0.0, 1.0)


class LabelModelGrader(_GraderBase):
    type: Literal["label_model"]
    input: list[InputMessage] = Field(min_length=1)
    model: str
    labels: list[str] = Field(min_length=1)
    passing_labels: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _passing_subset(self) -> LabelModelGrader:
        unknown = [label for label in self.passing_labels if label not in self.labels]
        if unknown:
            raise ValueError(f"passing_labels {unknown} are not in labels {self.labels}")
        return self


class PythonGrader(_GraderBase):
    type: Literal["python"]
    source: str = Field(min_length=1)
    image_tag: str | None = None
    pass_threshold: float | None = None


AnyGrader = Annotated[
    StringCheckGrader | TextSimilarityGrader | ScoreModelGrader | LabelModelGrader | PythonGrader,
    Field(discriminator="type"),
]


class MultiGrader(_GraderBase):
    type: Literal["multi"]
    graders: dict[str, AnyGrader]
    calculate_output: str = Field(min_length=1)
    pass_threshold: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _single_grader(cls, data: Any) -> Any:
        """The types' form — one grader, not a dict of them — is named by its ``name``."""
        if isinstance(data, dict) and isinstance(data.get("graders"), dict):
            single = data["graders"]
            if isinstance(single.get("type"), str):
                key = single.get("name") or single["type"]
                return {**data, "graders": {key: single}}
        return data

    @property
    def named(self) -> dict[str, BaseModel]:
        """The sub-graders by the names the formula uses."""
        return dict(self.graders)


GraderConfig = Annotated[
    StringCheckGrader
    | TextSimilarityGrader
    | ScoreModelGrader
    | LabelModelGrader
    | PythonGrader
    | MultiGrader,
    Field(discriminator="type"),
]

_ADAPTER: TypeAdapter[Any] = TypeAdapter(GraderConfig)


def parse_grader(config: Any) -> Any:
    """A validated grader model from a dict, a JSON string or a path to a JSON file.

    Raises :class:`~rftjudge.ConfigurationError` naming the offending field
    (``grader.graders.name.operation: ...``).
    """
    data = _load(config)
    if isinstance(data, dict) and "grader" in data and "type" not in data:
        data = data["grader"]  # a /graders/run or /graders/validate request body
    if not isinstance(data, dict):
        raise ConfigurationError(f"a grader config is a JSON object; got {type(data).__name__}")
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc, data)) from None


def _load(config: Any) -> Any:
    if isinstance(config, BaseModel):
        return config.model_dump(exclude_none=True)
    if isinstance(config, Path):
        return _read(config)
    if isinstance(config, str):
        text = config.strip()
        if text.startswith("{"):
            try:
                return json.loads(text)
            except ValueError as exc:
                raise ConfigurationError(f"the grader config is not valid JSON: {exc}") from None
        return _read(Path(config))
    return config


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read grader config {str(path)!r}: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"grader config {str(path)!r} is not valid JSON: {exc}") from None


def _describe(exc: ValidationError, data: Any) -> str:
    """Each problem as ``grader.<field path>: message``, pydantic's union branches left out."""
    problems = []
    for error in exc.errors()[:5]:
        if error["type"] == "union_tag_not_found":
            problems.append(f"grader.type: required, one of {', '.join(sorted(_BRANCHES))}")
            continue
        where = ".".join(_field_path(error["loc"], data))
        problems.append(f"grader.{where}: {error['msg']}" if where else f"grader: {error['msg']}")
    more = exc.error_count() - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


_BRANCHES = {"string_check", "text_similarity", "score_model", "label_model", "python", "multi"}


def _field_path(loc: tuple[int | str, ...], data: Any) -> list[str]:
    """The parts of ``loc`` that name fields, keys or indexes of ``data``: walking the config
    tells a sub-grader keyed ``python`` from pydantic's label for the python branch."""
    parts: list[str] = []
    current: Any = data
    for part in loc:
        if _has(current, part):
            current = current[part]
        elif isinstance(part, str) and (
            part in _BRANCHES or part.startswith(("dict[", "function-", "tagged-union["))
        ):
            continue
        else:
            current = None
        parts.append(str(part))
    return parts


def _has(container: Any, part: int | str) -> bool:
    if isinstance(container, dict):
        return part in container
    return isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container)
