"""OpenAI RFT grader configs, run locally on any rftjudge client and any trainer.

::

    from rftjudge import OpenAIClient
    from rftjudge.graders import load_openai_grader

    grader = load_openai_grader("grader.json", models=OpenAIClient("Qwen/Qwen3-8B", base_url=...))
    grader.run("model output", {"reference_answer": "..."})      # the /graders/run shape
    trainer = GRPOTrainer(..., reward_funcs=[grader.as_reward_func()])

See docs/graders.md for the migration guide and what is (and is not) identical to OpenAI.
"""

from ._config import parse_grader
from ._formula import FormulaError, parse_formula
from ._grader import GraderError, GradeResult, OpenAIGrader, load_openai_grader, validate_grader
from ._sandbox import Sandbox
from ._template import InvalidVariable, make_sample, render

__all__ = [
    "FormulaError",
    "GradeResult",
    "GraderError",
    "InvalidVariable",
    "OpenAIGrader",
    "Sandbox",
    "load_openai_grader",
    "make_sample",
    "parse_formula",
    "parse_grader",
    "render",
    "validate_grader",
]
