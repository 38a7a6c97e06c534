"""Judges: rubric (score one response) and, built on the same base, the other architectures."""

from .base import BaseJudge, JudgeStats, OnError, RewardBase
from .preference import Preference, PreferenceJudge
from .rubric import Criterion, Judgment, RubricJudge, Scale

__all__ = [
    "BaseJudge",
    "Criterion",
    "JudgeStats",
    "Judgment",
    "OnError",
    "Preference",
    "PreferenceJudge",
    "RewardBase",
    "RubricJudge",
    "Scale",
]
