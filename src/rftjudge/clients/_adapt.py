"""Recovering from a request the model or server rejects for a field it does not take.

Two rejections are worth one more try, because the same request without the offending part is still
the judgment that was asked for:

- a **sampling field** the model does not take (a 400 "`temperature` is deprecated for this model",
  "Unsupported value: 'temperature'") — the field is dropped for this client from then on;
- a **structured-output mode** the server does not take (a 4xx/5xx naming ``response_format``, the
  schema, ``output_config`` …) — the client steps down one mode (``json_schema`` → ``json_object`` +
  schema → ``json_object`` → prompt-only for OpenAI-compatible servers; each client names its own
  ladder) and stays there.

The judge validates the verdict locally whatever the mode, so a weaker mode costs accuracy of the
constraint, not correctness of the reward. Each adaptation is logged once (WARNING), counted in
``client.adaptations`` and leaves ``client.stats.failures`` as if the rejected attempt had not failed
(it did not fail the judgment). A second rejection of the same kind is not retried: an error whose
cause is something else surfaces as before.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable

from .._errors import BadRequestError, HTTPStatusError, ServerError
from .._types import ChatRequest, ChatResponse
from ._params import DROPPABLE, rejected_field

__all__ = ["Adaptive"]

logger = logging.getLogger("rftjudge")


class Adaptive:
    """Mixin for an :class:`~rftjudge.HTTPClient` subclass (listed before it).

    The subclass sets ``self.dropped`` (a set, which its ``build_request`` honours), and may set
    ``_mode_ladder`` (its structured-output modes, strongest first) and ``_mode_words`` (lower-case
    fragments an error names when it rejects the structured-output part of the request).
    """

    dropped: set[str]
    adaptations: Counter[str]
    structured_output: str
    _mode_ladder: tuple[str, ...] = ()
    _mode_words: re.Pattern[str] | None = None

    def _init_adaptive(
        self, omit: Iterable[str] = (), send_temperature: bool | None = None
    ) -> None:
        """Start with ``omit`` left out; ``send_temperature`` True/False overrides the table."""
        self.dropped = set(omit)
        self.adaptations = Counter()
        if send_temperature is not None:
            self.send_temperature = send_temperature

    @property
    def send_temperature(self) -> bool:
        """Whether requests carry ``temperature`` (False once the model is known to reject it)."""
        return "temperature" not in self.dropped

    @send_temperature.setter
    def send_temperature(self, value: bool) -> None:
        if value:
            self.dropped.discard("temperature")
        else:
            self.dropped.add("temperature")

    async def complete(self, request: ChatRequest) -> ChatResponse:
        rejected: set[str] = set()
        while True:
            mode = self.structured_output  # the mode this attempt is built with
            try:
                response: ChatResponse = await super().complete(request)  # type: ignore[misc]
                return response
            except (BadRequestError, ServerError) as exc:
                what = self._adapt(exc, request, rejected, mode)
                if what is None:
                    raise
                rejected.add(what)
                self.stats.failures[exc.kind] -= 1  # type: ignore[attr-defined]
                if self.stats.failures[exc.kind] <= 0:  # type: ignore[attr-defined]
                    del self.stats.failures[exc.kind]  # type: ignore[attr-defined]

    def _adapt(
        self, exc: HTTPStatusError, request: ChatRequest, rejected: set[str], mode: str
    ) -> str | None:
        """What to change so that ``request`` may pass (and change it); None when nothing.

        Requests in flight together meet the same rejection: the first changes the client, the
        others see the change made and simply go again (once), without logging or counting it.
        """
        message = f"{exc} {exc.body or ''}"
        field = rejected_field(message, DROPPABLE - rejected)
        if field is not None and isinstance(exc, BadRequestError):
            if field not in self.dropped:
                self.dropped.add(field)
                self.adaptations[f"dropped:{field}"] += 1
                logger.warning(
                    "rftjudge: %s:%s rejected `%s` (%s); sending requests without it from now on",
                    self.provider,  # type: ignore[attr-defined]
                    self.model,  # type: ignore[attr-defined]
                    field,
                    _clip(str(exc)),
                )
            return field
        ladder = self._mode_ladder
        words = self._mode_words
        if (
            request.output_schema is None
            or words is None
            or mode not in ladder[:-1]
            or "mode" in rejected
            or not words.search(message.lower())
        ):
            return None
        if self.structured_output == mode:  # not yet stepped down by a request beside this one
            new = ladder[ladder.index(mode) + 1]
            self.structured_output = new
            self.adaptations[f"structured_output:{new}"] += 1
            logger.warning(
                "rftjudge: %s:%s rejected structured_output=%r (%s); using %r from now on "
                "(the verdict is still validated locally)",
                self.provider,  # type: ignore[attr-defined]
                self.model,  # type: ignore[attr-defined]
                mode,
                _clip(str(exc)),
                new,
            )
        return "mode"


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
