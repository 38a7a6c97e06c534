"""What the local judge's server says about each completion it served, for the benchmarks that
read llama.cpp's ``timings`` (``slot_cache.py``, ``minimal_judge.py``) through an httpx hook."""

from __future__ import annotations

import json
from typing import Any

import httpx


async def sent_and_timings(
    response: httpx.Response,
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The request body and the ``timings`` of a chat or text completion; None for the other
    endpoints a client calls (``/props``, ``/apply-template``: no model time)."""
    if not response.url.path.endswith("completions"):
        return None
    body = json.loads(await response.aread())
    return json.loads(response.request.content), body.get("timings") or {}
