"""Each grader config compiled into a node: ``await node.grade(sample, item) -> Outcome``.

Compiling happens once, when the grader loads — model names are mapped to clients, formulas parsed,
metric libraries imported — so that every problem a config can have is found before training starts.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any, Protocol

from .._errors import ConfigurationError
from ..clients._protocol import Client
from ._config import (
    LabelModelGrader,
    MultiGrader,
    PythonGrader,
    ScoreModelGrader,
    StringCheckGrader,
    TextSimilarityGrader,
)
from ._formula import FormulaError, parse_formula
from ._model import ModelGrader, resolve_client
from ._outcome import Outcome
from ._sandbox import Sandbox
from ._similarity import Embed, check_metric, cosine, similarity
from ._template import InvalidVariable, render

__all__ = ["Node", "compile_grader", "has_python", "model_graders", "string_check"]


def has_python(config: Any) -> bool:
    """Whether ``config`` (or a sub-grader of it) is a python grader."""
    if isinstance(config, MultiGrader):
        return any(has_python(sub) for sub in config.named.values())
    return isinstance(config, PythonGrader)


class Node(Protocol):
    config: Any

    async def grade(self, sample: Mapping[str, Any], item: Mapping[str, Any]) -> Outcome: ...


class StringCheck:
    """``eq`` / ``ne`` (``neq``): equality; ``like``: reference contained in input; ``ilike``: the
    same ignoring case. 1.0 or 0.0."""

    def __init__(self, config: StringCheckGrader) -> None:
        self.config = config

    async def grade(self, sample: Mapping[str, Any], item: Mapping[str, Any]) -> Outcome:
        try:
            text = render(self.config.input, sample, item)
            reference = render(self.config.reference, sample, item)
        except InvalidVariable as exc:
            return Outcome.failed("invalid_variable_error", str(exc))
        return Outcome(score=1.0 if string_check(self.config.operation, text, reference) else 0.0)


def string_check(operation: str, text: str, reference: str) -> bool:
    if operation == "eq":
        return text == reference
    if operation in ("ne", "neq"):
        return text != reference
    if operation == "like":
        return reference in text
    return reference.casefold() in text.casefold()  # ilike


class TextSimilarity:
    """The metric's score; with ``pass_threshold`` the run's ``metadata.scores`` also say pass/fail."""

    def __init__(self, config: TextSimilarityGrader, embed: Embed | None) -> None:
        check_metric(config.evaluation_metric, embed)
        self.config = config
        self.embed = embed

    async def grade(self, sample: Mapping[str, Any], item: Mapping[str, Any]) -> Outcome:
        try:
            text = render(self.config.input, sample, item)
            reference = render(self.config.reference, sample, item)
        except InvalidVariable as exc:
            return Outcome.failed("invalid_variable_error", str(exc))
        metric = self.config.evaluation_metric
        try:
            if metric == "cosine":
                assert self.embed is not None  # check_metric made sure
                score = await cosine(self.embed, text, reference)
            else:
                score = similarity(metric, text, reference)
        except (ArithmeticError, ValueError, TypeError, LookupError) as exc:
            return Outcome.failed("other_error", f"{metric}: {exc}")
        return Outcome(score=score)


class Python:
    """``grade(sample, item)`` from ``source``, in the :class:`Sandbox`."""

    def __init__(self, config: PythonGrader, sandbox: Sandbox) -> None:
        try:
            compile(config.source, f"<grader {config.name!r}>", "exec")
        except SyntaxError as exc:
            raise ConfigurationError(f"grader.source: {exc.msg} (line {exc.lineno})") from None
        self.config = config
        self.sandbox = sandbox

    async def grade(self, sample: Mapping[str, Any], item: Mapping[str, Any]) -> Outcome:
        result = await self.sandbox.run(self.config.source, dict(sample), dict(item))
        if result.score is None:
            return Outcome.failed("python_grader_runtime_error", result.error or "")
        return Outcome(score=result.score)


class Multi:
    """The sub-graders concurrently, then ``calculate_output`` over their scores (a sub-grader that
    failed counts as 0, its error flags carried up)."""

    def __init__(self, config: MultiGrader, children: dict[str, Node]) -> None:
        try:
            self.formula = parse_formula(config.calculate_output, list(children))
        except FormulaError as exc:
            raise ConfigurationError(f"grader.calculate_output: {exc}") from None
        self.config = config
        self.children = children

    async def grade(self, sample: Mapping[str, Any], item: Mapping[str, Any]) -> Outcome:
        tasks = [asyncio.ensure_future(c.grade(sample, item)) for c in self.children.values()]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:  # a run-level error or cancellation: no sub-grader keeps running
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        outcome = Outcome(score=0.0)
        for key, result in zip(self.children, results, strict=True):
            outcome.sub_rewards[key] = result.score
            outcome.merge(result)
            if result.rationale:
                outcome.rationale += f"[{key}] {result.rationale} "
        outcome.rationale = outcome.rationale.strip()
        try:
            score = self.formula.evaluate(outcome.sub_rewards)
        except (ArithmeticError, ValueError) as exc:
            outcome.errors.setdefault("other_error", f"calculate_output: {exc}")
            return outcome
        if not math.isfinite(score):
            outcome.errors.setdefault("other_error", f"calculate_output gave {score}")
            return outcome
        outcome.score = score
        return outcome


class _Model:
    def __init__(self, grader: ModelGrader) -> None:
        self.config = grader.config
        self.grader = grader

    async def grade(self, sample: Mapping[str, Any], item: Mapping[str, Any]) -> Outcome:
        return await self.grader.grade(sample, item)


def model_graders(node: Node) -> list[ModelGrader]:
    """The model graders in ``node`` (itself, or a multi grader's)."""
    if isinstance(node, _Model):
        return [node.grader]
    if isinstance(node, Multi):
        return [g for child in node.children.values() for g in model_graders(child)]
    return []


def compile_grader(
    config: Any,
    *,
    models: Client | Mapping[str, Client] | None,
    embed: Embed | None,
    sandbox: Sandbox | None,
    distribution: bool = False,
) -> Node:
    """The node for ``config`` (its sub-graders too); ConfigurationError for what cannot run."""
    if isinstance(config, StringCheckGrader):
        return StringCheck(config)
    if isinstance(config, TextSimilarityGrader):
        return TextSimilarity(config, embed)
    if isinstance(config, ScoreModelGrader | LabelModelGrader):
        client = resolve_client(config.model, models)
        return _Model(ModelGrader(config, client, distribution=distribution))
    if isinstance(config, PythonGrader):
        if sandbox is None:
            raise ConfigurationError("a python grader needs a Sandbox")  # pragma: no cover
        return Python(config, sandbox)
    if isinstance(config, MultiGrader):
        children = {
            key: compile_grader(
                sub, models=models, embed=embed, sandbox=sandbox, distribution=distribution
            )
            for key, sub in config.named.items()
        }
        return Multi(config, children)
    raise ConfigurationError(f"unknown grader type {type(config).__name__}")  # pragma: no cover
