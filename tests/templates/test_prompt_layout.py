"""The bundled prompts are laid out for prefix caching (vLLM / SGLang automatic prefix caching,
provider prompt caches): what every request of a judge shares comes first, then what the requests of
one GRPO group share (prompt, reference), and the text that varies per request comes last. A layout
regression shows up here as a shorter shared prefix."""

from __future__ import annotations

from rftjudge import Criterion, ListwiseJudge, Message, OpenAIClient, PreferenceJudge, RubricJudge

CRITERIA = [
    Criterion(name="correctness", description="Is it right?", weight=2.0),
    Criterion(name="tone", description="Is it polite?"),
]


def _client() -> OpenAIClient:
    return OpenAIClient("judge", base_url="http://127.0.0.1:9/v1")


def _text(messages: tuple[Message, ...]) -> str:
    """The request as a prefix cache sees it: the messages in order."""
    return "\n\x00".join(f"{m.role}:{m.content}" for m in messages)


def _shared(a: tuple[Message, ...], b: tuple[Message, ...]) -> str:
    first, second = _text(a), _text(b)
    n = next(
        (i for i, (x, y) in enumerate(zip(first, second, strict=False)) if x != y),
        min(len(first), len(second)),
    )
    return first[:n]


def test_rubric_requests_share_everything_but_the_response() -> None:
    judge = RubricJudge(_client(), criteria=CRITERIA, scale=(1, 5))
    one = judge.render("What is 2+2?", "4", "4")
    two = judge.render("What is 2+2?", "four, obviously", "4")
    shared = _shared(one, two)
    # within a group: the criteria, schema, prompt and reference are all before the first difference
    for part in (
        "correctness: Is it right?",
        '"enum": [1, 2, 3, 4, 5]',
        "What is 2+2?",
        "REFERENCE",
    ):
        assert part in shared
    assert "RESPONSE:" in shared and "four" not in shared
    # across groups: the criteria and the schema still come first
    other = judge.render("Name a prime.", "7", "7")
    across = _shared(one, other)
    assert "tone: Is it polite?" in across and '"required": ["correctness", "tone"]' in across
    assert across.split("user:", 1)[1].endswith("PROMPT:\n<<<PROMPT ")  # differs at the digest


def test_preference_requests_share_everything_but_the_responses() -> None:
    judge = PreferenceJudge(_client(), criteria=CRITERIA)
    ab = judge.render("Write a haiku.", "an old silent pond", "roses are red")
    ba = judge.render("Write a haiku.", "roses are red", "an old silent pond")
    shared = _shared(ab, ba)
    for part in ("correctness: Is it right?", '"winner"', "Write a haiku."):
        assert part in shared
    assert "RESPONSE A:" in shared and "pond" not in shared and "roses" not in shared


def test_listwise_orders_of_one_group_share_everything_but_the_candidates() -> None:
    judge = ListwiseJudge(_client(), criteria=CRITERIA)
    candidates = [("c1", "first answer"), ("c2", "second answer"), ("c3", "third answer")]
    one = judge.render("Explain tides.", "the moon", candidates)
    two = judge.render("Explain tides.", "the moon", candidates[1:] + candidates[:1])
    shared = _shared(one, two)
    for part in ("correctness: Is it right?", "Explain tides.", "the moon", "CANDIDATES:"):
        assert part in shared
    assert "first answer" not in shared and "second answer" not in shared
