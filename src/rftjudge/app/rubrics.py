"""Rubric drafting (``rftjudge rubrics``): a rubric per prompt, written by a judge model, for review.

RaR builds its per-prompt rubrics offline with a strong model from the prompt and a reference
answer; this is that step. :class:`RubricDrafter` asks for 7–20 self-contained items with RaR
categories (a validated schema, bounded re-asks), then checks the draft with the same parser the
rubric judge uses — a draft that judge would refuse fails its row here, not mid-training.
:func:`draft_rubrics` runs it over a data set exactly like ``rftjudge score``: one JSON line per
row written as it finishes, resumable (rows already drafted are skipped; changed rows are redone).
The output's ``rubric`` column feeds ``RubricJudge`` directly, after a person has reviewed it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, create_model
from typing_extensions import Unpack

from .._errors import ConfigurationError
from .._types import Usage
from ..clients._protocol import Client
from ..judges._options import JudgeOptions
from ..judges._rubric_items import parse_rubric
from ..judges.base import BaseJudge
from ..templates import PromptTemplate
from .config import JudgeConfig, ajudge_session
from .scoring import Columns, RunStats, plan_run, read_rows, run_plan

__all__ = ["DraftedRubric", "RubricDrafter", "draft_rubrics", "draft_with_config"]

Category = Literal["essential", "important", "optional", "pitfall"]


class DraftItem(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
    description: str = Field(min_length=3)
    category: Category


class DraftedRubric(BaseModel):
    """A drafted rubric: ``rubric`` is a list of ``{id, description, category, weight}`` items."""

    prompt: str
    rubric: list[dict[str, Any]]
    rationale: str = ""
    usage: Usage = Field(default_factory=Usage)
    raw: str = ""
    reasks: int = 0


class RubricDrafter(BaseJudge[DraftedRubric]):
    """Drafts one rubric per prompt (``ajudge(prompt, response_ignored, reference)``).

    ``min_items`` / ``max_items`` bound the draft (default 7–20); weights are the category
    defaults of :mod:`rftjudge.judges._rubric_items`, written out so a reviewer can edit them.
    """

    default_name = "rubric_drafter"

    def __init__(
        self,
        client: Client,
        *,
        min_items: int = 7,
        max_items: int = 20,
        template: str | Path | None = None,
        **options: Unpack[JudgeOptions],
    ) -> None:
        if not (isinstance(min_items, int) and isinstance(max_items, int)) or not (
            1 <= min_items <= max_items <= 64
        ):
            raise ConfigurationError(
                f"need 1 <= min_items <= max_items <= 64; got {min_items}, {max_items}"
            )
        options.setdefault("guard", False)  # the "response" is not judged
        super().__init__(client, **options)
        self.min_items, self.max_items = min_items, max_items
        items = (list[DraftItem], Field(min_length=min_items, max_length=max_items))
        self.verdict_model = create_model(
            "RubricDraft", rationale=(str, Field(default="")), items=items
        )
        self.output_schema: dict[str, Any] = {
            "type": "object",
            "properties": {
                "rationale": {"type": "string"},
                "items": {
                    "type": "array",
                    "minItems": min_items,
                    "maxItems": max_items,
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string"},
                            "description": {"type": "string"},
                            "category": {"type": "string", "enum": list(get_args(Category))},
                        },
                        "required": ["id", "description", "category"],
                        "additionalProperties": False,
                    },
                },
            },
            "required": ["rationale", "items"],
            "additionalProperties": False,
        }
        self._schema_text = json.dumps(self.output_schema)
        self.template = PromptTemplate(template if template is not None else "rubric_draft.j2")

    async def ajudge(
        self, prompt: Any, response: Any = None, reference: Any = None
    ) -> DraftedRubric:
        text, _, ref = self.prepare(prompt, "", reference)
        messages = self.template.render(
            prompt=text,
            reference=ref,
            min_items=self.min_items,
            max_items=self.max_items,
            output_schema=self._schema_text,
        )
        asked = await self._ask(self.make_request(messages, self.output_schema), self.verdict_model)
        verdict: Any = asked.verdict
        items = [item.model_dump() for item in verdict.items]
        rubric = parse_rubric(items, max_items=self.max_items)  # InvalidRubricError: row fails
        return DraftedRubric(
            prompt=text,
            rubric=[
                {
                    "id": i.id,
                    "description": i.description,
                    "category": i.category,
                    "weight": i.weight,
                }
                for i in rubric.items
            ],
            rationale=verdict.rationale,
            usage=asked.usage,
            raw=asked.response.text,
            reasks=asked.reasks,
        )

    def score_of(self, result: DraftedRubric) -> float:
        return 1.0  # a draft is no reward; summaries count it as done


async def draft_rubrics(
    drafter: RubricDrafter,
    data: str | Path | Iterable[Mapping[str, Any]],
    out: str | Path,
    *,
    prompt_column: str = "prompt",
    reference_column: str | None = "reference",
    id_column: str | None = "id",
    retry_failed: bool = False,
    limit: int | None = None,
) -> RunStats:
    """Draft a rubric for each row of ``data`` into ``out`` (JSONL), resuming what is there."""
    rows = read_rows(data) if isinstance(data, str | Path) else data
    # The prompt is the only judged column: the response slot names it too.
    columns = Columns(
        prompt=prompt_column,
        response=prompt_column,
        reference=reference_column,
        id=id_column,
        rubric=None,
    )
    judge_id = (
        f"draft:{drafter.min_items}-{drafter.max_items}:{getattr(drafter.client, 'model', '')}"
    )
    plan = plan_run(
        rows, out, columns=columns, judge_id=judge_id, retry_failed=retry_failed, limit=limit
    )
    return await run_plan(drafter, plan)


async def draft_with_config(
    config: JudgeConfig,
    data: str | Path | Iterable[Mapping[str, Any]],
    out: str | Path,
    *,
    min_items: int = 7,
    max_items: int = 20,
    **kwargs: Any,
) -> RunStats:
    """:func:`draft_rubrics` on the model a judge config names (the local judge when it names none).

    The config's sampling settings are kept; ``max_tokens`` is at least 2048 (a 20-item draft is
    long, and a truncated one is only re-asked).
    """
    async with ajudge_session(config) as judge:
        drafter = RubricDrafter(
            judge.client,
            min_items=min_items,
            max_items=max_items,
            temperature=config.temperature,
            max_tokens=max(config.max_tokens or 0, 2048),
            seed=config.seed,
            max_reasks=config.max_reasks if config.max_reasks is not None else 1,
        )
        return await draft_rubrics(drafter, data, out, **kwargs)
