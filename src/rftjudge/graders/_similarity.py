"""``text_similarity`` metrics, computed by the maintained libraries OpenAI's graders name.

- ``fuzzy_match``: rapidfuzz ``fuzz.WRatio`` with ``utils.default_process`` / 100 (the scorer the
  graders guide's own fuzzy-matching python grader uses);
- ``bleu``: NLTK ``sentence_bleu`` (BLEU-4, uniform weights, no smoothing);
- ``gleu``: NLTK ``sentence_gleu`` (Google BLEU, 1- to 4-grams);
- ``meteor``: NLTK ``meteor_score`` (needs the WordNet corpus: ``python -m nltk.downloader wordnet``);
- ``rouge_1`` … ``rouge_5``, ``rouge_l``: Google's ``rouge-score``, the F-measure;
- ``cosine``: cosine similarity of two embeddings from the ``embed`` callable you pass
  (OpenAI used text-embedding-3-large; rftjudge clients have no embeddings call).

BLEU, GLEU and METEOR see whitespace-separated tokens. OpenAI does not publish its tokenisation,
smoothing or which ROUGE figure it reports, so these are the libraries' defaults: compare a
sample of your own ``/graders/run`` results before relying on bit-equal scores.
Install the libraries with ``pip install "rftjudge[graders]"``.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .._errors import ConfigurationError

__all__ = ["Embed", "check_metric", "cosine", "similarity"]

Embed = Callable[[list[str]], "Sequence[Sequence[float]] | Awaitable[Sequence[Sequence[float]]]"]

_LIBRARY = {
    "fuzzy_match": "rapidfuzz",
    "bleu": "nltk",
    "gleu": "nltk",
    "meteor": "nltk",
    **{f"rouge_{n}": "rouge_score" for n in ("1", "2", "3", "4", "5", "l")},
}


def check_metric(metric: str, embed: Embed | None) -> None:
    """Fail at load time, not mid-training, when a metric cannot be computed here."""
    if metric == "cosine":
        if embed is None:
            raise ConfigurationError(
                "a text_similarity grader with evaluation_metric 'cosine' needs embeddings: "
                "pass load_openai_grader(..., embed=fn) where fn(texts) returns one vector per text"
            )
        return
    library = _LIBRARY[metric]
    try:
        __import__(library)
    except ImportError:
        raise ConfigurationError(
            f'evaluation_metric {metric!r} needs {library}: pip install "rftjudge[graders]"'
        ) from None
    if metric == "meteor":
        import nltk

        try:
            nltk.data.find("corpora/wordnet")
        except LookupError:
            try:
                nltk.data.find("corpora/wordnet.zip")
            except LookupError:
                raise ConfigurationError(
                    "evaluation_metric 'meteor' needs NLTK's WordNet corpus: "
                    "python -m nltk.downloader wordnet"
                ) from None


def similarity(metric: str, hypothesis: str, reference: str) -> float:
    """The ``metric`` score of ``hypothesis`` against ``reference`` (every metric but cosine)."""
    if metric == "fuzzy_match":
        from rapidfuzz import fuzz, utils

        return float(fuzz.WRatio(hypothesis, reference, processor=utils.default_process)) / 100.0
    if metric in ("bleu", "gleu", "meteor"):
        return _nltk(metric, hypothesis.split(), reference.split())
    if metric.startswith("rouge_"):
        from rouge_score import rouge_scorer

        key = "rougeL" if metric == "rouge_l" else f"rouge{metric[-1]}"
        scorer = rouge_scorer.RougeScorer([key])
        return float(scorer.score(reference, hypothesis)[key].fmeasure)
    raise ConfigurationError(f"unknown evaluation_metric {metric!r}")  # pragma: no cover


def _nltk(metric: str, hypothesis: list[str], reference: list[str]) -> float:
    if metric == "meteor":
        from nltk.translate.meteor_score import meteor_score

        return float(meteor_score([reference], hypothesis))
    if metric == "gleu":
        from nltk.translate.gleu_score import sentence_gleu

        return float(sentence_gleu([reference], hypothesis))
    from nltk.translate.bleu_score import sentence_bleu

    with warnings.catch_warnings():  # "the hypothesis contains 0 counts of 4-gram overlaps"
        warnings.simplefilter("ignore")
        return float(sentence_bleu([reference], hypothesis))


async def cosine(embed: Embed, hypothesis: str, reference: str) -> float:
    """Cosine similarity of the two texts' embeddings."""
    vectors: Any = embed([hypothesis, reference])
    if inspect.isawaitable(vectors):
        vectors = await vectors
    if len(vectors) != 2:
        raise ValueError(f"embed returned {len(vectors)} vectors for 2 texts")
    a, b = (list(map(float, v)) for v in vectors)
    if len(a) != len(b) or not a:
        raise ValueError("embed returned vectors of different (or zero) lengths")
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    if norm == 0.0:
        return 0.0
    return math.fsum(x * y for x, y in zip(a, b, strict=True)) / norm
