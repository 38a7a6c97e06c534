"""Functions that tests run in other processes (importable by a spawned child)."""

from __future__ import annotations

import os
from typing import Any


def reward_elsewhere(judge: Any, prompt: str, response: str) -> tuple[int, float | None, int, int]:
    """Judge once in this (other) process: its pid, the reward, requests sent, cache hits."""
    reward = judge.reward(prompt, response)
    stats = judge.client.stats
    return os.getpid(), reward, stats.requests, stats.cache_hits
