"""Each provider's JSON-Schema dialect: what its structured-output mode accepts.

A verdict schema is plain JSON Schema; providers accept different subsets and answer others with a
400 (or, worse, accept them and constrain nothing). Before sending, each client reduces the schema to
its provider's subset; the judge validates the verdict against its own model afterwards, so a
constraint the provider could not enforce (a listwise schema's ``minItems``/``maxItems``, a score's
``minimum``/``maximum``) is still enforced locally — a violating verdict is re-asked, never scored.

- **Anthropic** (``output_config.format``, and Claude on Bedrock): the ``anthropic`` SDK's own
  ``transform_schema`` is the reference — objects get ``additionalProperties: false``; ``minItems``
  is kept only when 0 or 1; string ``format`` only from a fixed list; ``minimum``, ``maximum``,
  ``maxItems``, ``pattern`` and the like move into the description (so the model may still follow
  them); ``oneOf`` becomes ``anyOf``. :func:`anthropic_schema` reproduces it without the SDK, and
  ``tests/clients/test_conformance.py`` compares the two.
- **Gemini** (``responseJsonSchema``): the keywords Google documents for it; others are dropped.
- **OpenAI** itself (and Azure OpenAI): strict mode rejects string-length keywords
  (``minLength``/``maxLength``, which judges use to bound a rationale); :func:`openai_schema` moves
  them into the description, as a hint. OpenAI-compatible servers (vLLM, SGLang, llama.cpp) take
  the schema as is and enforce them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["anthropic_schema", "gemini_schema", "openai_schema"]

_LENGTHS = ("minLength", "maxLength")

_ANTHROPIC_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}
)

_GEMINI_KEYWORDS = frozenset(
    {
        "$id", "$defs", "$ref", "$anchor", "type", "format", "title", "description", "enum",
        "items", "prefixItems", "minItems", "maxItems", "minimum", "maximum", "anyOf", "oneOf",
        "properties", "additionalProperties", "required", "propertyOrdering", "nullable",
    }
)  # fmt: skip
_SUBSCHEMA_MAPS = ("properties", "$defs")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "prefixItems")


def _primitive(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def anthropic_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` in the subset Anthropic's structured outputs accept (the SDK's transform)."""
    rest = dict(schema)
    out: dict[str, Any] = {}
    defs = rest.pop("$defs", None)
    if defs is not None:
        out["$defs"] = {name: anthropic_schema(sub) for name, sub in defs.items()}
    ref = rest.pop("$ref", None)
    if ref is not None:
        out["$ref"] = ref
        if "description" in rest:
            out["description"] = rest["description"]
        return out
    kind = rest.pop("type", None)
    any_of, one_of, all_of = (
        rest.pop("anyOf", None),
        rest.pop("oneOf", None),
        rest.pop("allOf", None),
    )
    enum = rest.get("enum")
    if isinstance(enum, list) and enum and all(_primitive(v) for v in enum):
        out["enum"] = list(rest.pop("enum"))
    if "const" in rest and _primitive(rest["const"]):
        out["const"] = rest.pop("const")
    literal = "enum" in out or "const" in out
    if literal:
        kind = None
    if isinstance(any_of, list):
        out["anyOf"] = [anthropic_schema(v) for v in any_of]
    elif isinstance(one_of, list):
        out["anyOf"] = [anthropic_schema(v) for v in one_of]
    elif isinstance(all_of, list):
        out["allOf"] = [anthropic_schema(v) for v in all_of]
    elif not literal:
        if kind is None:
            raise ValueError(
                "a schema needs a 'type', 'anyOf', 'oneOf', 'allOf', 'const' or 'enum'"
            )
        out["type"] = kind
    for key in ("description", "title"):
        if key in rest:
            out[key] = rest.pop(key)
    if kind == "object":
        out["properties"] = {
            name: anthropic_schema(sub) for name, sub in rest.pop("properties", {}).items()
        }
        rest.pop("additionalProperties", None)
        out["additionalProperties"] = False
        required = rest.pop("required", None)
        if required is not None:
            out["required"] = list(required) if isinstance(required, list) else required
    elif kind == "string":
        fmt = rest.pop("format", None)
        if fmt in _ANTHROPIC_FORMATS:
            out["format"] = fmt
        elif fmt:
            rest["format"] = fmt
    elif kind == "array":
        items = rest.pop("items", None)
        if items is not None:
            out["items"] = anthropic_schema(items)
        min_items = rest.pop("minItems", None)
        if min_items in (0, 1):
            out["minItems"] = min_items
        elif min_items is not None:
            rest["minItems"] = min_items
    if rest:  # what the API cannot take, as a hint the model may follow (the SDK does the same)
        hint = "{" + ", ".join(f"{key}: {value}" for key, value in rest.items()) + "}"
        description = out.get("description")
        out["description"] = f"{description}\n\n{hint}" if description is not None else hint
    return out


def openai_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` without string-length keywords (moved into the description as a hint)."""
    out: dict[str, Any] = {}
    hints: list[str] = []
    for key, value in schema.items():
        if key in _LENGTHS:
            hints.append(f"{key}: {value}")
        elif key in _SUBSCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {name: _openai_sub(sub) for name, sub in value.items()}
        elif key in (*_SUBSCHEMA_LISTS, "allOf") and isinstance(value, list):
            out[key] = [_openai_sub(sub) for sub in value]
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
            out[key] = openai_schema(value)
        else:
            out[key] = value
    if hints:
        hint = "{" + ", ".join(hints) + "}"
        description = out.get("description")
        out["description"] = f"{description}\n\n{hint}" if description is not None else hint
    return out


def _openai_sub(value: Any) -> Any:
    return openai_schema(value) if isinstance(value, Mapping) else value


def gemini_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` with only the keywords Gemini's ``responseJsonSchema`` documents."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in _GEMINI_KEYWORDS:
            continue
        if key in _SUBSCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {name: _gemini_sub(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [_gemini_sub(sub) for sub in value]
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
            out[key] = gemini_schema(value)
        else:
            out[key] = value
    return out


def _gemini_sub(value: Any) -> Any:
    return gemini_schema(value) if isinstance(value, Mapping) else value
