"""OpenAI grader templates: ``{{ item.x }}`` and ``{{ sample.output_json.a[0]["b"] }}``.

Only the ``item`` (the data set row) and ``sample`` (the model's output) namespaces exist; nested
values are reached with a JSON-path-like syntax (``.field``, ``[0]``, ``["key"]``). A variable that
does not resolve is an ``invalid_variable_error`` on OpenAI, and here: :class:`InvalidVariable`.
Strings are inserted as they are; any other value as compact JSON.

:func:`make_sample` turns what a trainer hands a reward function (a string, a chat completion, a
dict already in the sample shape) into the ``sample`` namespace: ``output_text``, ``output_json``
(only when the text is valid JSON, as ``/graders/run`` does), ``output_tools`` and ``choices``.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from typing import Any

from .._text import completion_text

__all__ = ["InvalidVariable", "make_sample", "render", "resolve"]

_VARIABLE = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.DOTALL)
_STEP = re.compile(r"""\.\s*([A-Za-z_][\w-]*)|\[\s*(-?\d+)\s*\]|\[\s*(["'])(.*?)\3\s*\]""")
_HEAD = re.compile(r"[A-Za-z_]\w*")
_MISSING = object()


class InvalidVariable(Exception):
    """A template variable that names nothing in ``item`` or ``sample``."""


def render(template: str, sample: Mapping[str, Any], item: Mapping[str, Any]) -> str:
    """``template`` with every ``{{ namespace.path }}`` replaced by its value."""
    return _VARIABLE.sub(lambda m: _as_text(resolve(m.group(1), sample, item)), template)


def resolve(expression: str, sample: Mapping[str, Any], item: Mapping[str, Any]) -> Any:
    """The value ``expression`` (``item.a.b[0]``) names; :class:`InvalidVariable` if none."""
    head = _HEAD.match(expression)
    if head is None or head.group(0) not in ("item", "sample"):
        raise InvalidVariable(
            f"{{{{ {expression} }}}}: variables start with the namespace item or sample"
        )
    value: Any = item if head.group(0) == "item" else sample
    position = head.end()
    while position < len(expression):
        step = _STEP.match(expression, position)
        if step is None:
            raise InvalidVariable(f"{{{{ {expression} }}}}: cannot read {expression[position:]!r}")
        key: str | int = (
            step.group(1) or step.group(4) if step.group(2) is None else int(step.group(2))
        )
        value = _child(value, key)
        if value is _MISSING:
            raise InvalidVariable(f"{{{{ {expression} }}}}: {key!r} not found")
        position = step.end()
    return value


def _child(value: Any, key: str | int) -> Any:
    if isinstance(key, int):
        if isinstance(value, list | tuple) and -len(value) <= key < len(value):
            return value[key]
        return _MISSING
    if isinstance(value, Mapping):
        return value.get(key, _MISSING)
    return _MISSING


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def make_sample(output: Any) -> dict[str, Any]:
    """The ``sample`` namespace for one model output (see the module docstring)."""
    if isinstance(output, Mapping) and ("output_text" in output or "choices" in output):
        sample = dict(output)
        sample.setdefault("output_text", _choice_text(sample))
        _add_json(sample)
        sample.setdefault("output_tools", [])
        return sample
    if isinstance(output, Mapping):  # one assistant message
        output = [output]
    tools: list[Any] = []
    message = _last_message(output)
    if message is not None:
        tools = list(message.get("tool_calls") or [])
    text = completion_text(output) if not isinstance(output, str) else output
    sample = {
        "output_text": text,
        "output_tools": tools,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
    }
    if tools:
        sample["choices"][0]["message"]["tool_calls"] = tools
    _add_json(sample)
    return sample


def _last_message(output: Any) -> Mapping[str, Any] | None:
    if isinstance(output, list | tuple) and output and isinstance(output[-1], Mapping):
        return output[-1]
    return None


def _choice_text(sample: Mapping[str, Any]) -> str:
    try:
        content = sample["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return ""
    return content if isinstance(content, str) else ""


def _add_json(sample: dict[str, Any]) -> None:
    if "output_json" in sample:
        return
    # Not JSON: output_json stays absent, and a template naming it is an invalid variable.
    with contextlib.suppress(TypeError, ValueError):
        sample["output_json"] = json.loads(sample["output_text"])
