"""Templates are data, not code: a time and size budget for rendering a judge template.

Jinja's sandbox stops a template from reaching Python internals, but not from running forever
(``{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}`` is ten billion
iterations) or from building a gigabyte string (``{{ "x" * 10**10 }}``). A config file names the
template, so whoever writes a config could hang ``load_judge`` — and with it a training job.

Two defences, both cheap:

- :class:`BudgetedEnvironment` refuses single operations that would build a huge value: ``*`` on a
  string or list beyond :data:`MAX_CHARS` items, ``**`` with a large exponent, and integer
  arguments (``center(10**9)``, ``"%0999999999d"``) beyond :data:`MAX_CHARS` to filters and calls.
- :func:`render_within` runs the first render (the one every judge does when it is built, with
  placeholder values) in a worker thread under :data:`RENDER_BUDGET_S` seconds and
  :data:`MAX_CHARS` characters of output. A render that overruns is stopped (an exception is
  raised inside the worker thread) and reported as a :class:`~rftjudge.ConfigurationError`.

Later renders — with the real prompt and response, on the hot path — run inline without the thread:
a template that passed its first render with placeholder values has shown it terminates.
"""

from __future__ import annotations

import ctypes
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from .._errors import ConfigurationError

__all__ = ["MAX_CHARS", "RENDER_BUDGET_S", "BudgetedEnvironment", "joined", "render_within"]

T = TypeVar("T")

RENDER_BUDGET_S = 2.0
"""Seconds the first render of a template may take (the bundled templates take about a millisecond)."""

MAX_CHARS = 1 << 20
"""The largest value one template operation may build, and the largest first render (characters)."""

_MAX_EXPONENT = 256
# A %-format or str.format field with a width or precision of 7+ digits builds a huge string.
_WIDE_FIELD = re.compile(r"%[-#0 +]*(?:\d{7,}|\*)|%[-#0 +]*\d*\.\d{7,}|\{[^{}]*:[^{}]*\d{7,}")


class _Overrun(BaseException):
    """Raised inside the worker thread to stop a render that overran its time budget."""


class BudgetedEnvironment(SandboxedEnvironment):
    """A sandbox that also refuses operations building values over :data:`MAX_CHARS`."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _guarded(name, f) for name, f in self.filters.items()}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right)
            _check_repeat(right, left)
        elif operator == "**":
            if (
                _is_int(right)
                and abs(right) > _MAX_EXPONENT
                and not (_is_int(left) and abs(left) <= 1)
            ):
                raise SecurityError(f"an exponent of {right} is over the template limit")
        elif operator == "%" and isinstance(left, str):
            _check_format(left)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_arguments(__obj, args, kwargs)
        bound = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)  # str.format
        if isinstance(bound, str):
            _check_format(bound)
        return super().call(__context, __obj, *args, **kwargs)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_repeat(sequence: Any, times: Any) -> None:
    if (
        isinstance(sequence, str | list | tuple | bytes)
        and _is_int(times)
        and len(sequence) * times > MAX_CHARS
    ):
        raise SecurityError(
            f"repeating a {type(sequence).__name__} {times} times is over the template limit "
            f"of {MAX_CHARS:,} items"
        )


def _check_format(text: str) -> None:
    if _WIDE_FIELD.search(text):
        raise SecurityError("a format field wider than the template limit")


def _check_arguments(target: Any, args: Iterable[Any], kwargs: dict[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if (_is_int(value) or isinstance(value, float)) and abs(value) > MAX_CHARS:
            raise SecurityError(
                f"the argument {value!r} to {getattr(target, '__name__', 'a call')} is over the "
                f"template limit of {MAX_CHARS:,}"
            )


def _guarded(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (a filter) refusing numeric arguments over the limit and wide format strings."""

    passes_context = hasattr(function, "jinja_pass_arg")  # gets a context/environment first

    def guarded(*args: Any, **kwargs: Any) -> Any:
        value, options = (args[1:2], args[2:]) if passes_context else (args[:1], args[1:])
        _check_arguments(function, options, kwargs)
        if name == "format" and value and isinstance(value[0], str):
            _check_format(value[0])
        return function(*args, **kwargs)

    if passes_context:
        guarded.jinja_pass_arg = function.jinja_pass_arg  # type: ignore[attr-defined]
    guarded.__name__ = getattr(function, "__name__", name)
    return guarded


def joined(chunks: Iterable[str], name: str, max_chars: int | None) -> str:
    """The chunks of a render joined, refused as soon as they pass ``max_chars`` characters."""
    if max_chars is None:
        return "".join(chunks)
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > max_chars:
            raise ConfigurationError(
                f"template {name!r} renders more than {max_chars:,} characters from placeholder "
                "values; a judge prompt is a page or two"
            )
        parts.append(chunk)
    return "".join(parts)


def render_within(name: str, render: Callable[[], T], seconds: float | None = None) -> T:
    """``render()`` run in a worker thread, stopped and refused after ``seconds``
    (default :data:`RENDER_BUDGET_S`)."""
    seconds = RENDER_BUDGET_S if seconds is None else seconds
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = render()
        except BaseException as exc:  # handed to the caller (or dropped after an overrun)
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="rftjudge-template-check", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        _stop(worker)
        raise ConfigurationError(
            f"template {name!r} did not render within {seconds:g} s when the judge was built "
            "(a runaway loop?); a judge template must render in milliseconds"
        )
    if "error" in outcome:
        error = outcome["error"]
        if isinstance(error, RecursionError | MemoryError):
            raise ConfigurationError(
                f"template {name!r} failed to render ({type(error).__name__}: unbounded recursion "
                "or a huge value)"
            ) from None
        raise error
    value: T = outcome["value"]
    return value


def _stop(worker: threading.Thread) -> None:
    """Raise :class:`_Overrun` inside ``worker`` at its next bytecode (CPython)."""
    if worker.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(worker.ident), ctypes.py_object(_Overrun)
        )
