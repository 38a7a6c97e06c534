"""Judges, clients and caches pickle as a replay of their constructor calls (rftjudge._rebuild), so
that Ray, multiprocessing and torch.multiprocessing can send reward functions to other processes."""

from __future__ import annotations

import copy
import json
import multiprocessing
import os
import pickle
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from rftjudge import (
    Criterion,
    EndpointPool,
    ListwiseJudge,
    MemoryCache,
    OpenAIClient,
    PreferenceJudge,
    RateLimits,
    RubricJudge,
    SQLiteCache,
)
from rftjudge._rebuild import recipe

from support.server import LoopbackServer, Reply, chat_reply
from support.workers import reward_elsewhere

CRITERIA = [Criterion(name="q", description="quality", weight=2.0)]


def _grade(payload: dict[str, Any]) -> Reply:
    return Reply(body=chat_reply(json.dumps({"rationale": "fine", "scores": {"q": 4}})))


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(_grade) as running:
        yield running


def test_a_judge_pickles_as_its_constructor_call() -> None:
    client = OpenAIClient(
        "judge",
        base_url="http://127.0.0.1:9/v1",
        max_concurrency=7,
        limits=RateLimits(requests_per_minute=600),
        cache=MemoryCache(maxsize=10),
    )
    rubric = RubricJudge(client, criteria=CRITERIA, scale=(0, 10), name="mine", max_reasks=2)
    preference = PreferenceJudge(client, swap=False)
    client.stats.requests = 5  # counters are this process's: a rebuilt client starts at zero

    rubric2, preference2 = pickle.loads(pickle.dumps((rubric, preference)))
    assert rubric2 is not rubric and rubric2.client is preference2.client  # still shared
    assert (rubric2.name, rubric2.max_reasks, rubric2.scale.high) == ("mine", 2, 10)
    assert rubric2.criteria == rubric.criteria and preference2.swap is False
    fresh = rubric2.client
    assert isinstance(fresh, OpenAIClient) and fresh.max_concurrency == 7
    assert fresh.limits.requests_per_minute == 600 and isinstance(fresh.cache, MemoryCache)
    assert fresh.stats.requests == 0
    assert copy.deepcopy(rubric).criteria == rubric.criteria


def test_pools_listwise_judges_and_sqlite_caches_pickle(tmp_path: Path) -> None:
    members = [OpenAIClient("judge", base_url=f"http://127.0.0.1:{p}/v1") for p in (9, 10)]
    pool = EndpointPool(members, max_retries=2)
    judge = ListwiseJudge(pool, criteria=CRITERIA, permutations=2)
    rebuilt = pickle.loads(pickle.dumps(judge))
    assert isinstance(rebuilt.client, EndpointPool) and rebuilt.permutations == 2
    cache = SQLiteCache(tmp_path / "c.sqlite")
    cache.set("k", "v")
    assert pickle.loads(pickle.dumps(cache)).get("k") == "v"  # the same file, opened again


def test_what_cannot_travel_is_named() -> None:
    client = OpenAIClient(
        "judge", base_url="http://127.0.0.1:9/v1", http_client=httpx.AsyncClient()
    )
    with pytest.raises(TypeError, match="built with http_client= cannot be sent to another"):
        pickle.dumps(RubricJudge(client, criteria=CRITERIA))


@pytest.mark.timeout(120)
def test_a_judge_sent_to_another_process_judges_there(
    server: LoopbackServer, tmp_path: Path
) -> None:
    client = OpenAIClient("judge", base_url=server.base_url, cache=SQLiteCache(tmp_path / "c.db"))
    judge = RubricJudge(client, criteria=CRITERIA)
    assert judge.reward("What is 2+2?", "4") == pytest.approx(0.75)
    assert len(server.requests) == 1

    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing is inherited
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        pid, reward, requests, hits = pool.submit(
            reward_elsewhere, judge, "What is 2+2?", "4"
        ).result()
        assert pid != os.getpid()
        assert reward == pytest.approx(0.75) and (requests, hits) == (0, 1)  # the parent's cache file
        pid, reward, requests, _ = pool.submit(
            reward_elsewhere, judge, "What is 3+3?", "6"
        ).result()
        assert reward == pytest.approx(0.75) and requests == 1
    assert len(server.requests) == 2  # the child judged the new item over HTTP itself


def test_recipes_say_what_changes_verdicts_and_hold_no_secret() -> None:
    def judge(**client_kwargs: Any) -> RubricJudge:
        client = OpenAIClient("judge", base_url="http://127.0.0.1:9/v1", **client_kwargs)
        return RubricJudge(client, criteria=CRITERIA)

    base = recipe(judge())
    assert recipe(judge(api_key="sk-secret-1", max_concurrency=3, timeout=5)) == base
    assert "sk-secret-1" not in json.dumps(recipe(judge(api_key="sk-secret-1")), default=str)
    other_model = RubricJudge(
        OpenAIClient("other", base_url="http://127.0.0.1:9/v1"), criteria=CRITERIA
    )
    assert recipe(other_model) != base
    other_criteria = RubricJudge(
        OpenAIClient("judge", base_url="http://127.0.0.1:9/v1"),
        criteria=[Criterion(name="q", description="quality", weight=1.0)],
    )
    assert recipe(other_criteria) != base


def test_secrets_are_hidden_while_held_and_restored_when_rebuilt() -> None:
    client = OpenAIClient("judge", base_url="http://127.0.0.1:9/v1", api_key="sk-secret-2")
    assert "sk-secret-2" not in repr(vars(client))
    rebuilt = pickle.loads(pickle.dumps(client))
    assert rebuilt._api_key == "sk-secret-2"
    judge = RubricJudge(client, criteria=CRITERIA, max_tokens=64)
    assert recipe(judge)["kwargs"]["max_tokens"] == 64  # a setting, not a secret


def test_composed_rewards_pickle_with_their_parts() -> None:
    from rftjudge import CascadeJudge, CompositeReward, EnsembleJudge
    from rftjudge.checks import RegexCheck

    client = OpenAIClient("judge", base_url="http://127.0.0.1:9/v1")
    cheap = RubricJudge(client, criteria=CRITERIA, name="cheap")
    strong = RubricJudge(client, criteria=CRITERIA, name="strong")
    ensemble, cascade, composite = pickle.loads(
        pickle.dumps(
            (
                EnsembleJudge([cheap, strong]),
                CascadeJudge(cheap, strong, band=(0.2, 0.8)),
                CompositeReward({"judge": cheap, "digits": RegexCheck(r"\d+")}),
            )
        )
    )
    assert list(ensemble.members) == ["cheap", "strong"]
    assert cascade.band == (0.2, 0.8) and cascade.cheap is ensemble.members["cheap"]
    assert set(composite.terms) == {"judge", "digits"}
    assert composite.terms["judge"] is cascade.cheap  # one object in, one object out


def test_a_reward_function_travels_by_value_through_ray_cloudpickle(
    server: LoopbackServer,
) -> None:
    from rftjudge._sync import run_sync

    cloudpickle = pytest.importorskip("ray.cloudpickle")  # a test dependency: rftjudge[ray]
    client = OpenAIClient("judge", base_url=server.base_url)
    reward_func = RubricJudge(client, criteria=CRITERIA).as_reward_func()
    rebuilt = cloudpickle.loads(cloudpickle.dumps(reward_func))
    assert rebuilt.__name__ == reward_func.__name__
    # on the sync API's loop, as TRL's reward thread would: its pools are closed at exit
    rewards = run_sync(rebuilt(prompts=["What is 2+2?"], completions=["4"]))
    assert rewards == [pytest.approx(0.75)]
