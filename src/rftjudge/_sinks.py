"""Where a reward function's per-call metrics go when the trainer hands it no logger.

TRL's ``GRPOTrainer`` passes ``log_metric`` to reward functions and averages what they log into
its own logs (W&B, TensorBoard, ...). Other callers pass nothing: TRL's ``AsyncGRPOTrainer`` scores
each group in a spawned child process with only the completions and the dataset's columns, veRL
and hand-written loops call the function bare. Without a destination the failure rate, tokens and
cost of every call would be computed and dropped. A :class:`MetricsSink` is that destination:

- a callable, called with one ``{"<reward name>/<metric>": value}`` dict per call (to cross into a
  spawned process it must pickle: a module-level function or a callable instance);
- a path (``str`` or :class:`os.PathLike`): one JSON object per call appended to that JSONL file —
  ``{"time", "pid", "reward_func", "metrics"}`` — which survives process boundaries and can be
  tailed into the trainer's logger (docs/trainers.md);
- a :class:`logging.Logger`: one INFO record per call, the metrics as JSON.

The sink holds no open file or lock, so it pickles (a logger pickles as its name) and every process
writes its own lines; ``pid`` tells them apart.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Union

from ._errors import ConfigurationError

__all__ = ["MetricsSink", "MetricsSinkLike", "metrics_sink"]

MetricsSinkLike = Union[Callable[[dict[str, float]], Any], str, "os.PathLike[str]", logging.Logger]


class MetricsSink:
    """One destination for per-call metrics (see the module docstring); picklable."""

    def __init__(self, target: MetricsSinkLike) -> None:
        if isinstance(target, logging.Logger) or callable(target):
            self.target: Any = target
        elif isinstance(target, str | os.PathLike):
            if not os.fspath(target):
                raise ConfigurationError("metrics_sink path is empty")
            self.target = Path(target)
        else:
            raise ConfigurationError(
                "metrics_sink must be a callable, a JSONL path or a logging.Logger; "
                f"got {type(target).__name__}"
            )

    def emit(self, name: str, metrics: Mapping[str, float]) -> None:
        """Deliver one call's metrics (keys already prefixed with ``name``)."""
        if not metrics:
            return
        values = {key: float(value) for key, value in metrics.items()}
        target = self.target
        if isinstance(target, Path):
            line = {"time": time.time(), "pid": os.getpid(), "reward_func": name, "metrics": values}
            with target.open("a", encoding="utf-8") as file:
                file.write(json.dumps(line, sort_keys=True) + "\n")
        elif isinstance(target, logging.Logger):
            target.info("rftjudge metrics %s %s", name, json.dumps(values, sort_keys=True))
        else:
            target(values)

    def __repr__(self) -> str:
        return f"MetricsSink({self.target!r})"


def metrics_sink(target: MetricsSinkLike | MetricsSink | None) -> MetricsSink | None:
    """``target`` as a :class:`MetricsSink` (``None`` stays ``None``)."""
    if target is None or isinstance(target, MetricsSink):
        return target
    return MetricsSink(target)
