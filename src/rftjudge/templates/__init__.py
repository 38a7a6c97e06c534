"""Jinja2 prompt templates: the bundled ones in ``prompts/`` and users' own."""

from ._env import PromptTemplate, fence, neutralize

__all__ = ["PromptTemplate", "fence", "neutralize"]
