"""string_check and text_similarity against hand-computed values and the libraries' own examples."""

from __future__ import annotations

import math

import pytest

from rftjudge import ConfigurationError
from rftjudge.graders import load_openai_grader


def _check(operation: str) -> dict[str, str]:
    return {
        "type": "string_check",
        "name": "c",
        "input": "{{ sample.output_text }}",
        "reference": "{{ item.reference_answer }}",
        "operation": operation,
    }


@pytest.mark.parametrize(
    ("operation", "output", "reference", "expected"),
    [
        ("eq", "Paris", "Paris", 1.0),
        ("eq", "paris", "Paris", 0.0),  # case-sensitive
        ("ne", "London", "Paris", 1.0),
        ("neq", "Paris", "Paris", 0.0),
        ("like", "The answer is Paris.", "Paris", 1.0),  # input contains reference
        ("like", "The answer is paris.", "Paris", 0.0),
        ("ilike", "THE ANSWER IS PARIS", "Paris", 1.0),
        ("ilike", "Lyon", "Paris", 0.0),
    ],
)
def test_string_check(operation: str, output: str, reference: str, expected: float) -> None:
    grader = load_openai_grader(_check(operation))
    assert grader.reward("", output, {"reference_answer": reference}) == expected


def _similarity(metric: str) -> dict[str, object]:
    return {
        "type": "text_similarity",
        "name": "s",
        "input": "{{ sample.output_text }}",
        "reference": "{{ item.reference }}",
        "evaluation_metric": metric,
        "pass_threshold": 0.5,
    }


def _score(metric: str, output: str, reference: str) -> float:
    reward = load_openai_grader(_similarity(metric)).reward("", output, {"reference": reference})
    assert reward is not None
    return reward


def test_rouge_matches_rouge_score_readme_example() -> None:
    # rouge-score's README: target "The quick brown fox jumps over the lazy dog", prediction
    # "The quick brown dog jumps on the log." -> rouge1 P 0.75 R 0.667 F 0.7059; rougeL F 0.5882.
    target = "The quick brown fox jumps over the lazy dog"
    prediction = "The quick brown dog jumps on the log."
    assert _score("rouge_1", prediction, target) == pytest.approx(
        2 * 0.75 * (6 / 9) / (0.75 + 6 / 9)
    )
    assert _score("rouge_l", prediction, target) == pytest.approx(
        2 * (5 / 8) * (5 / 9) / (5 / 8 + 5 / 9)
    )
    assert _score("rouge_5", target, target) == pytest.approx(1.0)


def test_bleu_by_hand() -> None:
    # p1..p4 = 5/6, 3/5, 2/4, 1/3 and equal lengths (no brevity penalty)
    expected = (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    assert _score("bleu", "the cat sat on the mat", "the cat sat on a mat") == pytest.approx(
        expected
    )
    assert _score("bleu", "completely different words here", "the cat sat on a mat") == 0.0


def test_gleu_by_hand() -> None:
    # 1-4 grams: hypothesis a b c (6 n-grams), reference a b d (6); matches a, b, "a b" -> 3/6
    assert _score("gleu", "a b c", "a b d") == pytest.approx(0.5)


def test_fuzzy_match_uses_rapidfuzz_wratio() -> None:
    # after default_process: "this is a test" vs "this is a new test"; the token-set ratio is
    # 100, scaled by WRatio's 0.95 for partial scorers -> 0.95
    assert _score("fuzzy_match", "this is a test", "this is a new test!!!") == pytest.approx(0.95)
    assert _score("fuzzy_match", "Paris", "paris") == pytest.approx(1.0)


def test_meteor_on_exact_match_and_wordnet_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from rftjudge.graders._similarity import similarity

    # nltk's meteor for a 2-word exact match: fmean 1, penalty 0.5 * (1/2)^3 -> 0.9375
    assert similarity("meteor", "a cat", "a cat") == pytest.approx(0.9375)
    import nltk

    def missing(name: str) -> None:
        raise LookupError(name)

    monkeypatch.setattr(nltk.data, "find", missing)
    with pytest.raises(ConfigurationError, match=r"nltk\.downloader wordnet"):
        load_openai_grader(_similarity("meteor"))


async def test_cosine_needs_embeddings_and_uses_them() -> None:
    with pytest.raises(ConfigurationError, match="embed"):
        load_openai_grader(_similarity("cosine"))

    async def embed(texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0] if t == "x" else [1.0, 1.0] for t in texts]

    grader = load_openai_grader(_similarity("cosine"), embed=embed)
    assert await grader.areward("", "x", {"reference": "y"}) == pytest.approx(1 / math.sqrt(2))


def test_text_similarity_pass_threshold_gives_pass_flag() -> None:
    grader = load_openai_grader(_similarity("fuzzy_match"))
    assert grader.judge("", "Paris", {"reference": "Paris"}).passed is True
    assert grader.judge("", "zzz", {"reference": "Paris"}).passed is False
