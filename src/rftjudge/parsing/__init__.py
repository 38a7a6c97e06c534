"""Turning judge text into validated verdicts."""

from ._json import find_json_objects, parse_verdict

__all__ = ["find_json_objects", "parse_verdict"]
