"""Properties, over arbitrary text: the verdict parser, the fence, template rendering, the guard.

The judged text is written by a policy optimised against the judge, so "arbitrary" is the right
input model: whatever it contains, the fence holds, rendering does not raise, the parser returns a
validated verdict or a ParseError, and the guard answers quickly with one of its reasons.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from rftjudge import Criterion, FunctionClient, NonAnswerGuard, ParseError, RubricJudge
from rftjudge.parsing import find_json_objects, parse_verdict
from rftjudge.templates import fence, neutralize, truncate_middle

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text biased towards what breaks parsers and fences: braces, quotes, markers and look-alikes,
# invisible and control characters, surrogates, newlines of every kind.
SPICY = st.sampled_from(
    [
        *'{}[]":,\\<>',
        *("<<<", ">>>", "＜＜＜", "‹‹‹", "›››", "«««", "\u202e", "\u200b", "\U000e0041", "\ud800"),
        *("\x00", "\x1b", "\r", "\r\n", "\u2028", "\x85", "END RESPONSE", "```json\n", "<think>"),
        '{"rationale": "x", "scores": {"q": 5}}',
    ]
)
TEXT = st.lists(st.one_of(st.text(max_size=20), SPICY), max_size=30).map("".join)
MARKER_LINE = re.compile(r"<<<(?:END )?[A-Z_]+ [0-9a-f]{12}>>>")
# runs of marker look-alikes (fullwidth, small, angle brackets, guillemets, ...); after neutralize
# none is left: they become spaced ASCII "< < <" / "> > >"
LOOKALIKE_RUN = re.compile(
    "[<\uff1c\ufe64\u2039\u2329\u3008\u27e8\u276e\u276c\u00ab\u226a]{3,}"
    "|[>\uff1e\ufe65\u203a\u232a\u3009\u27e9\u276f\u276d\u00bb\u226b]{3,}"
)
INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f]"
)


class Verdict(BaseModel):
    rationale: str = ""
    scores: dict[str, int]


# -- the verdict parser ---------------------------------------------------------------------------


@SETTINGS
@given(TEXT)
def test_parser_returns_a_valid_verdict_or_raises_parse_error(text: str) -> None:
    try:
        result = parse_verdict(text, Verdict)
    except ParseError as exc:
        assert exc.raw == text
    else:
        assert isinstance(result, Verdict)
    assert all(isinstance(o, dict) for o in find_json_objects(text))


PROSE = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=80)
SCORES = st.dictionaries(
    st.text(alphabet="abcdefghij_", min_size=1, max_size=8), st.integers(1, 5), max_size=4
)


@SETTINGS
@given(PROSE, PROSE, PROSE, SCORES, SCORES)
def test_the_final_verdict_in_prose_wins(
    before: str, between: str, after: str, draft: dict[str, int], final: dict[str, int]
) -> None:
    text = (
        before
        + json.dumps({"rationale": "draft", "scores": draft})
        + between
        + "```json\n"
        + json.dumps({"rationale": "final", "scores": final}, indent=2)
        + "\n```"
        + after
    )
    verdict = parse_verdict(text, Verdict)
    assert verdict.rationale == "final" and verdict.scores == final


@pytest.mark.parametrize("depth", [1, 999, 1001, 5000, 100_000])
def test_deep_nesting_and_brace_floods_are_no_crash_and_cheap(depth: int) -> None:
    """The decoder raises RecursionError past ~1000 levels, and each failed start can cost a
    scan: both are contained (no exception, bounded work)."""
    for text in ("[" * depth, '{"a":' * depth, "{" * depth, '{"a": "' * depth):
        started = time.perf_counter()
        assert find_json_objects(text) == []
        with pytest.raises(ParseError):
            parse_verdict(text + ' {"rationale": "r", "scores": {"q": 1}', Verdict)
        assert time.perf_counter() - started < 2.0


# -- fence and neutralize -----------------------------------------------------------------------


@SETTINGS
@given(TEXT, st.sampled_from(["response", "prompt", "reference", "response_a"]))
def test_fence_cannot_be_broken(text: str, label: str) -> None:
    fenced = fence(text, label)
    lines = fenced.split("\n")
    assert MARKER_LINE.fullmatch(lines[0]) and lines[0].startswith(f"<<<{label.upper()} ")
    assert lines[-1] == f"<<<END {lines[0][3:]}"
    body = "\n".join(lines[1:-1])
    assert body == neutralize(text)
    # the only markers are the two fence lines, and nothing inside even looks like one
    assert "<<<" not in body and ">>>" not in body
    assert not LOOKALIKE_RUN.search(body)
    assert not INVISIBLE.search(body.replace("\n", "").replace("\t", ""))
    assert "\r" not in body
    fenced.encode("utf-8")  # strict: valid UTF-8, always


@SETTINGS
@given(TEXT)
def test_neutralize_is_idempotent(text: str) -> None:
    once = neutralize(text)
    assert neutralize(once) == once


@SETTINGS
@given(st.text(max_size=2000), st.integers(1, 1500))
def test_truncate_middle_keeps_head_and_tail(text: str, limit: int) -> None:
    cut = truncate_middle(text, limit)
    if len(text) <= limit:
        assert cut == text
        return
    head = (limit + 1) // 2
    tail = limit - head
    marker = f"\n[... {len(text) - limit} characters omitted ...]\n"
    assert cut == text[:head] + marker + (text[-tail:] if tail else "")


# -- template rendering -----------------------------------------------------------------------------

JUDGE = RubricJudge(
    FunctionClient(lambda r: "{}"), criteria=[Criterion(name="q", description="good?")], guard=False
)
BENIGN = JUDGE.render("PROMPT", "RESPONSE", "REFERENCE")


@SETTINGS
@given(TEXT, TEXT, st.one_of(st.none(), TEXT))
def test_rendering_never_raises_and_untrusted_text_stays_in_its_fence(
    prompt: str, response: str, reference: str | None
) -> None:
    messages = JUDGE.render(prompt, response, reference)
    assert [m.role for m in messages] == ["system", "user"]
    system = JUDGE.render("PROMPT", "RESPONSE", reference and "REFERENCE")[0]
    assert messages[0] == system  # nothing untrusted ever reaches the system message
    user = messages[1].content
    markers = MARKER_LINE.findall(user)
    assert len(markers) == (6 if reference is not None else 4)
    for label, text in (("PROMPT", prompt), ("RESPONSE", response), ("REFERENCE", reference)):
        if text is None:
            continue
        match = re.search(rf"<<<{label} (\w+)>>>\n(.*?)\n<<<END {label} \1>>>", user, re.DOTALL)
        assert match is not None and match.group(2) == neutralize(text)
    # outside the fences, the prompt is the template's own text, unchanged
    outside = re.sub(r"<<<(\w+) \w+>>>\n.*?\n<<<END \1 \w+>>>", "FENCE", user, flags=re.DOTALL)
    benign = JUDGE.render("x", "y", reference and "z")[1].content
    assert outside == re.sub(
        r"<<<(\w+) \w+>>>\n.*?\n<<<END \1 \w+>>>", "FENCE", benign, flags=re.DOTALL
    )
    assert BENIGN[0].content in system.content or reference is None


# -- the guard ---------------------------------------------------------------------------------

GUARD = NonAnswerGuard()


@SETTINGS
@given(TEXT)
def test_guard_answers_with_one_of_its_reasons(text: str) -> None:
    assert GUARD.reason(text) in (None, "empty", "no_content", "opener")


@SETTINGS
@given(TEXT, st.sampled_from(["42", "Paris", "x = 3", "Nein", "東京", "yes"]))
def test_guard_never_fails_a_response_with_an_answer_in_it(text: str, answer: str) -> None:
    assert GUARD.reason(f"{text} {answer}") is None


@SETTINGS
@given(st.text(alphabet=st.characters(categories=["P", "S", "Z", "Cc", "Cf"]), max_size=200))
def test_guard_fails_any_text_without_letters_or_digits(text: str) -> None:
    # "㈀" is a symbol that NFKC turns into "(ᄀ)", a letter: the guard reads normalised text
    assume(not re.search(r"[^\W_]", unicodedata.normalize("NFKC", text)))
    assert GUARD.reason(text) in ("empty", "no_content")
