"""A small JSON Schema validator for the subset structured-output schemas use.

Reward checks such as "the answer is valid JSON of this shape" must be deterministic and cheap, and
a Lambda package should not need a dependency for them. This covers what structured-output schemas
are made of — ``type`` (one or a list), ``enum``, ``const``, ``properties``, ``required``,
``additionalProperties``, ``items``, ``minItems``/``maxItems``, ``minLength``/``maxLength``,
``pattern``, ``minimum``/``maximum``/``exclusiveMinimum``/``exclusiveMaximum``, ``anyOf``/``oneOf``/
``allOf`` — plus annotations that do not constrain (``title``, ``description``, ...).
:func:`unsupported_keywords` lists anything else, so callers can refuse the schema or hand it to the
``jsonschema`` package instead of silently ignoring a constraint.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["unsupported_keywords", "validation_errors"]

_CONSTRAINTS = {
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "anyOf",
    "oneOf",
    "allOf",
}
_ANNOTATIONS = {"$schema", "$id", "title", "description", "default", "examples", "$comment"}
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf")


def unsupported_keywords(schema: Any) -> set[str]:
    """Keywords anywhere in ``schema`` that :func:`validation_errors` does not implement."""
    found: set[str] = set()
    for node in _walk(schema):
        found.update(k for k in node if k not in _CONSTRAINTS and k not in _ANNOTATIONS)
        if isinstance(node.get("items"), list):
            found.add("items (tuple form)")
    return found


def _walk(schema: Any) -> Iterator[Mapping[str, Any]]:
    if not isinstance(schema, Mapping):
        return
    yield schema
    props = schema.get("properties")
    if isinstance(props, Mapping):
        for sub in props.values():
            yield from _walk(sub)
    for key in ("items", "additionalProperties"):
        yield from _walk(schema.get(key))
    for key in _SUBSCHEMA_LISTS:
        for sub in schema.get(key) or ():
            yield from _walk(sub)


def validation_errors(instance: Any, schema: Any, path: str = "$") -> list[str]:
    """Every way ``instance`` breaks ``schema`` (empty when it conforms), with JSON paths."""
    if schema is True or schema == {}:
        return []
    if schema is False:
        return [f"{path}: no value is allowed here"]
    if not isinstance(schema, Mapping):
        return [f"{path}: the schema is not an object"]
    errors: list[str] = []
    expected = schema.get("type")
    if expected is not None:
        types = [expected] if isinstance(expected, str) else list(expected)
        if not any(_is_type(instance, t) for t in types):
            return [f"{path}: expected {'/'.join(types)}, got {_type_name(instance)}"]
    if "enum" in schema and not any(_equal(instance, v) for v in schema["enum"]):
        errors.append(f"{path}: {instance!r} is not one of {schema['enum']!r}")
    if "const" in schema and not _equal(instance, schema["const"]):
        errors.append(f"{path}: expected {schema['const']!r}")
    if isinstance(instance, str):
        errors.extend(_string_errors(instance, schema, path))
    if _is_type(instance, "number"):
        errors.extend(_number_errors(instance, schema, path))
    if isinstance(instance, dict):
        errors.extend(_object_errors(instance, schema, path))
    if isinstance(instance, list):
        errors.extend(_array_errors(instance, schema, path))
    for sub in schema.get("allOf") or ():
        errors.extend(validation_errors(instance, sub, path))
    if "anyOf" in schema and not any(
        not validation_errors(instance, sub, path) for sub in schema["anyOf"]
    ):
        errors.append(f"{path}: matches none of anyOf")
    if "oneOf" in schema:
        matches = sum(not validation_errors(instance, sub, path) for sub in schema["oneOf"])
        if matches != 1:
            errors.append(f"{path}: matches {matches} of oneOf (exactly 1 required)")
    return errors


def _string_errors(value: str, schema: Mapping[str, Any], path: str) -> list[str]:
    errors = []
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(f"{path}: shorter than {schema['minLength']} characters")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(f"{path}: longer than {schema['maxLength']} characters")
    if "pattern" in schema and re.search(schema["pattern"], value) is None:
        errors.append(f"{path}: does not match {schema['pattern']!r}")
    return errors


def _number_errors(value: float, schema: Mapping[str, Any], path: str) -> list[str]:
    errors = []
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: below the minimum {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{path}: above the maximum {schema['maximum']}")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        errors.append(f"{path}: not above {schema['exclusiveMinimum']}")
    if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
        errors.append(f"{path}: not below {schema['exclusiveMaximum']}")
    return errors


def _object_errors(value: dict[str, Any], schema: Mapping[str, Any], path: str) -> list[str]:
    errors = [
        f"{path}: missing {key!r}" for key in schema.get("required") or () if key not in value
    ]
    props: Mapping[str, Any] = schema.get("properties") or {}
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in props:
            errors.extend(validation_errors(item, props[key], f"{path}.{key}"))
        elif extra is False:
            errors.append(f"{path}: unexpected property {key!r}")
        elif isinstance(extra, Mapping):
            errors.extend(validation_errors(item, extra, f"{path}.{key}"))
    return errors


def _array_errors(value: list[Any], schema: Mapping[str, Any], path: str) -> list[str]:
    errors = []
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(f"{path}: fewer than {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(f"{path}: more than {schema['maxItems']} items")
    items = schema.get("items")
    if isinstance(items, Mapping | bool):
        for i, item in enumerate(value):
            errors.extend(validation_errors(item, items, f"{path}[{i}]"))
    return errors


def _is_type(value: Any, name: str) -> bool:
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and math.isfinite(value) and value.is_integer()
        )
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if name == "string":
        return isinstance(value, str)
    if name == "array":
        return isinstance(value, list)
    if name == "object":
        return isinstance(value, dict)
    return False


def _type_name(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _is_type(value, name):
            return name
    return type(value).__name__


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: ``1 == True`` is False in JSON Schema, unlike in Python."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return bool(a == b)
