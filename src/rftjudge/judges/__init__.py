"""Judges: rubric (score one response) and, built on the same base, the other architectures."""

from ._group import GroupInfo, GroupReward
from .base import BaseJudge, JudgeStats, OnError, RewardBase
from .listwise import ListwiseJudge, ListwiseResult
from .preference import Preference, PreferenceJudge
from .rubric import Criterion, Judgment, RubricJudge, Scale
from .steps import StepJudge, StepJudgment

__all__ = [
    "BaseJudge",
    "Criterion",
    "GroupInfo",
    "GroupReward",
    "JudgeStats",
    "Judgment",
    "ListwiseJudge",
    "ListwiseResult",
    "OnError",
    "Preference",
    "PreferenceJudge",
    "RewardBase",
    "RubricJudge",
    "Scale",
    "StepJudge",
    "StepJudgment",
]
