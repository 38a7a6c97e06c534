"""What a reward function hands its judge: TRL's arguments checked and turned into text, except
where text would lose what is judged (a trajectory under a judge ``view``, an image)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._content import carries_image
from ._errors import ConfigurationError
from ._text import as_text, completion_text, reference_text

__all__ = ["judged_completion"]


def _inputs(
    func_name: str,
    prompts: Sequence[Any],
    completions: Sequence[Any],
    kwargs: Mapping[str, Any],
    reference_column: str,
) -> tuple[list[str], list[str], list[str | None] | None]:
    """Validate TRL's arguments and convert prompts, completions and references to text."""
    if len(prompts) != len(completions):
        raise ConfigurationError(
            f"{func_name}: got {len(prompts)} prompts but {len(completions)} completions"
        )
    references = kwargs.get(reference_column)
    if references is not None and len(references) != len(completions):
        raise ConfigurationError(
            f"{func_name}: column {reference_column!r} has {len(references)} values for "
            f"{len(completions)} completions"
        )
    prompt_texts = [as_text(p, what="prompt") for p in prompts]
    completion_texts = [completion_text(c) for c in completions]
    refs = [reference_text(r) for r in references] if references is not None else None
    return prompt_texts, completion_texts, refs


def _judged(
    judge: Any,
    prompts: Sequence[Any],
    completions: Sequence[Any],
    prompt_texts: list[str],
    completion_texts: list[str],
) -> tuple[list[Any], list[Any]]:
    """What the judge is handed: the text, except where it would lose what is judged.

    A judge with a ``view`` renders message-list completions itself (tool calls and results kept);
    a prompt or completion holding images (VLM GRPO, image generation) is passed whole, so that the
    judge sends the images (TRL 1.16 puts a dataset's ``image``/``images`` into the conversational
    prompt as ``{"type": "image", "image": <PIL>}`` parts before calling reward functions).
    """
    return (
        [p if carries_image(p) else t for p, t in zip(prompts, prompt_texts, strict=True)],
        [
            judged_completion(judge, c, t)
            for c, t in zip(completions, completion_texts, strict=True)
        ],
    )


def judged_completion(judge: Any, completion: Any, text: str) -> Any:
    """``completion`` itself where its ``text`` would lose what the judge is to see (a trajectory
    under a judge ``view``, an image), else ``text``. Shared by every trainer adapter."""
    if carries_image(completion):
        return completion
    if getattr(judge, "view", None) is not None and not isinstance(completion, str):
        return completion
    return text
