"""Jinja2 prompt templates: the bundled ones in ``prompts/`` and users' own."""

from ._env import PromptTemplate, fence, neutralize, strip_invisible, truncate_middle

__all__ = ["PromptTemplate", "fence", "neutralize", "strip_invisible", "truncate_middle"]
